"""Pieces both agents use: the continuous actor, the two-hot critic, optimisers and part-wise updates."""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from hrl_core import nets
from hrl_core.config import Config
from hrl_core.world_model import WorldModel

MIN_STD, MAX_STD = 0.1, 1.0
# How a policy acts: "train" samples everything (data collection); "eval" is the agent's reference evaluation
# behaviour (DreamerV3 samples its actor; Director samples the manager's codes and takes the worker's mean action);
# "mode" takes mean actions and per-slot argmax codes, for analyses that need repeatable rollouts (the posterior
# latent is still sampled, so a rollout repeats for a fixed seed).
POLICY_MODES = ("train", "eval", "mode")


class Actor(nn.Module):
    """Bounded normal policy: mean tanh(x), std in [0.1, 1] (DreamerV3's continuous actor)."""

    act_dim: int
    units: int
    layers: int

    @nn.compact
    def __call__(self, feat):
        out = nets.MLP(self.units, self.layers, 2 * self.act_dim)(feat)
        mean, std = jnp.split(out, 2, -1)
        return jnp.tanh(mean), (MAX_STD - MIN_STD) * jax.nn.sigmoid(std + 2.0) + MIN_STD


def sample_action(key, mean, std):
    """Reparameterised sample clipped to [-1, 1] with straight-through gradients."""
    raw = mean + std * jax.random.normal(key, mean.shape)
    return raw + nets.sg(jnp.clip(raw, -1, 1) - raw)


def normal_entropy(std):
    return jnp.sum(0.5 * jnp.log(2 * jnp.pi * jnp.e) + jnp.log(std), -1)


class Critic(nn.Module):
    """Two-hot distributional value head (zero-initialised output)."""

    units: int
    layers: int

    @nn.compact
    def __call__(self, feat):
        return nets.MLP(self.units, self.layers, 255, zero_out=True)(feat)


def optimizer(lr: float, clip: float, eps: float, weight_decay: float = 0.0):
    """Adam after global-norm clipping; with `weight_decay`, decoupled decay of the dense and convolution kernels
    only (as Director's optimiser: not biases or LayerNorm scales)."""
    if not weight_decay:
        return optax.chain(optax.clip_by_global_norm(clip), optax.adam(lr, eps=eps))
    kernels = lambda params: jax.tree_util.tree_map_with_path(  # noqa: E731
        lambda path, _: getattr(path[-1], "key", None) == "kernel", params)
    return optax.chain(optax.clip_by_global_norm(clip), optax.adamw(lr, eps=eps, weight_decay=weight_decay,
                                                                     mask=kernels))


def world_model_for(cfg: Config, obs_space: dict, act_space) -> WorldModel:
    if act_space.low is None or not jnp.issubdtype(act_space.dtype, jnp.floating):
        raise ValueError("the agents need a continuous (float) action space")
    proprio = obs_space["proprio"].shape[0] if "proprio" in obs_space else 0
    return WorldModel(cfg, act_space.shape[0], proprio)


def policy_obs(obs: dict, add_batch: bool = False) -> dict:
    """An environment observation as policy input: device arrays without the episode-end flags the policy never
    reads; `add_batch` adds a leading batch axis to a single environment's observation."""
    return {k: jnp.asarray(v)[None] if add_batch else jnp.asarray(v) for k, v in obs.items()
            if k not in ("is_last", "is_terminal")}


def dummy_obs(obs_space: dict, batch: int = 1):
    return {k: jnp.zeros((batch, *v.shape), v.dtype) for k, v in obs_space.items()}


def apply_updates(params, opt_states, grads, optimizers: dict):
    """One Adam step for every parameter group; `keep_frozen` then puts the frozen groups back."""
    new_params, new_opt = dict(params), dict(opt_states)
    for name in params:
        updates, new_opt[name] = optimizers[name].update(grads[name], opt_states[name], params[name])
        new_params[name] = optax.apply_updates(params[name], updates)
    return new_params, new_opt


def group_owners(groups) -> dict:
    """Each parameter group's own state entries (its parameters and optimiser state), for `keep_frozen`."""
    return {f"{key}/{group}": group for group in groups for key in ("params", "opt")}


def keep_frozen(new: dict, old: dict, owners: dict, trainable) -> dict:
    """The agent's state after an update with every frozen part put back: `owners` maps each state entry (a key
    path such as "retnorm/ext") to the parameter group it moves with, and an entry whose group is not in
    `trainable` keeps its old value; entries not in `owners` always move. The choice is made while tracing, so the
    frozen parts' discarded updates are dead code that XLA removes: one masked update instead of a conditional at
    every entry."""
    out = dict(new)
    for path, group in owners.items():
        keys = path.split("/")
        if group in trainable or keys[0] not in new:
            continue
        node, source = out, old
        for key in keys[:-1]:
            node[key] = dict(node[key])
            node, source = node[key], source[key]
        if keys[-1] in node:
            node[keys[-1]] = source[keys[-1]]
    return out


def critic_loss(critic: Critic, params, slow_params, feat, returns, weight):
    """Two-hot loss towards the lambda-returns plus a regulariser towards the slow critic's prediction (DreamerV3);
    `slow_params` None leaves the regulariser out (a critic whose returns bootstrap from a target copy)."""
    logits = critic.apply(params, feat[:-1])
    loss = nets.two_hot_loss(logits, nets.sg(returns))
    if slow_params is not None:
        loss = loss + nets.two_hot_loss(logits, nets.sg(nets.two_hot_mean(critic.apply(slow_params, feat[:-1]))))
    return jnp.mean(weight * loss)


def hard_copy_every(slow, fast, count, every: int):
    """Director's target network: `fast` copied whole into `slow` when the update count is a multiple of `every`."""
    copy = count % every == 0
    return jax.tree.map(lambda s, f: jnp.where(copy, f, s), slow, fast)


def ema(slow, fast, fraction: float):
    return jax.tree.map(lambda s, f: (1 - fraction) * s + fraction * f, slow, fast)


def time_major(batch: dict) -> dict:
    batch = {k: jnp.swapaxes(jnp.asarray(v), 0, 1) for k, v in batch.items()}
    batch["is_first"] = batch["is_first"].at[0].set(True)  # every replayed sequence starts from a fresh state
    return batch

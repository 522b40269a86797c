"""The DreamerV3 world model (RSSM) shared by both agents, as linen modules plus pure, jit-friendly functions.

State = {deter: [..., D], stoch: [..., S, C] one-hot}. The deterministic path is a GRU with layer-normalised
inputs, block-diagonal when `blocks > 1` (the newer DreamerV3 release). Stochastic latents are S categoricals of
C classes with 1% uniform mix. Replay convention: step t holds obs_t, the reward received on arriving at obs_t and
the action that led to it (zero on a first step), so the posterior at t is f(deter(h_{t-1}, z_{t-1}, a_t), obs_t)
and the reward head at state t predicts reward_t. The task vector (if any) is an input of the recurrent core and of
every head, and the policy sees it through `features`.

Departure from DreamerV3: the initial state is zeros rather than learned.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from hrl_core import nets
from hrl_core.config import Config


def features(state, task=None):
    parts = [state["deter"], state["stoch"].reshape(*state["stoch"].shape[:-2], -1)]
    if task is not None:
        parts.append(task)
    return jnp.concatenate(parts, -1)


class WorldModel(nn.Module):
    cfg: Config
    act_dim: int
    proprio_dim: int = 0

    def setup(self):
        c = self.cfg
        self.image_encoder = nets.ImageEncoder(c.image_channels, c.image_size)
        self.image_decoder = nets.ImageDecoder(c.image_channels, c.image_minres)
        if self.proprio_dim:
            self.proprio_encoder = nets.MLP(c.mlp_units, c.mlp_layers)
            self.proprio_decoder = nets.MLP(c.mlp_units, c.mlp_layers, self.proprio_dim)
        self.core_in = [nn.Dense(c.hidden, use_bias=False) for _ in range(3)]
        self.core_in_norm = [nn.LayerNorm() for _ in range(3)]
        self.core_hidden = nets.BlockLinear(c.deter, c.blocks)
        self.core_norm = nn.LayerNorm()
        self.core_gates = nets.BlockLinear(3 * c.deter, c.blocks)
        self.prior_net = nets.MLP(c.hidden, 1, c.stoch * c.classes)
        self.post_net = nets.MLP(c.hidden, 1, c.stoch * c.classes)
        self.reward_head = nets.MLP(c.mlp_units, c.mlp_layers, 255, zero_out=True)
        self.cont_head = nets.MLP(c.mlp_units, c.mlp_layers, 1)

    def initial(self, batch_shape):
        c = self.cfg
        return {"deter": jnp.zeros((*batch_shape, c.deter)), "stoch": jnp.zeros((*batch_shape, c.stoch, c.classes))}

    def embed(self, obs):
        x = self.image_encoder(obs["image"])
        if self.proprio_dim:
            x = jnp.concatenate([x, self.proprio_encoder(nets.symlog(obs["proprio"]))], -1)
        return x

    def _core(self, state, action, task):
        c = self.cfg
        inputs = [state["deter"], state["stoch"].reshape(*state["stoch"].shape[:-2], -1),
                  action if task is None else jnp.concatenate([action, task], -1)]
        x = jnp.concatenate([nn.silu(n(d(i))) for d, n, i in zip(self.core_in, self.core_in_norm, inputs)], -1)
        g, per = c.blocks, c.deter // c.blocks
        deter_blocks = state["deter"].reshape(*state["deter"].shape[:-1], g, per)
        x = jnp.concatenate([deter_blocks, jnp.broadcast_to(x[..., None, :], (*x.shape[:-1], g, x.shape[-1]))], -1)
        x = nn.silu(self.core_norm(self.core_hidden(x.reshape(*x.shape[:-2], -1))))
        gates = self.core_gates(x).reshape(*x.shape[:-1], g, 3, per)
        reset, cand, update = gates[..., 0, :], gates[..., 1, :], gates[..., 2, :]
        cand = jnp.tanh(jax.nn.sigmoid(reset) * cand)
        update = jax.nn.sigmoid(update - 1.0)
        deter = update * cand + (1 - update) * deter_blocks
        return deter.reshape(*deter.shape[:-2], c.deter)

    def _logits(self, net, x):
        c = self.cfg
        logits = net(x).reshape(*x.shape[:-1], c.stoch, c.classes)
        return nets.unimix_logits(logits, c.unimix)

    def prior_logits(self, deter):
        return self._logits(self.prior_net, deter)

    def img_step(self, state, action, task, key):
        deter = self._core(state, action, task)
        logits = self.prior_logits(deter)
        return {"deter": deter, "stoch": nets.sample_onehot(key, logits)}, logits

    def obs_step(self, state, action, embed, is_first, task, key):
        """Posterior step; state and action are reset to zero where is_first."""
        keep = 1.0 - is_first.astype(jnp.float32)[..., None]
        state = {"deter": state["deter"] * keep, "stoch": state["stoch"] * keep[..., None]}
        deter = self._core(state, action * keep, task)
        prior = self.prior_logits(deter)
        post = self._logits(self.post_net, jnp.concatenate([deter, embed], -1))
        return {"deter": deter, "stoch": nets.sample_onehot(key, post)}, post, prior

    def heads(self, feat):
        return {"reward_logits": self.reward_head(feat), "cont_logit": self.cont_head(feat)[..., 0]}

    def decode(self, feat):
        out = {"image": self.image_decoder(feat)}
        if self.proprio_dim:
            out["proprio"] = self.proprio_decoder(feat)
        return out

    def __call__(self, obs, action, task, key):
        """Touches every submodule once (used for init)."""
        state = self.initial(action.shape[:-1])
        state, _, _ = self.obs_step(state, action, self.embed(obs), jnp.ones(action.shape[:-1], bool), task, key)
        feat = features(state, task)
        return self.heads(feat), self.decode(feat)


def observe(wm: WorldModel, params, embed, action, is_first, task, state0, key):
    """Posterior states over a time-major sequence [T, B, ...] with one lax.scan."""
    keys = jax.random.split(key, embed.shape[0])
    has_task = task is not None

    def step(state, inputs):
        e, a, f, tk, k = inputs
        state, post, prior = wm.apply(params, state, a, e, f, tk if has_task else None, k,
                                      method=WorldModel.obs_step)
        return state, (state, post, prior)

    tasks = task if has_task else jnp.zeros((embed.shape[0], 0))
    last, (states, post, prior) = nets.scan(step, state0, (embed, action, is_first, tasks, keys))
    return last, states, post, prior


def imagine(wm: WorldModel, params, start, task, horizon: int, policy, carry, key):
    """Rolls the prior forward `horizon` steps from `start` under `policy(carry, state, t, key) -> (action, carry,
    aux)`. Returns states [H+1, ...], actions [H, ...] and the policy's aux [H, ...]."""

    def step(inner, inputs):
        state, pcarry = inner
        t, k = inputs
        k_act, k_dyn = jax.random.split(k)
        action, pcarry, aux = policy(pcarry, state, t, k_act)
        nxt, _ = wm.apply(params, state, action, task, k_dyn, method=WorldModel.img_step)
        return (nxt, pcarry), (state, action, aux)

    (last, _), (states, actions, aux) = nets.scan(
        step, (start, carry), (jnp.arange(horizon), jax.random.split(key, horizon)))
    states = jax.tree.map(lambda xs, x: jnp.concatenate([xs, x[None]], 0), states, last)
    return states, actions, aux


def imagined_outcomes(wm: WorldModel, params, states, task, discount: float, start_cont=None):
    """Rewards and continue probabilities for each imagined transition, and the cumulative discount weights.

    reward[t] and cont[t] come from the heads at state t+1 (what arriving there yields). weight[t] weighs the
    losses at state t: weight[0] = start_cont (1 - is_terminal of the replayed start state; ones when not given)
    and weight[t] = weight[0] prod_{i<t} discount cont[i].
    """
    feat = features(states, None if task is None else jnp.broadcast_to(task, (*states["deter"].shape[:-1],
                                                                              task.shape[-1])))
    heads = wm.apply(params, feat[1:], method=WorldModel.heads)
    reward = nets.two_hot_mean(heads["reward_logits"])
    cont = jax.nn.sigmoid(heads["cont_logit"])
    first = jnp.ones_like(cont[:1]) if start_cont is None else jnp.asarray(start_cont, cont.dtype)[None]
    weight = jnp.cumprod(jnp.concatenate([first, discount * cont[:-1]], 0), 0)
    return feat, reward, cont, nets.sg(weight)


def start_continue(batch) -> jnp.ndarray:
    """1 - is_terminal of every replayed state of a time-major batch, flattened like the imagination starts."""
    return 1.0 - batch["is_terminal"].reshape(-1).astype(jnp.float32)


def world_model_loss(wm: WorldModel, params, batch, key):
    """DreamerV3 world-model loss on a time-major batch; returns (loss, (posterior states, metrics))."""
    cfg = wm.cfg
    task = batch.get("task")
    embed = wm.apply(params, batch, method=WorldModel.embed)
    state0 = wm.initial(batch["action"].shape[1:-1])
    _, states, post, prior = observe(wm, params, embed, batch["action"], batch["is_first"], task, state0, key)
    feat = features(states, task)
    heads = wm.apply(params, feat, method=WorldModel.heads)
    dec = wm.apply(params, feat, method=WorldModel.decode)
    target = batch["image"].astype(jnp.float32) / 255.0
    losses = {"image": jnp.sum((dec["image"] - target) ** 2, (-3, -2, -1)),
              "reward": nets.two_hot_loss(heads["reward_logits"], batch["reward"]),
              "cont": optax.sigmoid_binary_cross_entropy(heads["cont_logit"],
                                                         1.0 - batch["is_terminal"].astype(jnp.float32))}
    if wm.proprio_dim:
        losses["proprio"] = jnp.sum((dec["proprio"] - nets.symlog(batch["proprio"])) ** 2, -1)
    dyn, rep = nets.kl_losses(post, prior, cfg.free_nats)
    losses["dyn"], losses["rep"] = dyn, rep
    scales = {"dyn": cfg.dyn_scale, "rep": cfg.rep_scale}
    loss = sum(scales.get(k, 1.0) * v.mean() for k, v in losses.items())
    metrics = {f"wm/{k}": v.mean() for k, v in losses.items()}
    metrics["wm/kl"] = nets.categorical_kl(post, prior).mean()
    return loss, (states, metrics)

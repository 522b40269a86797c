"""The flat DreamerV3 actor-critic on the shared world model.

Imagination: H steps from every replayed posterior state. The actor is trained by backpropagating the normalised
lambda-returns through the model (continuous actions), with entropy bonus 3e-4; returns are normalised by
max(1, EMA of the 5th-95th percentile range). The critic is two-hot distributional, regularised towards a slow EMA
copy (fraction 0.02). Parts: WM (world model), A (actor), V (critic).

As in DreamerV3, the actor sees the imagined latent through a stop-gradient: its gradient reaches the return
through the dynamics, reward and value heads, never through the latent it was fed. The start state's losses are
weighted by 1 - is_terminal. Evaluation samples the actor, as DreamerV3 does (policy mode "eval").

Departure from DreamerV3: the critic is trained on imagined returns only (no replayed-return term).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from hrl_core import nets
from hrl_core.agents import common
from hrl_core.config import Config
from hrl_core.validation import check_choice
from hrl_core.world_model import WorldModel, features, imagine, imagined_outcomes, start_continue, world_model_loss

PART_PARAMS = {"WM": ("wm",), "A": ("actor",), "V": ("critic",)}


class DreamerAgent:
    def __init__(self, cfg: Config, obs_space: dict, act_space):
        self.cfg, self.obs_space, self.act_space = cfg, obs_space, act_space
        self.wm = common.world_model_for(cfg, obs_space, act_space)
        self.task_dim = obs_space["task"].shape[0] if "task" in obs_space else 0
        self.actor = common.Actor(act_space.shape[0], cfg.mlp_units, cfg.mlp_layers)
        self.critic = common.Critic(cfg.mlp_units, cfg.mlp_layers)
        self.optimizers = {"wm": common.optimizer(cfg.wm_lr, cfg.wm_clip, 1e-8),
                           "actor": common.optimizer(cfg.ac_lr, cfg.ac_clip, 1e-5),
                           "critic": common.optimizer(cfg.ac_lr, cfg.ac_clip, 1e-5)}
        self.trainable = {name for part in cfg.parts for name in PART_PARAMS[part]}
        # The state beside the gradients moves with the part it serves (common.keep_frozen).
        self.owners = {**common.group_owners(self.optimizers), "slow_critic": "critic", "retnorm": "actor"}

    # ----- set-up -----
    def feat_dim(self):
        c = self.cfg
        return c.deter + c.stoch * c.classes + self.task_dim

    def init(self, key) -> dict:
        k_wm, k_a, k_c, k_s = jax.random.split(key, 4)
        obs = common.dummy_obs(self.obs_space)
        task = obs.get("task")
        wm_params = self.wm.init(k_wm, obs, jnp.zeros((1, self.act_space.shape[0])), task, k_s)
        feat = jnp.zeros((1, self.feat_dim()))
        params = {"wm": wm_params, "actor": self.actor.init(k_a, feat), "critic": self.critic.init(k_c, feat)}
        return {"params": params, "opt": {k: self.optimizers[k].init(v) for k, v in params.items()},
                "slow_critic": params["critic"], "retnorm": {"lo": jnp.zeros(()), "hi": jnp.zeros(())}}

    def initial_carry(self, batch: int) -> dict:
        return {"state": self.wm.initial((batch,)), "prev_action": jnp.zeros((batch, self.act_space.shape[0]))}

    # ----- acting -----
    def policy(self, state, carry, obs, key, mode: str = "train"):
        """One env step; `mode` is one of common.POLICY_MODES (static under jit)."""
        check_choice("policy mode", mode, common.POLICY_MODES)
        params = state["params"]
        k_obs, k_act = jax.random.split(key)
        task = obs.get("task")
        embed = self.wm.apply(params["wm"], obs, method=WorldModel.embed)
        latent, _, _ = self.wm.apply(params["wm"], carry["state"], carry["prev_action"], embed, obs["is_first"],
                                     task, k_obs, method=WorldModel.obs_step)
        mean, std = self.actor.apply(params["actor"], features(latent, task))
        action = mean if mode == "mode" else common.sample_action(k_act, mean, std)
        return action, {"state": latent, "prev_action": action}, {}

    # ----- learning -----
    def actor_loss(self, actor_params, wm_params, critic_params, retnorm, start, task, key, start_cont=None):
        cfg = self.cfg

        def act(carry, latent, t, k):
            mean, std = self.actor.apply(actor_params, features(nets.sg(latent), task))
            return common.sample_action(k, mean, std), carry, {"entropy": common.normal_entropy(std)}

        states, _, aux = imagine(self.wm, wm_params, start, task, cfg.horizon, act, (), key)
        feat, reward, cont, weight = imagined_outcomes(self.wm, wm_params, states, task, cfg.discount, start_cont)
        value = nets.two_hot_mean(self.critic.apply(critic_params, feat))
        returns = nets.lambda_returns(reward, value, cont, cfg.discount, cfg.lam)
        new_retnorm, scale = nets.update_return_scale(retnorm, nets.sg(returns), cfg.return_norm_decay)
        objective = returns / nets.sg(scale) + cfg.actor_entropy * aux["entropy"]
        loss = -jnp.mean(weight * objective)
        metrics = {"actor/return": returns.mean(), "actor/entropy": aux["entropy"].mean(),
                   "actor/return_scale": scale, "imag/reward": reward.mean()}
        return loss, (nets.sg(feat), nets.sg(returns), weight, new_retnorm, metrics)

    def train_step(self, state, batch, key):
        """One full update (world model, actor, critic); pure, jit it whole."""
        cfg = self.cfg
        params = state["params"]
        batch = common.time_major(batch)
        k_wm, k_img = jax.random.split(key)
        (wm_loss, (post, wm_metrics)), wm_grads = jax.value_and_grad(
            lambda p: world_model_loss(self.wm, p, batch, k_wm), has_aux=True)(params["wm"])
        start = jax.tree.map(lambda x: nets.sg(x.reshape(-1, *x.shape[2:])), post)
        task = batch["task"].reshape(-1, self.task_dim) if self.task_dim else None
        (a_loss, (feat, returns, weight, retnorm, ac_metrics)), a_grads = jax.value_and_grad(
            self.actor_loss, has_aux=True)(params["actor"], params["wm"], params["critic"], state["retnorm"],
                                           start, task, k_img, start_continue(batch))
        c_loss, c_grads = jax.value_and_grad(
            lambda p: common.critic_loss(self.critic, p, state["slow_critic"], feat, returns, weight))(
            params["critic"])
        grads = {"wm": wm_grads, "actor": a_grads, "critic": c_grads}
        new_params, new_opt = common.apply_updates(params, state["opt"], grads, self.optimizers)
        new_state = {"params": new_params, "opt": new_opt, "retnorm": retnorm,
                     "slow_critic": common.ema(state["slow_critic"], new_params["critic"], cfg.slow_critic_fraction)}
        new_state = common.keep_frozen(new_state, state, self.owners, self.trainable)
        metrics = {"loss/wm": wm_loss, "loss/actor": a_loss, "loss/critic": c_loss, **wm_metrics, **ac_metrics}
        return new_state, metrics

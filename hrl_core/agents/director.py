"""Director: a manager picks a latent goal every K steps, a worker reaches it; both on the shared world model.

Parts (for freezing and fine-tuning): WM world model, G goal autoencoder, M manager, W worker, V the three critics.

- Goal space: the world model's deter vector. The goal autoencoder (G) encodes a deter state into `goal_codes`
  categoricals of `goal_classes` (straight-through one-hot samples) and decodes it back; it trains on replayed
  posterior states: squared reconstruction error + beta KL(q(z|s) || uniform). As in Director, beta is adapted
  multiplicatively (x or / (1 + adapt_rate)) only when the KL leaves a +-adapt_band band around `goal_kl_target`
  nats, and is bounded to [1e-5, 1] (choice: target-KL, as Director, not free nats).
- Manager (M): every K steps samples a code from pi(z | state, task); the decoded goal is held for K steps. Trained
  by REINFORCE on the abstract trajectory (H/K decisions, discount gamma^K) with advantage w_ext A_ext + w_expl
  A_expl, each term from its own critic and return normaliser. A decision's reward is, as in Director, the
  continue-masked mean of the K per-step rewards of its segment. Extrinsic reward: the world model's reward head;
  exploration reward: the goal autoencoder's reconstruction error of the next state.
  - Normalisation (`director_norm`). "std", Director's own: each critic's return (and its value baseline) is divided
    by a running std of that return (decay 0.999, floored at 0.01, so a small return is amplified up to x100); the
    weighted sum of the normalised advantages is then normalised by its own running mean and std (decay 0.99).
    "percentile": DreamerV3's max(1, P95 - P5) per critic and no advantage normalisation (the earlier update).
  - Entropy (`manager_entropy`). "per_slot", Director's own: each code slot's entropy divided by log(classes), with
    one scale per slot starting at `manager_entropy_init` (1) and adapted the banded way to hold each slot at
    `manager_entropy_target` (0.5); the code distribution mixes in `manager_unimix` (1%) of the uniform one, in
    acting and in the loss. "summed": one scale on the summed entropy, held at the target fraction of its maximum.
- Optimiser (`director_optimizer`): "director" gives the goal autoencoder, manager, worker and critics Director's
  Adam (lr 1e-4, eps 1e-6, clip 100, decoupled weight decay 1e-2 on kernels); the world model keeps the shared one.
- Worker (W): pi(a | state, goal [, task]) trained by backprop through the model on weighted rewards
  (`worker_rewards`, Director's `worker_rews`): the max-cosine goal reward r = (g/m).(s/m), m = max(|g|, |s|); the
  extrinsic reward ("extr", the reward head: "director+wr" has goal=1,extr=1); the exploration reward ("expl").
  `worker_critics` "separate", Director's: each non-zero reward has its own critic and return normaliser, and the
  weights act on the normalised advantages, so a task reward of 1e-3 a step counts as much as a goal reward of 0.3;
  their weighted sum is then normalised as the manager's ("std"). "summed", the earlier form: one goal critic on
  goal + `worker_extrinsic` x extr.
  Its returns are computed per goal segment over K+1 overlapping states (choice: overlapping windows), so the value
  bootstrapped at a segment's end is for the goal that segment pursued.
- Critics (`director_critic`). "ema", DreamerV3's: the lambda-returns bootstrap, and the advantages subtract, the
  online critic's values; the two-hot loss has a regulariser towards a slow EMA copy. "target", Director's: both come
  from a target copy hard-copied from the online critic every `critic_target_every` (100) updates, and the loss
  has no regulariser. `worker_baseline` "grad" keeps the worker's baseline V(s_t) inside its gradient, as
  Director's backprop worker does ("stop": a constant).
- Both policies see the imagined latent through a stop-gradient (as in Director and DreamerV3); the start state's
  losses are weighted by 1 - is_terminal. Evaluation (policy mode "eval") samples the manager's codes and takes the
  worker's mean action, as Director does.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp

from hrl_core import nets
from hrl_core.agents import common
from hrl_core.config import Config
from hrl_core.validation import check_choice
from hrl_core.world_model import WorldModel, features, imagine, imagined_outcomes, start_continue, world_model_loss

PART_PARAMS = {"WM": ("wm",), "G": ("goal_ae",), "M": ("manager",), "W": ("worker",),
               "V": ("critic_ext", "critic_expl", "critic_goal")}
MANAGER_REWARDS = ("ext", "expl")
# The worker's critic per reward of config.WORKER_REWARDS ("goal" keeps its name, so earlier runs load).
WORKER_CRITIC = {"goal": "goal", "extr": "wextr", "expl": "wexpl"}
GOAL_KL_SCALE_BOUNDS = (1e-5, 1.0)  # Director's bounds on the goal autoencoder's KL weight
ENTROPY_SCALE_BOUNDS = (1e-5, 1e2)  # Director's bounds on an entropy scale
RETURN_NORM = (0.999, 1e2)  # Director's return normaliser: (decay, largest amplification)
ADVANTAGE_NORM = (0.99, 1e8)  # Director's advantage normaliser
DIRECTOR_ADAM = dict(lr=1e-4, clip=100.0, eps=1e-6, weight_decay=1e-2)  # Director's actor, critic and goal optimiser


def max_cosine(goal, state):
    """(g/m) . (s/m) with m = max(|g|, |s|): the cosine when the norms match, smaller when they do not."""
    norm = jnp.maximum(jnp.linalg.norm(goal, axis=-1), jnp.linalg.norm(state, axis=-1))[..., None]
    norm = jnp.maximum(norm, 1e-8)
    return jnp.sum((goal / norm) * (state / norm), -1)


class GoalAutoencoder(nn.Module):
    """Goals (deter vectors) to codes and back. With `context` (Director's context-conditioned goals), both the
    encoder and the decoder also see the state the goal is set from, so a code means a goal reachable from there."""
    codes: int
    classes: int
    units: int
    layers: int
    deter: int
    context: bool = False

    def setup(self):
        self.encoder = nets.MLP(self.units, self.layers, self.codes * self.classes)
        self.decoder = nets.MLP(self.units, self.layers, self.deter)

    def _with(self, x, context):
        if self.context != (context is not None):
            raise ValueError(f"goal_context={self.context} is this goal autoencoder's, but a context was "
                             f"{'not ' if context is None else ''}given")
        return x if context is None else jnp.concatenate([x, jnp.broadcast_to(context, (*x.shape[:-1],
                                                                                       context.shape[-1]))], -1)

    def encode(self, deter, context=None):
        return self.encoder(self._with(deter, context)).reshape(*deter.shape[:-1], self.codes, self.classes)

    def decode(self, code, context=None):
        return self.decoder(self._with(code.reshape(*code.shape[:-2], -1), context))

    def __call__(self, deter, key, context=None):
        logits = self.encode(deter, context)
        return self.decode(nets.sample_onehot(key, logits), context), logits


class Manager(nn.Module):
    codes: int
    classes: int
    units: int
    layers: int

    @nn.compact
    def __call__(self, feat):
        return nets.MLP(self.units, self.layers, self.codes * self.classes)(feat).reshape(
            *feat.shape[:-1], self.codes, self.classes)


class DirectorAgent:
    def __init__(self, cfg: Config, obs_space: dict, act_space):
        self.cfg, self.obs_space, self.act_space = cfg, obs_space, act_space
        self.wm = common.world_model_for(cfg, obs_space, act_space)
        self.task_dim = obs_space["task"].shape[0] if "task" in obs_space else 0
        units, layers = cfg.mlp_units, cfg.mlp_layers
        self.goal_ae = GoalAutoencoder(cfg.goal_codes, cfg.goal_classes, units, layers, cfg.deter, cfg.goal_context)
        self.manager = Manager(cfg.goal_codes, cfg.goal_classes, units, layers)
        self.worker = common.Actor(act_space.shape[0], units, layers)
        self.critic = common.Critic(units, layers)
        ac = (common.optimizer(**DIRECTOR_ADAM) if cfg.director_optimizer == "director"
              else common.optimizer(cfg.ac_lr, cfg.ac_clip, 1e-5))
        self.optimizers = {"wm": common.optimizer(cfg.wm_lr, cfg.wm_clip, 1e-8), "goal_ae": ac, "manager": ac,
                           "worker": ac, "critic_ext": ac, "critic_expl": ac, "critic_goal": ac}
        self.worker_critics = {r: WORKER_CRITIC[r] for r in cfg.worker_reward_weights}  # reward -> critic name
        self.rewards = (*MANAGER_REWARDS, *self.worker_critics.values())  # every critic's name
        self.optimizers.update({f"critic_{r}": ac for r in self.rewards})
        self.part_params = {**PART_PARAMS, "V": tuple(f"critic_{r}" for r in self.rewards)}
        self.trainable = {name for part in cfg.parts for name in self.part_params[part]}
        # The state beside the gradients moves with the part it serves (common.keep_frozen): a frozen part keeps its
        # slow critics, normaliser statistics and adapted scales.
        self.owners = {**common.group_owners(self.optimizers),
                       **{f"slow_critic/{r}": f"critic_{r}" for r in self.rewards},
                       **{f"retnorm/{r}": "manager" if r in MANAGER_REWARDS else "worker" for r in self.rewards},
                       "advnorm/manager": "manager", "advnorm/worker": "worker",
                       "adapt/goal_kl": "goal_ae", "adapt/manager_entropy": "manager"}
        self.max_manager_entropy = cfg.goal_codes * jnp.log(cfg.goal_classes)

    # ----- inputs -----
    def _task(self, task, like):
        return None if task is None else jnp.broadcast_to(task, (*like.shape[:-1], task.shape[-1]))

    def manager_input(self, latent, task):
        return features(latent, self._task(task, latent["deter"]))

    def worker_input(self, latent, goal, task):
        feat = features(latent, self._task(task, latent["deter"]) if self.cfg.worker_task_input else None)
        return jnp.concatenate([feat, goal], -1)

    # ----- set-up -----
    def init(self, key) -> dict:
        cfg = self.cfg
        keys = jax.random.split(key, 9)
        obs = common.dummy_obs(self.obs_space)
        task = obs.get("task")
        wm_params = self.wm.init(keys[0], obs, jnp.zeros((1, self.act_space.shape[0])), task, keys[1])
        latent = self.wm.initial((1,))
        goal = jnp.zeros((1, cfg.deter))
        m_feat, w_feat = self.manager_input(latent, task), self.worker_input(latent, goal, task)
        params = {"wm": wm_params, "goal_ae": self.goal_ae.init(keys[2], goal, keys[3], self.context(goal)),
                  "manager": self.manager.init(keys[4], m_feat), "worker": self.worker.init(keys[5], w_feat),
                  "critic_ext": self.critic.init(keys[6], m_feat), "critic_expl": self.critic.init(keys[7], m_feat)}
        for i, name in enumerate(self.worker_critics.values()):  # the goal critic from the key it always had
            params[f"critic_{name}"] = self.critic.init(keys[8] if name == "goal" else jax.random.fold_in(keys[8], i),
                                                        w_feat)
        return {"params": params, "opt": {k: self.optimizers[k].init(v) for k, v in params.items()},
                "slow_critic": {r: params[f"critic_{r}"] for r in self.rewards},
                **self._init_norms(),
                **({"critic_updates": jnp.zeros((), jnp.int32)} if cfg.director_critic == "target" else {}),
                # Log scales, strongly typed float32 so that the update never recompiles.
                "adapt": {"goal_kl": jnp.zeros((), jnp.float32),
                          "manager_entropy": jnp.full((cfg.goal_codes,) if cfg.manager_entropy == "per_slot" else (),
                                                      jnp.log(cfg.manager_entropy_init), jnp.float32)}}

    def _init_norms(self) -> dict:
        if self.cfg.director_norm == "percentile":
            return {"retnorm": {r: {"lo": jnp.zeros(()), "hi": jnp.zeros(())} for r in self.rewards}}
        return {"retnorm": {r: nets.init_moments() for r in self.rewards},
                "advnorm": {"manager": nets.init_moments(), "worker": nets.init_moments()}}

    def value_params(self, state, params, name: str):
        """The critic whose values bootstrap the returns and form the baseline: the online one ("ema") or its target
        copy ("target")."""
        return state["slow_critic"][name] if self.cfg.director_critic == "target" else params[f"critic_{name}"]

    def _normalised_advantage(self, norm_state, returns, baseline, baseline_grad: bool = False):
        """(new normaliser state, (returns - baseline) / scale, scale) for one critic; `returns` carries gradients
        (the worker backpropagates through them), the scale does not, the baseline only with `baseline_grad`."""
        if self.cfg.director_norm == "percentile":
            new, scale = nets.update_return_scale(norm_state, nets.sg(returns), self.cfg.return_norm_decay)
        else:
            new = nets.update_moments(norm_state, nets.sg(returns), RETURN_NORM[0])
            scale = 1.0 / nets.moments_stats(new, *RETURN_NORM)[1]
        baseline = baseline if baseline_grad else nets.sg(baseline)
        return new, (returns - baseline) / nets.sg(scale), scale

    def _weighted_advantage(self, norm_states: dict, terms: dict, baseline_grad: bool = False):
        """Director's per-critic advantages: for each critic `name` in `terms` {name: (weight, returns, baseline)},
        (returns - baseline) / that critic's own return scale, then weighted and summed, so the weights act after
        normalisation and a reward's size does not decide its share. Returns (new normaliser states {name: ...}, the
        sum, {name: (scale, std of the normalised advantage)})."""
        new, total, stats = {}, 0.0, {}
        for name, (weight, returns, baseline) in terms.items():
            new[name], normalised, scale = self._normalised_advantage(norm_states[name], returns, baseline,
                                                                      baseline_grad)
            total = total + weight * normalised
            stats[name] = (scale, jnp.std(normalised))
        return new, total, stats

    def _normalise_advantage(self, norm_state, advantage):
        """Director's advantage normalisation, (A - mean) / std from running moments ("std" only)."""
        new = nets.update_moments(norm_state, nets.sg(advantage), ADVANTAGE_NORM[0])
        mean, inv_std = nets.moments_stats(new, *ADVANTAGE_NORM)
        return new, (advantage - nets.sg(mean)) * nets.sg(inv_std)

    def manager_logits(self, params, feat):
        """Log-probabilities of the manager's codes [..., codes, classes], with `manager_unimix` of uniform mixed in."""
        logits = self.manager.apply(params, feat)
        return nets.unimix_logits(logits, self.cfg.manager_unimix) if self.cfg.manager_unimix else logits

    def initial_carry(self, batch: int) -> dict:
        cfg = self.cfg
        return {"state": self.wm.initial((batch,)), "prev_action": jnp.zeros((batch, self.act_space.shape[0])),
                "goal": jnp.zeros((batch, cfg.deter)), "code": jnp.zeros((batch, cfg.goal_codes, cfg.goal_classes)),
                "t": jnp.zeros((batch,), jnp.int32)}

    def context(self, deter):
        """The goal autoencoder's context: the state a goal is set from (`goal_context`), else None."""
        return deter if self.cfg.goal_context else None

    def decode_goal(self, params, code, deter):
        """The goal of one-hot `code` set from states `deter` (used only with `goal_context`)."""
        return self.goal_ae.apply(params["goal_ae"], code, self.context(deter), method=GoalAutoencoder.decode)

    # ----- acting -----
    def choose_goal(self, params, latent, task, key, sample: bool):
        logits = self.manager_logits(params["manager"], self.manager_input(latent, task))
        code = jax.nn.one_hot(jax.random.categorical(key, logits) if sample else jnp.argmax(logits, -1),
                              self.cfg.goal_classes)
        return code, self.decode_goal(params, code, latent["deter"])

    def policy(self, state, carry, obs, key, mode: str = "train"):
        """One env step: the manager decides where t % K == 0 (t counts from each episode's first step).

        `mode` is one of common.POLICY_MODES (static under jit): "train" samples codes and actions, "eval" samples
        codes and takes the worker's mean action (Director's evaluation), "mode" takes argmax codes and means."""
        check_choice("policy mode", mode, common.POLICY_MODES)
        params = state["params"]
        k_obs, k_goal, k_act = jax.random.split(key, 3)
        task = obs.get("task")
        embed = self.wm.apply(params["wm"], obs, method=WorldModel.embed)
        latent, _, _ = self.wm.apply(params["wm"], carry["state"], carry["prev_action"], embed, obs["is_first"],
                                     task, k_obs, method=WorldModel.obs_step)
        t = jnp.where(obs["is_first"], 0, carry["t"])
        goal_reward = max_cosine(carry["goal"], latent["deter"])  # how close this step came to the held goal
        decide = (t % self.cfg.manager_period == 0)
        new_code, new_goal = self.choose_goal(params, latent, task, k_goal, mode != "mode")
        code = jnp.where(decide[:, None, None], new_code, carry["code"])
        goal = jnp.where(decide[:, None], new_goal, carry["goal"])
        mean, std = self.worker.apply(params["worker"], self.worker_input(latent, goal, task))
        action = common.sample_action(k_act, mean, std) if mode == "train" else mean
        aux = {"code": jnp.argmax(code, -1), "goal": goal, "decision": decide,
               "goal_reward": jnp.where(obs["is_first"], 0.0, goal_reward),
               "goal_distance": jnp.linalg.norm(goal - latent["deter"], axis=-1), "deter": latent["deter"]}
        return action, {"state": latent, "prev_action": action, "goal": goal, "code": code, "t": t + 1}, aux

    # ----- learning -----
    def goal_ae_loss(self, params, deter, log_beta, key):
        """`deter`: replayed posterior states [T, B, deter]. Without context every state is a goal; with
        `goal_context` the pairs (s_t, s_t+K) of each sequence are (context, goal), as Director's replay pairs."""
        cfg = self.cfg
        k = cfg.manager_period
        if cfg.goal_context:
            context, deter = deter[:-k].reshape(-1, deter.shape[-1]), deter[k:].reshape(-1, deter.shape[-1])
        else:
            context, deter = None, deter.reshape(-1, deter.shape[-1])
        recon, logits = self.goal_ae.apply(params, deter, key, context)
        rec = jnp.sum((recon - deter) ** 2, -1).mean()
        uniform = jnp.zeros_like(logits)
        kl = nets.categorical_kl(logits, uniform).mean()
        new_log_beta = nets.adapt_log_scale(log_beta, kl, cfg.goal_kl_target, cfg.adapt_rate, cfg.adapt_band,
                                            *GOAL_KL_SCALE_BOUNDS)
        return rec + jnp.exp(log_beta) * kl, (new_log_beta, {"goal/recon": rec, "goal/kl": kl,
                                                             "goal/beta": jnp.exp(log_beta)})

    def _segments(self, x):
        """[H+1, N, ...] -> [K+1, D*N, ...]: the K+1 states of each of the D = H/K goal segments.

        Built from a reshape and a strided slice (no gather, whose gradient is a slow scatter on CPU)."""
        cfg = self.cfg
        d, k = cfg.horizon // cfg.manager_period, cfg.manager_period
        body = jnp.swapaxes(x[:-1].reshape(d, k, *x.shape[1:]), 0, 1)  # [K, D, N, ...]
        ends = x[k::k][None]  # [1, D, N, ...]: each segment's last state is the next one's first
        return jnp.concatenate([body, ends], 0).reshape(k + 1, -1, *x.shape[2:])

    def worker_loss(self, worker_params, params, state, start, task, key, start_cont=None):
        cfg = self.cfg
        k_img, k_explore = jax.random.split(key)
        k_random_goal = jax.random.fold_in(k_explore, 1)  # a separate stream: the others stay as they were
        n = start["deter"].shape[0]

        def act(carry, latent, t, k):
            k_goal, k_act = jax.random.split(k)
            decide = t % cfg.manager_period == 0
            new_code, new_goal = self.choose_goal(params, nets.sg(latent), task, k_goal, True)
            code = jnp.where(decide, new_code, carry["code"])
            goal = nets.sg(jnp.where(decide, new_goal, carry["goal"]))
            mean, std = self.worker.apply(worker_params, self.worker_input(nets.sg(latent), goal, task))
            aux = {"code": code, "goal": goal, "entropy": common.normal_entropy(std)}
            return common.sample_action(k_act, mean, std), {"code": code, "goal": goal}, aux

        carry0 = {"code": jnp.zeros((n, cfg.goal_codes, cfg.goal_classes)), "goal": jnp.zeros((n, cfg.deter))}
        states, _, aux = imagine(self.wm, params["wm"], start, task, cfg.horizon, act, carry0, k_img)
        feat, r_ext, cont, weight = imagined_outcomes(self.wm, params["wm"], states, task, cfg.discount, start_cont)
        nxt = states["deter"][1:]
        # Exploration: how badly the goal autoencoder reconstructs the states reached (from the start, in context).
        recon, _ = self.goal_ae.apply(params["goal_ae"], nxt, k_explore, self.context(nets.sg(start["deter"])))
        r_expl = jnp.mean((recon - nxt) ** 2, -1)
        r_goal = max_cosine(aux["goal"], nxt)
        rewards = ({"goal": r_goal + cfg.worker_extrinsic * r_ext} if cfg.worker_critics == "summed"
                   else {"goal": r_goal, "extr": r_ext, "expl": r_expl})

        # Worker returns per goal segment (K+1 states, value bootstrapped with the segment's own goal).
        goal_seg = self._segments(jnp.concatenate([aux["goal"], aux["goal"][-1:]], 0))[:1]  # goal at segment start
        states_seg = jax.tree.map(self._segments, states)
        w_in = self.worker_input(states_seg, jnp.broadcast_to(goal_seg, (*states_seg["deter"].shape[:-1],
                                                                          cfg.deter)), task_segments(task, cfg))
        seg = lambda x: self._segments(jnp.concatenate([x, x[-1:]], 0))[:-1]  # noqa: E731  [K, D*N]
        std_norm = cfg.director_norm == "std"
        terms = {}  # each reward's own critic: {critic name: (weight, returns, baseline)}
        for reward, reward_weight in cfg.worker_reward_weights.items():
            name = self.worker_critics[reward]
            value = nets.two_hot_mean(self.critic.apply(self.value_params(state, params, name), w_in))
            returns = nets.lambda_returns(seg(rewards[reward]), value, seg(cont), cfg.discount, cfg.lam)
            # The percentile normaliser keeps DreamerV3's baseline-free objective; its gradient is the same.
            terms[name] = (reward_weight, returns, value[:-1] if std_norm else jnp.zeros_like(returns))
        retnorm, advantage, stats = self._weighted_advantage(state["retnorm"], terms, cfg.worker_baseline == "grad")
        norms, all_returns = {"retnorm": retnorm}, {name: term[1] for name, term in terms.items()}
        metrics = {"worker/advantage_std": jnp.std(advantage)}  # before the advantage normaliser
        for reward, name in self.worker_critics.items():
            metrics.update({f"worker/return_scale_{reward}": stats[name][0], f"worker/return_{reward}":
                            all_returns[name].mean(), f"worker/advantage_std_{reward}": stats[name][1]})
        if "goal" in self.worker_critics:
            metrics["worker/return_scale"] = metrics["worker/return_scale_goal"]
        if std_norm:
            norms["advnorm"], advantage = self._normalise_advantage(state["advnorm"]["worker"], advantage)
        seg_weight = nets.sg(jnp.cumprod(jnp.concatenate(
            [jnp.ones_like(returns[:1]), cfg.discount * seg(cont)[:-1]], 0), 0) * seg(weight)[:1])
        entropy = seg(aux["entropy"])
        objective = advantage + cfg.actor_entropy * entropy
        loss = -jnp.mean(seg_weight * objective)
        traj = {"states": nets.sg(states), "code": aux["code"], "r_ext": nets.sg(r_ext), "r_expl": nets.sg(r_expl),
                "cont": nets.sg(cont), "weight": weight, "w_in": nets.sg(w_in), "w_returns": nets.sg(all_returns),
                "w_weight": seg_weight}
        metrics.update({"worker/goal_reward": r_goal.mean(),
                        "worker/return": all_returns.get("goal", next(iter(all_returns.values()))).mean(),
                        "worker/entropy": aux["entropy"].mean(), "manager/explore_reward": r_expl.mean(),
                        "imag/reward": r_ext.mean(),
                        **self.goal_reach(nets.sg(states["deter"]), aux["goal"], k_random_goal, params)})
        return loss, (traj, norms, metrics)

    def goal_reach(self, deter, goals, key, params) -> dict:
        """How much of the distance to its goal each K-step segment closes, (d_start - d_end) / d_start, averaged;
        and the same for a goal decoded from a uniformly random code over the same states. Reach near the random
        goal's means the worker does not pursue its goals; a reach well above it, a worker that does."""
        k = self.cfg.manager_period
        start, end, goal = deter[:-1][::k], deter[k::k], nets.sg(goals[::k])
        random_code = jax.nn.one_hot(jax.random.randint(key, (*goal.shape[:-1], self.cfg.goal_codes), 0,
                                                        self.cfg.goal_classes), self.cfg.goal_classes)
        random_goal = self.decode_goal(params, random_code, start)

        def closed(g):
            before = jnp.linalg.norm(g - start, axis=-1)
            return jnp.mean((before - jnp.linalg.norm(g - end, axis=-1)) / jnp.maximum(before, 1e-8))

        return {"goal/reach": closed(goal), "goal/reach_random": closed(random_goal)}

    def manager_terms(self, params, state, traj, task):
        """Abstract trajectory: decisions at t = 0, K, ..; per-reward lambda-returns, normalised advantages.

        A decision's reward is the continue-masked mean of its segment's K rewards: reward[t] (arriving at state
        t+1) counts with the product of the continue flags of states jK..t, the segment's start state included
        (its flag is 1 - is_terminal for the replayed start). Abstract continue: the product of a segment's
        predicted flags; discount gamma^K; weights: the imagined trajectory's weights at the decision states."""
        cfg = self.cfg
        k, d = cfg.manager_period, cfg.horizon // cfg.manager_period
        decision_states = jax.tree.map(lambda x: x[::k], traj["states"])  # [D+1, N, ...]
        m_in = self.manager_input(decision_states, task)
        segments = lambda x: x.reshape(d, k, *x.shape[1:])  # noqa: E731  [H, N] -> [D, K, N]
        flags = jnp.concatenate([traj["weight"][:1], traj["cont"][:-1]], 0)  # continue flag of states 0..H-1
        mask = jnp.cumprod(segments(flags), 1)
        seg_mean = lambda x: (segments(x) * mask).mean(1)  # noqa: E731
        cont = segments(traj["cont"]).prod(1)
        out = {"m_in": m_in, "cont": cont}
        terms = {}
        for name, weight in (("ext", cfg.extrinsic_weight), ("expl", cfg.exploration_weight)):
            value = nets.two_hot_mean(self.critic.apply(self.value_params(state, params, name), m_in))
            returns = nets.lambda_returns(seg_mean(traj[f"r_{name}"]), value, cont, cfg.discount ** k, cfg.lam)
            terms[name] = (weight, returns, value[:-1])
            out[f"returns_{name}"] = returns
        retnorm, advantage, stats = self._weighted_advantage(state["retnorm"], terms)
        norms = {"retnorm": retnorm}
        for name in terms:
            out[f"scale_{name}"], out[f"advantage_std_{name}"] = stats[name]
        out["advantage_std"] = jnp.std(advantage)  # before the advantage normaliser
        if cfg.director_norm == "std":
            norms["advnorm"], advantage = self._normalise_advantage(state["advnorm"]["manager"], advantage)
        out["advantage"] = nets.sg(advantage)
        out["weight"] = traj["weight"][::k]
        return out, norms

    def manager_loss(self, manager_params, m_in, codes, advantage, weight, log_eta):
        """REINFORCE with an adapted entropy bonus; returns (loss, (the entropy the scale adapts to, summed
        entropy)). "per_slot": each slot's entropy / log(classes) times its own scale, the per-slot batch means
        adapted; "summed": one scale on the summed entropy."""
        logp_all = jax.nn.log_softmax(self.manager_logits(manager_params, m_in[:-1]))
        logp = jnp.sum(codes * logp_all, (-2, -1))
        slot_entropy = -jnp.sum(jnp.exp(logp_all) * logp_all, -1)  # [D, N, codes]
        if self.cfg.manager_entropy == "per_slot":
            normalised = slot_entropy / jnp.log(self.cfg.goal_classes)
            bonus, tracked = jnp.sum(jnp.exp(log_eta) * normalised, -1), normalised.mean((0, 1))
        else:
            entropy = slot_entropy.sum(-1)
            bonus, tracked = jnp.exp(log_eta) * entropy, entropy.mean()
        loss = -jnp.mean(weight * (logp * advantage + bonus))
        return loss, (tracked, slot_entropy.sum(-1).mean())

    def train_step(self, state, batch, key):
        """One full update (world model, goal autoencoder, manager, worker, critics); pure, jit it whole."""
        cfg = self.cfg
        params = state["params"]
        batch = common.time_major(batch)
        k_wm, k_goal, k_img = jax.random.split(key, 3)
        (wm_loss, (post, wm_metrics)), wm_grads = jax.value_and_grad(
            lambda p: world_model_loss(self.wm, p, batch, k_wm), has_aux=True)(params["wm"])
        start = jax.tree.map(lambda x: nets.sg(x.reshape(-1, *x.shape[2:])), post)
        task = batch["task"].reshape(-1, self.task_dim) if self.task_dim else None

        (g_loss, (log_beta, g_metrics)), g_grads = jax.value_and_grad(self.goal_ae_loss, has_aux=True)(
            params["goal_ae"], nets.sg(post["deter"]), state["adapt"]["goal_kl"], k_goal)
        (w_loss, (traj, w_norms, w_metrics)), w_grads = jax.value_and_grad(self.worker_loss, has_aux=True)(
            params["worker"], params, state, start, task, k_img, start_continue(batch))
        m, m_norms = self.manager_terms(params, state, traj, task)
        codes = traj["code"][::cfg.manager_period]
        (m_loss, (tracked, m_entropy)), m_grads = jax.value_and_grad(self.manager_loss, has_aux=True)(
            params["manager"], m["m_in"], codes, m["advantage"], m["weight"], state["adapt"]["manager_entropy"])
        target = cfg.manager_entropy_target * (1.0 if cfg.manager_entropy == "per_slot" else self.max_manager_entropy)
        log_eta = nets.adapt_log_scale(state["adapt"]["manager_entropy"], tracked, target, cfg.adapt_rate,
                                       cfg.adapt_band, *ENTROPY_SCALE_BOUNDS, raise_above=False)

        grads = {"wm": wm_grads, "goal_ae": g_grads, "manager": m_grads, "worker": w_grads}
        c_losses = {}
        inputs = {"ext": (m["m_in"], m["returns_ext"], m["weight"]), "expl": (m["m_in"], m["returns_expl"], m["weight"]),
                  **{name: (traj["w_in"], returns, traj["w_weight"]) for name, returns in traj["w_returns"].items()}}
        target_critic = cfg.director_critic == "target"
        for name, (feat, returns, weight) in inputs.items():
            regulariser = None if target_critic else state["slow_critic"][name]
            c_losses[name], grads[f"critic_{name}"] = jax.value_and_grad(
                lambda p: common.critic_loss(self.critic, p, regulariser, feat, returns, weight))(
                params[f"critic_{name}"])
        new_params, new_opt = common.apply_updates(params, state["opt"], grads, self.optimizers)
        if target_critic:
            count = state["critic_updates"] + 1
            follow = lambda slow, fast: common.hard_copy_every(slow, fast, count, cfg.critic_target_every)  # noqa: E731
        else:
            follow = lambda slow, fast: common.ema(slow, fast, cfg.slow_critic_fraction)  # noqa: E731
        new_norms = {**m_norms["retnorm"], **w_norms["retnorm"]}
        new_state = {"params": new_params, "opt": new_opt,
                     "slow_critic": {r: follow(state["slow_critic"][r], new_params[f"critic_{r}"])
                                     for r in self.rewards},
                     "retnorm": {r: new_norms[r] for r in self.rewards},
                     "adapt": {"goal_kl": log_beta, "manager_entropy": log_eta}}
        if target_critic:
            new_state["critic_updates"] = count
        if "advnorm" in state:
            new_state["advnorm"] = {"manager": m_norms["advnorm"], "worker": w_norms["advnorm"]}
        new_state = common.keep_frozen(new_state, state, self.owners, self.trainable)
        metrics = {"loss/wm": wm_loss, "loss/goal_ae": g_loss, "loss/worker": w_loss, "loss/manager": m_loss,
                   "manager/entropy": m_entropy, "manager/entropy_scale": jnp.exp(log_eta).mean(),
                   "manager/distinct_codes": distinct_codes(codes),
                   "manager/advantage": m["advantage"].mean(), "manager/advantage_std": m["advantage_std"],
                   "manager/return_ext": m["returns_ext"].mean(), "manager/return_scale_ext": m["scale_ext"],
                   "manager/return_scale_expl": m["scale_expl"],
                   "manager/advantage_std_ext": m["advantage_std_ext"],
                   "manager/advantage_std_expl": m["advantage_std_expl"],
                   **{f"loss/critic_{k}": v for k, v in c_losses.items()}, **wm_metrics, **g_metrics, **w_metrics}
        return new_state, metrics


def distinct_codes(codes):
    """How many different whole codes (all slots) occur among one-hot codes [..., codes, classes]: each code is
    hashed to one integer (exact while classes^codes < 2^32; a rare collision only undercounts), then counted in
    a sort (static shapes under jit)."""
    index = jnp.argmax(codes, -1).reshape(-1, codes.shape[-2]).astype(jnp.uint32)
    place = jnp.uint32(codes.shape[-1]) ** jnp.arange(codes.shape[-2], dtype=jnp.uint32)
    ordered = jnp.sort(jnp.sum(index * place, -1, dtype=jnp.uint32))
    return 1 + jnp.sum(ordered[1:] != ordered[:-1])


def task_segments(task, cfg: Config):
    """The per-start task vector broadcast over segment layout [K+1, D*N, task] (tasks are constant in a rollout)."""
    if task is None:
        return None
    d = cfg.horizon // cfg.manager_period
    return jnp.broadcast_to(jnp.tile(task, (d, 1))[None], (cfg.manager_period + 1, d * task.shape[0], task.shape[-1]))

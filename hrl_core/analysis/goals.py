"""Rollout traces and the manager's goals decoded into images.

A goal lives in the world model's deter space. To see it, take the stochastic part as the mode of the prior given
that deter, and decode (deter, stoch[, task]) with the world model's image decoder. `GoalDreamer` goes the other
way for the goal-space explorer: any code -> its goal image, and the worker pursuing it in imagination.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from hrl_core.agents.common import policy_obs
from hrl_core.agents.director import GoalAutoencoder, max_cosine
from hrl_core.envs import make_env
from hrl_core.learned import load_agent
from hrl_core.validation import check_non_negative, check_positive
from hrl_core.world_model import WorldModel, features, imagine


def _to_uint8(image):
    return jnp.clip(image * 255.0, 0, 255).astype(jnp.uint8)


def _decode_deter(agent, wm_params, deter, task):
    """deter [N, D] -> uint8 images [N, size, size, 3], with the prior's most likely stoch (jnp, jit-friendly)."""
    logits = agent.wm.apply(wm_params, deter, method=WorldModel.prior_logits)
    stoch = jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1])
    if task is not None:
        task = jnp.broadcast_to(task, (deter.shape[0], agent.task_dim))
    feat = features({"deter": deter, "stoch": stoch}, task)
    return _to_uint8(agent.wm.apply(wm_params, feat, method=WorldModel.decode)["image"])


def decode_goals(agent, state, goals, task=None) -> np.ndarray:
    """Goals [N, deter] -> uint8 images [N, size, size, 3] (the run's image size)."""
    task = None if task is None else jnp.asarray(task, jnp.float32)
    return np.asarray(_decode_deter(agent, state["params"]["wm"], jnp.asarray(goals, jnp.float32), task))


def rollout_trace(agent, state, env, steps: int, seed: int = 0, mode: str = "eval", progress: bool = True) -> dict:
    """Runs `steps` env steps (across episodes) and records, per step, the observation and the policy's internals.

    Keys: image, reward, is_first, action, stoch (the posterior's one-hot stochastic state), and for Director code,
    goal, decision, goal_reward, goal_distance, deter (with stoch, the full latent: where the explorer dreams from),
    plus goal_image (the held goal decoded, aligned with image) and state_image (the current deter decoded the same
    way: what a perfectly reached goal would look like, and how well the decoder sees this state at all). `mode` is
    the policy mode (agents.common.POLICY_MODES; "eval": the agent's reference evaluation behaviour).
    """
    policy = jax.jit(agent.policy, static_argnames="mode")
    key = jax.random.PRNGKey(seed)
    obs = env.reset()
    carry = agent.initial_carry(1)
    rows = []
    for _ in tqdm(range(steps), desc="trace", disable=not progress):
        key, k = jax.random.split(key)
        action, carry, aux = policy(state, carry, policy_obs(obs, add_batch=True), k, mode=mode)
        row = {"image": obs["image"], "reward": float(obs["reward"]), "is_first": bool(obs["is_first"]),
               "action": np.asarray(action[0]), "stoch": np.asarray(carry["state"]["stoch"][0])}
        row.update({name: np.asarray(value[0]) for name, value in jax.device_get(aux).items()})
        if "task" in obs:
            row["task"] = obs["task"]
        rows.append(row)
        obs = env.step(row["action"])
    trace = {k: np.stack([r[k] for r in rows]) for k in rows[0]}
    if "goal" in trace:
        trace["goal_image"] = decode_goals(agent, state, trace["goal"], trace.get("task"))
        trace["state_image"] = decode_goals(agent, state, trace["deter"], trace.get("task"))
    return trace


def run_trace(logdir, steps: int = 64, task: str | None = None, seed: int = 0, env_options: dict | None = None) -> dict:
    """Loads a run's checkpoint and records a trace on its task (or `task`)."""
    agent, state, run = load_agent(logdir)
    env = make_env(task or run.spec.task, seed=seed, **{**run.spec.env_options, **(env_options or {})})
    return rollout_trace(agent, state, env, steps, seed)


def split_episodes(trace: dict) -> list[dict]:
    """A multi-episode trace -> one trace per episode (split where is_first is set)."""
    starts = np.flatnonzero(trace["is_first"])
    if len(starts) == 0 or starts[0] != 0:
        starts = np.concatenate([[0], starts])
    bounds = list(starts) + [len(trace["is_first"])]
    return [{k: v[a:b] for k, v in trace.items()} for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def goal_columns(episode: dict, period: int, columns: int = 8) -> dict:
    """Evenly spaced manager decisions of one episode: observation at the decision, decoded goal, observation when
    the goal expires (K steps later), and the state at the decision decoded like a goal. Keys: steps, observation,
    state, goal, reached."""
    decisions = np.flatnonzero(episode["decision"])
    decisions = decisions[decisions + period < len(episode["image"])]
    if len(decisions) == 0:
        raise ValueError(f"the episode ({len(episode['image'])} steps) has no complete goal period (K={period})")
    pick = decisions[np.unique(np.linspace(0, len(decisions) - 1, columns).round().astype(int))]
    return {"steps": pick.tolist(), "observation": episode["image"][pick], "state": episode["state_image"][pick],
            "goal": episode["goal_image"][pick], "reached": episode["image"][pick + period]}


# ----- the goal-space explorer: any code -> its goal image, and the worker pursuing it in imagination -----
def code_goal(agent, params, code, context=None):
    """Class indices [..., goal_codes] -> the goal (a deter vector [..., deter]) the goal autoencoder decodes; a run
    with context-conditioned goals (`goal_context`) decodes it from `context`, the deter it is set from."""
    onehot = jax.nn.one_hot(code, agent.cfg.goal_classes)
    return agent.goal_ae.apply(params["goal_ae"], onehot, context, method=GoalAutoencoder.decode)


def _goal_image(agent, params, code, task, context):
    return _decode_deter(agent, params["wm"], code_goal(agent, params, code[None], context), task)[0]


def _dream(agent, steps, params, latent, code, task, key):
    """The worker (mean action, as in evaluation) pursuing the goal of `code` from `latent` for `steps` imagined
    steps, the goal held throughout. Frames decode each imagined state with its own sampled stoch; the goal reward is
    the worker's, max-cosine between the goal and the state reached."""
    start = jax.tree.map(lambda x: x[None], latent)
    goal = code_goal(agent, params, code[None], agent.context(start["deter"]))  # [1, deter]
    task = None if task is None else task[None]

    def act(carry, state, t, k):
        mean, _ = agent.worker.apply(params["worker"], agent.worker_input(state, goal, task))
        return mean, carry, {}

    states, _, _ = imagine(agent.wm, params["wm"], start, task, steps, act, {}, key)
    reached = jax.tree.map(lambda x: x[1:, 0], states)  # [steps, ...]: the states the worker's actions lead to
    feat = features(reached, None if task is None else jnp.broadcast_to(task, (steps, task.shape[-1])))
    frames = _to_uint8(agent.wm.apply(params["wm"], feat, method=WorldModel.decode)["image"])
    return {"frames": frames, "goal_reward": max_cosine(goal, reached["deter"])}


class GoalDreamer:
    """One Director agent's goal space, for the goal-space explorer: `goal_image(code)` decodes a code into its goal
    image and `dream(latent, code)` imagines the worker pursuing it for `steps` steps. Both are jitted once: code,
    start latent, task and key are array arguments of fixed shapes, so a new code never recompiles."""

    def __init__(self, agent, state, steps: int = 16):
        if not hasattr(agent, "goal_ae"):
            raise ValueError(f"agent={agent.cfg.agent!r} is not valid for GoalDreamer; allowed values: director")
        self.agent, self.params, self.steps = agent, state["params"], check_positive("steps", steps)
        self.codes, self.classes = agent.cfg.goal_codes, agent.cfg.goal_classes
        self._goal_image = jax.jit(partial(_goal_image, agent))
        self._dream = jax.jit(partial(_dream, agent, steps))

    @classmethod
    def load(cls, logdir: str | Path, steps: int = 16) -> "GoalDreamer":
        agent, state, _ = load_agent(logdir)
        return cls(agent, state, steps)

    def compiled(self) -> int:
        """How many programs the jitted functions hold (one each once used; more would mean recompiles)."""
        return self._goal_image._cache_size() + self._dream._cache_size()

    def check_code(self, code) -> jnp.ndarray:
        code = np.asarray(code)
        if code.shape != (self.codes,) or not np.issubdtype(code.dtype, np.integer) or \
                code.min() < 0 or code.max() >= self.classes:
            raise ValueError(f"code={code.tolist()!r} is not valid; it must be {self.codes} class indices (one per "
                             f"goal slot), each in 0..{self.classes - 1}")
        return jnp.asarray(code, jnp.int32)

    def _task(self, task):
        if not self.agent.task_dim:
            return None
        if task is None:
            raise ValueError(f"task=None is not valid for this run; it needs a task vector of {self.agent.task_dim} "
                             f"values (the trace's `task` at the step)")
        return jnp.asarray(task, jnp.float32).reshape(self.agent.task_dim)

    def random_code(self, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(0, self.classes, self.codes)

    def goal_image(self, code, task=None, context=None) -> np.ndarray:
        """The goal of `code` decoded like the manager's goals: uint8 [size, size, 3]. A run with context-conditioned
        goals (`goal_context`) needs `context`, the deter the goal is set from (the trace's `deter` at the step)."""
        if self.agent.cfg.goal_context:
            if context is None:
                raise ValueError("context=None is not valid for this run (goal_context=True): give the deter the goal "
                                 "is set from, e.g. the trace's deter at the step")
            context = jnp.asarray(context, jnp.float32).reshape(1, self.agent.cfg.deter)
        else:
            context = None
        return np.asarray(self._goal_image(self.params, self.check_code(code), self._task(task), context))

    def dream(self, latent: dict, code, task=None, seed: int = 0) -> dict:
        """From `latent` ({deter, stoch} of one step, e.g. `trace_latent`): frames uint8 [steps, size, size, 3] and
        goal_reward [steps] of the worker pursuing the goal of `code` in the world model."""
        latent = {k: jnp.asarray(latent[k], jnp.float32) for k in ("deter", "stoch")}
        key = jax.random.PRNGKey(check_non_negative("seed", seed))
        out = self._dream(self.params, latent, self.check_code(code), self._task(task), key)
        return {k: np.asarray(v) for k, v in out.items()}


def trace_latent(trace: dict, t: int) -> dict:
    """The posterior latent {deter, stoch} recorded at step `t` of a Director trace (or episode)."""
    if "stoch" not in trace or "deter" not in trace:
        raise ValueError("trace_latent needs a Director trace with deter and stoch (rollout_trace of a director run)")
    return {"deter": trace["deter"][t], "stoch": trace["stoch"][t]}

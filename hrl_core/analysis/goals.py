"""Rollout traces and the manager's goals decoded into images.

A goal lives in the world model's deter space. To see it, take the stochastic part as the mode of the prior given
that deter, and decode (deter, stoch[, task]) with the world model's image decoder.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from hrl_core.agents.common import policy_obs
from hrl_core.world_model import WorldModel, features


def decode_goals(agent, state, goals, task=None) -> np.ndarray:
    """Goals [N, deter] -> uint8 images [N, 64, 64, 3]."""
    wm_params = state["params"]["wm"]
    goals = jnp.asarray(goals, jnp.float32)
    logits = agent.wm.apply(wm_params, goals, method=WorldModel.prior_logits)
    stoch = jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1])
    if task is not None:
        task = jnp.broadcast_to(jnp.asarray(task, jnp.float32), (goals.shape[0], agent.task_dim))
    feat = features({"deter": goals, "stoch": stoch}, task)
    image = agent.wm.apply(wm_params, feat, method=WorldModel.decode)["image"]
    return np.asarray(jnp.clip(image * 255.0, 0, 255).astype(jnp.uint8))


def rollout_trace(agent, state, env, steps: int, seed: int = 0, mode: str = "eval", progress: bool = True) -> dict:
    """Runs `steps` env steps (across episodes) and records, per step, the observation and the policy's internals.

    Keys: image, reward, is_first, action, and for Director code, goal, decision, goal_reward, goal_distance, deter,
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
               "action": np.asarray(action[0])}
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
    from hrl_core.envs import make_env
    from hrl_core.train import load_agent

    agent, state, info = load_agent(logdir)
    env = make_env(task or info["task"], seed=seed, **{**info["env_options"], **(env_options or {})})
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

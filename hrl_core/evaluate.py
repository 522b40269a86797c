"""Evaluation episodes with the policy's mean action: returns per task and target speed."""

from __future__ import annotations

from pathlib import Path

import jax
import numpy as np

from hrl_core.agents.common import policy_obs


def run_episodes(agent, state, env, episodes: int, seed: int = 0, explore: bool = False, record=None) -> list[float]:
    """Runs whole episodes of one env; `record(obs, action, aux)` is called each step when given."""
    policy = jax.jit(agent.policy, static_argnames="explore")
    key = jax.random.PRNGKey(seed)
    returns = []
    for _ in range(episodes):
        obs = env.reset()
        carry = agent.initial_carry(1)
        total = 0.0
        while True:
            key, k = jax.random.split(key)
            action, carry, aux = policy(state, carry, policy_obs(obs, add_batch=True), k, explore=explore)
            action = np.asarray(action[0])
            if record is not None:
                record(obs, action, jax.device_get(aux))
            obs = env.step(action)
            total += float(obs["reward"])
            if obs["is_last"]:
                break
        returns.append(total)
    return returns


def evaluate(agent, state, task: str, split: str | None, episodes: int, env_options: dict | None = None,
             seed: int = 0, speeds=None) -> list[dict]:
    """Mean return per target speed of `split` (speed tasks) or for the task itself."""
    from hrl_core.envs import make_env
    from hrl_core.envs.locomotion import SPEEDS

    options = {k: v for k, v in (env_options or {}).items() if k not in ("split", "speed")}
    rows = []
    if "_speed" in task:
        domain = task.split("_")[0]
        for speed in speeds or SPEEDS[domain][split or "train"]:
            env = make_env(task, seed=seed, speed=float(speed), **options)
            returns = run_episodes(agent, state, env, episodes, seed)
            rows.append({"task": task, "split": split, "speed": float(speed), "returns": returns,
                         "mean_return": float(np.mean(returns))})
    else:
        env = make_env(task, seed=seed, **options)
        returns = run_episodes(agent, state, env, episodes, seed)
        rows.append({"task": task, "split": split, "speed": None, "returns": returns,
                     "mean_return": float(np.mean(returns))})
    return rows


def evaluate_run(logdir: str | Path, split: str = "train", episodes: int = 2, task: str | None = None,
                 out: str | Path | None = None, env_options: dict | None = None) -> dict:
    """Loads a run's latest checkpoint and evaluates it; writes eval_<split>.json in the run (or `out`)."""
    import json

    from hrl_core.train import load_agent
    from hrl_core.validation import check_choice

    check_choice("split", split, ("train", "ood"))
    agent, state, info = load_agent(logdir)
    task = task or info["task"]
    options = {**info["env_options"], **(env_options or {})}
    rows = evaluate(agent, state, task, split, episodes, options, seed=info["seed"] + 20_000)
    result = {"logdir": str(logdir), "agent": info["agent"], "task": task, "split": split,
              "step": info["meta"]["counters"]["step"], "results": rows}
    out = Path(out) if out else Path(logdir) / f"eval_{split}.json"
    out.write_text(json.dumps(result, indent=1))
    return result

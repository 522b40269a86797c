"""Measurements behind `hrl bench`: environment throughput (and, with the agents, training speed)."""

from __future__ import annotations

import time

import numpy as np


def env_steps_per_second(task: str, num_envs: int = 1, parallel: bool = False, seconds: float = 5.0,
                         **options) -> float:
    """Agent steps per second (summed over environments) under a uniform random policy, after one warm-up step."""
    from hrl_core.envs import BatchedEnv

    with BatchedEnv(task, num_envs, seed=0, parallel=parallel, **options) as env:
        rng = np.random.default_rng(0)
        space = env.act_space
        env.reset()
        env.step(rng.uniform(space.low, space.high, (num_envs, *space.shape)))
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            env.step(rng.uniform(space.low, space.high, (num_envs, *space.shape)))
            steps += num_envs
        return steps / (time.perf_counter() - start)


def render_difference(task: str = "walker_walk", steps: int = 20, seed: int = 0) -> float:
    """Mean absolute pixel difference (0-255) between the fast and dm_control's default render, same states."""
    from hrl_core.envs import make_env

    fast, default = make_env(task, seed=seed, render="fast"), make_env(task, seed=seed, render="default")
    rng = np.random.default_rng(seed)
    diffs = [np.abs(fast.reset()["image"].astype(float) - default.reset()["image"].astype(float)).mean()]
    for _ in range(steps):
        action = rng.uniform(fast.act_space.low, fast.act_space.high, fast.act_space.shape)
        diffs.append(np.abs(fast.step(action)["image"].astype(float) - default.step(action)["image"].astype(float)).mean())
    return float(np.mean(diffs))


def bench_envs(tasks, seconds: float = 5.0, num_envs: int = 2) -> list[dict]:
    rows = []
    for task in tasks:
        single = env_steps_per_second(task, 1, False, seconds)
        batched = env_steps_per_second(task, num_envs, True, seconds)
        rows.append({"task": task, "single_steps_per_s": round(single, 1),
                     f"batched{num_envs}_steps_per_s": round(batched, 1), "speedup": round(batched / single, 2)})
    return rows

"""Task registry: `make_env(name, **options)` and `list_envs()`; `BatchedEnv` steps many in worker processes."""

from __future__ import annotations

import inspect

from hrl_core.envs.base import Env, Space
from hrl_core.envs.batched import BatchedEnv
from hrl_core.envs.rendering import RendererUnavailable, check_renderer
from hrl_core.validation import check_choice, check_keys

__all__ = ["Env", "Space", "BatchedEnv", "RendererUnavailable", "check_renderer", "make_env", "list_envs",
           "TASKS", "SPEED_TASKS", "env_options"]


def _suite(name):
    def make(seed=0, action_repeat=2, size=64, render="fast", time_limit=None):
        from hrl_core.envs.locomotion import SUITE_TASKS, DMCPixelEnv

        domain, task, text = SUITE_TASKS[name]
        return DMCPixelEnv(domain, task, seed, action_repeat, size, render, time_limit, description=text)
    return make


def _speed(domain):
    def make(seed=0, action_repeat=2, size=64, render="fast", time_limit=None, split="train",
             conditioning="vector", speed=None):
        from hrl_core.envs.locomotion import SPEED_DOMAINS, SPEEDS, DMCPixelEnv

        text = (f"{domain.capitalize()} runs at a target speed drawn per episode (train {SPEEDS[domain]['train']}, "
                f"ood {SPEEDS[domain]['ood']} m/s); reward peaks at the target.")
        return DMCPixelEnv(domain, SPEED_DOMAINS[domain], seed, action_repeat, size, render, time_limit,
                           speed_conditioned=True, split=split, conditioning=conditioning, speed=speed,
                           description=text)
    return make


def _maze(layout):
    def make(seed=0, action_repeat=2, size=64, render="fast", time_limit=60.0, body="ant", maze_size="large"):
        from hrl_core.envs.maze import MazeEnv

        return MazeEnv(layout, seed, action_repeat, size, render, time_limit, body, maze_size)

    def make_novel(seed=0, action_repeat=2, size=64, render="fast", time_limit=60.0, body="ant", maze_size="large",
                   novelty="both"):
        from hrl_core.envs.maze import MazeEnv

        return MazeEnv(layout, seed, action_repeat, size, render, time_limit, body, maze_size, novelty)
    return make_novel if layout == "novel" else make


def _speed_switch(domain):
    def make(seed=0, action_repeat=2, size=64, render="fast", time_limit=None, conditioning="vector",
             schedule=None):
        from hrl_core.envs.locomotion import DEFAULT_SCHEDULE, SPEED_DOMAINS, DMCPixelEnv, parse_schedule

        schedule = DEFAULT_SCHEDULE if schedule is None else parse_schedule(schedule)
        text = (f"{domain.capitalize()} follows a target speed that switches within the episode: "
                f"{' -> '.join(f'{v:g}' for v in schedule)} m/s, equal segments (a sequence never seen in training).")
        return DMCPixelEnv(domain, SPEED_DOMAINS[domain], seed, action_repeat, size, render, time_limit,
                           conditioning=conditioning, schedule=schedule, description=text)
    return make


TASKS = {
    **{name: _suite(name) for name in ("walker_stand", "walker_walk", "walker_run", "cheetah_run",
                                       "quadruped_walk", "quadruped_run")},
    "walker_speed": _speed("walker"),
    "quadruped_speed": _speed("quadruped"),
    "cheetah_speed": _speed("cheetah"),
    "walker_speed_switch": _speed_switch("walker"),
    "maze_train": _maze("train"),
    "maze_novel": _maze("novel"),
}


# Tasks whose target speed is drawn per episode from a split (evaluated speed by speed).
SPEED_TASKS = ("walker_speed", "quadruped_speed", "cheetah_speed")


def env_options(name: str) -> list[str]:
    check_choice("task", name, TASKS)
    return list(inspect.signature(TASKS[name]).parameters)


def make_env(name: str, **options) -> Env:
    """Builds task `name`; options are the keyword arguments of that task's constructor (see `env_options`)."""
    check_keys(f"task {name!r}", options, env_options(name))
    return TASKS[name](**options)


def list_envs() -> list[dict]:
    """Every task with its description and spaces (builds each once)."""
    rows = []
    for name in TASKS:
        env = make_env(name)
        rows.append({"name": name, "description": env.description,
                     "action": {"shape": env.act_space.shape, "low": env.act_space.low, "high": env.act_space.high},
                     "observation": {k: {"shape": v.shape, "dtype": v.dtype.__name__} for k, v in env.obs_space.items()},
                     "options": env_options(name)})
        env.close()
    return rows

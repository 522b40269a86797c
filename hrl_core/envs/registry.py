"""The task registry: every task's constructor and kind. `make_env(name, **options)` builds one; `speeds(task,
split)`, `is_speed_task`, `is_composed_task` and `composed_task` answer what a task is, so no caller parses names."""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

from hrl_core.validation import check_choice, check_keys


def _suite(name):
    def make(seed=0, action_repeat=2, size=64, render="fast", time_limit=None):
        from hrl_core.envs.locomotion import SUITE_TASKS, DMCPixelEnv

        domain, task, text = SUITE_TASKS[name]
        return DMCPixelEnv(domain, task, seed, action_repeat, size, render, time_limit, description=text)
    return make


def _speed(domain):
    def make(seed=0, action_repeat=2, size=64, render="fast", time_limit=None, split="train",
             conditioning="vector", speed=None, speed_set="real", speed_margin=None):
        from hrl_core.envs.locomotion import SPEED_DOMAINS, SPEED_SETS, DMCPixelEnv, SpeedCommand

        sets = "; ".join(f"{name}: train {s['train']}, ood {s['ood']}" for name, s in SPEED_SETS[domain].items())
        text = (f"{domain.capitalize()} runs at a target speed drawn per episode (m/s, speed_set {sets}); reward "
                "peaks at the target.")
        return DMCPixelEnv(domain, SPEED_DOMAINS[domain], seed, action_repeat, size, render, time_limit,
                           SpeedCommand(speed_set, split, conditioning, speed, margin=speed_margin), text)
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
             schedule=None, speed_set="real", speed_margin=None):
        from hrl_core.envs.locomotion import SPEED_DOMAINS, DMCPixelEnv, SpeedCommand, composed_schedule, \
            speed_set as check_set

        check_set(domain, speed_set)
        schedule = composed_schedule(domain, speed_set, schedule)
        text = (f"{domain.capitalize()} follows a target speed that switches within the episode: "
                f"{' -> '.join(f'{v:g}' for v in schedule)} m/s, equal segments (a sequence never seen in training).")
        return DMCPixelEnv(domain, SPEED_DOMAINS[domain], seed, action_repeat, size, render, time_limit,
                           SpeedCommand(speed_set, conditioning=conditioning, schedule=schedule,
                                        margin=speed_margin), text)
    return make


@dataclass(frozen=True)
class Task:
    """A registered task: its constructor (whose keyword arguments are the task's options), the domain whose target
    speeds it draws per episode (speed tasks, evaluated speed by speed), and the speed task whose skills it composes
    (composed tasks: the target switches within an episode)."""
    make: Callable
    speed_domain: str | None = None
    composes: str | None = None


TASKS = {
    **{name: Task(_suite(name)) for name in ("walker_stand", "walker_walk", "walker_run", "cheetah_run",
                                             "quadruped_walk", "quadruped_run")},
    **{f"{domain}_speed": Task(_speed(domain), speed_domain=domain) for domain in ("walker", "quadruped", "cheetah")},
    "walker_speed_switch": Task(_speed_switch("walker"), composes="walker_speed"),
    "cheetah_speed_switch": Task(_speed_switch("cheetah"), composes="cheetah_speed"),
    "maze_train": Task(_maze("train")),
    "maze_novel": Task(_maze("novel")),
}


def _task(name: str) -> Task:
    check_choice("task", name, TASKS)
    return TASKS[name]


def is_speed_task(name: str) -> bool:
    """Whether task `name` draws a target speed per episode from a split (evaluated speed by speed)."""
    return _task(name).speed_domain is not None


def is_composed_task(name: str) -> bool:
    """Whether task `name` switches its target speed within an episode (a composition of a speed task's skills)."""
    return _task(name).composes is not None


def speed_tasks() -> list[str]:
    return [name for name in TASKS if is_speed_task(name)]


def speeds(name: str, split: str = "train", speed_set: str = "real") -> tuple:
    """The target speeds (m/s) that speed task `name` draws from in `split` ("train" or "ood", held out) of its
    named `speed_set` (a task option)."""
    from hrl_core.envs.locomotion import SPLITS, speed_set as named_set

    check_choice("split", split, SPLITS)
    if not is_speed_task(name):
        raise ValueError(f"task={name!r} is not valid; it has no target speeds. Allowed values: "
                         f"{', '.join(speed_tasks())}")
    return named_set(TASKS[name].speed_domain, speed_set)[split]


def composed_task(name: str) -> str:
    """The composed task whose target switches between the training speeds of speed task `name`."""
    for other, task in TASKS.items():
        if task.composes == name:
            return other
    composable = [task.composes for task in TASKS.values() if task.composes]
    raise ValueError(f"task={name!r} has no switching counterpart; allowed values: {', '.join(composable)}")


def env_options(name: str) -> list[str]:
    return list(inspect.signature(_task(name).make).parameters)


def make_env(name: str, **options):
    """Builds task `name` (an hrl_core.envs.base.Env); options are the keyword arguments of that task's constructor
    (see `env_options`)."""
    check_keys(f"task {name!r}", options, env_options(name))
    return TASKS[name].make(**options)


def spaces(name: str, options: dict):
    """(observation space, action space) of task `name` with these options: the task is built (cheap, no
    rendering), which also checks the task and its options, and closed."""
    env = make_env(name, **options)
    env.close()
    return env.obs_space, env.act_space


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

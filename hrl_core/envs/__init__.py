"""Environments from pixels: the task registry (`make_env`, `speeds`, ...) and `BatchedEnv`, which steps many in
worker processes. Importing this package loads neither JAX nor the physics; a task's module loads when it is built."""

from __future__ import annotations

from hrl_core.envs.base import Env, Space
from hrl_core.envs.batched import BatchedEnv
from hrl_core.envs.registry import (TASKS, composed_task, env_options, is_composed_task, is_speed_task, list_envs,
                                   make_env, spaces, speed_tasks, speeds)
from hrl_core.envs.rendering import RendererUnavailable, check_renderer

__all__ = ["Env", "Space", "BatchedEnv", "RendererUnavailable", "check_renderer", "make_env", "list_envs",
           "TASKS", "env_options", "speeds", "speed_tasks", "is_speed_task", "is_composed_task", "composed_task",
           "spaces"]

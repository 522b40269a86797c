"""The CPU study's settings, in one place: what a 2-core machine can decide in about an hour a run on one core.

Chosen from the pilots (benchmarks/RESULTS.md, "CPU scale"): the commanded-speed cheetah, whose speed DreamerV3
controls within 25k frames (the walker needs 6-25x that budget), at 32x32 pixels, where an update costs about half
of a 64x64 one; the ball in the small maze at the same image size. The `cpu` preset takes IMAGE_SIZE from here, and
`scripts/reference_run.sh` commands and reference/series.json follow TASKS (`reference_command`).
"""

from __future__ import annotations

IMAGE_SIZE = 32
ACTION_REPEAT = 4  # 16 control steps per manager goal at K = 4 (0.16 s on the cheetah, 0.8 s in the maze)
SEEDS = (0, 1, 2, 3, 4)

# Per task: its options (episode length included), its budget in policy steps and its config changes.
TASKS = {
    "cheetah_speed": {"options": {"speed_set": "cpu", "action_repeat": ACTION_REPEAT}, "steps": 16_000,
                      "config": {}},
    "maze_train": {"options": {"body": "ball", "maze_size": "small", "time_limit": 20.0,
                               "action_repeat": ACTION_REPEAT},
                   "steps": 12_000, "config": {"train_ratio": 64}},
}


def reference_command(task: str, agent: str, seed: int) -> str:
    """The `scripts/reference_run.sh` command that trains and exports one run of the CPU study."""
    from hrl_core.validation import check_choice

    check_choice("task", task, TASKS)
    spec = TASKS[task]
    args = [f"--option {k}={v}" for k, v in spec["options"].items()] + [f"--config {k}={v}"
                                                                         for k, v in spec["config"].items()]
    return f"scripts/reference_run.sh {task} {agent} {seed} {spec['steps']} {' '.join(args)} --eval-every 2000"

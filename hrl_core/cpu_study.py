"""The CPU study's settings, in one place: what a 2-core machine can decide in about an hour a run on one core.

Chosen from the pilots (benchmarks/RESULTS.md, "CPU scale"): the commanded-speed cheetah, whose speed DreamerV3
controls within 25k frames (the walker needs 6-25x that budget), at 32x32 pixels, where an update costs about half
of a 64x64 one, with the speed reward's margin at half the target (at the suite's margin of the target, standing
still earns half the reward at every target and DreamerV3 learns one speed for all of them); the ball in the small
maze at 64x64, since at 32x32 it does not beat the random policy. The `cpu` preset takes IMAGE_SIZE from here, and
`scripts/reference_run.sh` commands follow TASKS (`reference_command`).
"""

from __future__ import annotations

from hrl_core.validation import check_choice

IMAGE_SIZE = 32
ACTION_REPEAT = 4  # 16 control steps per manager goal at K = 4 (0.16 s on the cheetah, 0.8 s in the maze)
SEEDS = (0, 1, 2, 3, 4)

# Per task: its options (episode length included), its budget in policy steps, its config changes and its evaluation
# episodes (per target speed on the cheetah; the maze's 0/1 returns need more to tell success rates apart).
TASKS = {
    "cheetah_speed": {"options": {"speed_set": "cpu", "speed_margin": 0.5, "action_repeat": ACTION_REPEAT},
                      "steps": 15_000, "config": {}, "evaluation_episodes": 10},
    "maze_train": {"options": {"body": "ball", "maze_size": "small", "time_limit": 20.0,
                               "action_repeat": ACTION_REPEAT},
                   "steps": 12_000, "config": {"train_ratio": 64, "image_size": 64}, "evaluation_episodes": 40},
}


def reference_command(task: str, agent: str, seed: int) -> str:
    """The `scripts/reference_run.sh` command that trains and exports one run of the CPU study."""
    check_choice("task", task, TASKS)
    spec = TASKS[task]
    args = [f"--option {k}={v}" for k, v in spec["options"].items()] + [f"--config {k}={v}"
                                                                         for k, v in spec["config"].items()]
    return (f"EVAL_EPISODES={spec['evaluation_episodes']} scripts/reference_run.sh {task} {agent} {seed} "
            f"{spec['steps']} {' '.join(args)} --eval-every 2000")

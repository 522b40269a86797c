"""The composed task (walker_speed_switch) and the composability measures (hrl_core/analysis/composition.py)."""

import importlib

import numpy as np
import pytest

from hrl_core.analysis import composition
from hrl_core.envs import make_env
from hrl_core.envs.locomotion import DEFAULT_TIME_LIMIT, SPEEDS


def test_switch_task_follows_its_schedule_in_equal_segments():
    """A 3 s episode (60 agent steps at action repeat 2) with schedule 2 -> 5 -> 1 switches after 20 and 40 steps;
    the task input shows the current target (normalised by the largest training speed) and each step's reward is
    the speed reward for the target at that step."""
    env = make_env("walker_speed_switch", seed=3, time_limit=3.0, schedule=[2, 5, 1])
    obs = env.reset()
    targets, tasks = [env.target_speed], [float(obs["task"][0])]
    while not obs["is_last"]:
        obs = env.step(np.zeros(env.act_space.shape))
        targets.append(env.target_speed)
        tasks.append(float(obs["task"][0]))
    assert len(targets) == 61
    assert targets[:20] == [2.0] * 20 and targets[20:40] == [5.0] * 20 and targets[40:] == [1.0] * 21
    np.testing.assert_allclose(tasks, np.array(targets) / max(SPEEDS["walker"]["train"]), rtol=1e-6)
    assert list(composition.switch_steps(targets)) == [20, 40]
    env.close()


def test_switch_task_reaches_every_target_at_the_suites_own_episode_length():
    """Without a time limit the episode is the suite's own (cheetah 10 s: 250 agent steps at action repeat 4), and
    the schedule's segments divide that length, so the cheetah's default 1 -> 2.5 -> 0.5 shows each target for a
    third of the episode."""
    env = make_env("cheetah_speed_switch", seed=0, action_repeat=4, size=32, speed_set="cpu")
    obs, targets = env.reset(), [env.target_speed]
    while not obs["is_last"]:
        obs = env.step(np.zeros(env.act_space.shape))
        targets.append(env.target_speed)
    env.close()
    assert len(targets) == 251 and env.time_limit == 10.0
    assert [targets.count(v) for v in (1.0, 2.5, 0.5)] == [84, 83, 84]  # switches after 6.67 s and 13.33 s
    # the table the segments divide by is the suite's own, for every speed domain
    suite = {domain: float(importlib.import_module(f"dm_control.suite.{domain}")._DEFAULT_TIME_LIMIT)
             for domain in DEFAULT_TIME_LIMIT}
    assert DEFAULT_TIME_LIMIT == suite


def test_switch_task_options_are_checked():
    with pytest.raises(ValueError, match="schedule="):
        make_env("walker_speed_switch", schedule=[2, -1])
    with pytest.raises(ValueError, match="schedule="):
        make_env("walker_speed_switch", schedule="fast")
    env = make_env("walker_speed_switch", schedule="1,3")  # the command line's form
    assert env.schedule == (1.0, 3.0) and "1 -> 3 m/s" in env.description
    env.close()


def test_switch_task_trains_through_the_registry():
    """Available to `hrl train`: the batched environment builds it with its options (one worker, in process)."""
    from hrl_core.envs import BatchedEnv

    with BatchedEnv("walker_speed_switch", 1, seed=0, parallel=False, schedule=[1, 2], time_limit=1.0) as envs:
        obs = envs.reset()
        assert obs["image"].shape == (1, 64, 64, 3) and obs["task"].shape == (1, 1)


def test_settle_steps_and_tracking_on_a_known_trace():
    """Velocity ramps 2, 2.33, 2.67, ..., 5 over 10 steps after the switch at step 20: within the tolerance
    (|v - 5| <= 2.5) from 2.67, the switch's third step, so with hold 5 it settles after 2 steps; a velocity that
    never reaches the target is censored at the segment's length."""
    target = np.array([2.0] * 20 + [5.0] * 30)
    velocity = np.concatenate([np.full(20, 2.0), np.linspace(2.0, 5.0, 10), np.full(20, 5.0)])
    rows = composition.tracking({"target": target, "velocity": velocity}, tolerance=0.5, hold=5)
    assert len(rows) == 1 and rows[0]["step"] == 20 and rows[0]["previous"] == 2.0
    assert rows[0]["settle_steps"] == 2 and rows[0]["settled"]
    assert rows[0]["error"] == pytest.approx(np.mean(np.abs(velocity[20:] - 5.0)))
    assert composition.settle_steps(np.zeros(30), 5.0, hold=5) == 30


def test_code_change_rate_after_switches_against_elsewhere():
    """Decisions every 4 steps; the code changes only at the decision right after the switch (step 40): rate 1
    within the 8-step window after it (decisions at 40 and 44: one change of two), 0 elsewhere."""
    steps = 80
    target = np.array([2.0] * 40 + [5.0] * 40)
    decision = np.arange(steps) % 4 == 0
    code = np.where(np.arange(steps)[:, None] >= 40, 3, 1) * np.ones((steps, 8), int)
    rates = composition.code_change_rate({"target": target, "decision": decision, "code": code}, window=8)
    assert rates["after_switch"] == pytest.approx(0.5) and rates["decisions_after"] == 2
    assert rates["elsewhere"] == 0.0 and rates["decisions_elsewhere"] == 17
    with pytest.raises(ValueError, match="Director only"):
        composition.code_change_rate({"target": target}, window=8)


def test_fixed_speed_error_over_the_steps_after_each_switch():
    """Schedule 2 -> 5 over 50 steps, switch at step 20. The fixed-speed episodes at 5 m/s run at 4 and 6 m/s: over
    steps 20-49 their error is 1 each, whatever they do before step 20; the switched episode's own error there is
    its `tracking` error, so the ratio isolates what the switch costs."""
    switched = {"target": np.array([2.0] * 20 + [5.0] * 30), "velocity": np.full(50, 3.0)}
    fixed = {5.0: [{"velocity": np.concatenate([np.zeros(20), np.full(30, v)])} for v in (4.0, 6.0)]}
    assert composition.fixed_speed_error([switched], fixed) == pytest.approx(1.0)
    assert composition.tracking(switched)[0]["error"] == pytest.approx(2.0)
    with pytest.raises(ValueError, match="no fixed-speed episodes at 5.0 m/s"):
        composition.fixed_speed_error([switched], {2.0: fixed[5.0]})

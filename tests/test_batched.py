"""BatchedEnv's worker pool, explicit seeds and async stepping.

Each environment's first reset builds a software GL context (~2 s of CPU) and each worker imports the physics stack,
so the file builds as few environments as it can: one pool of 2 workers, and one in-process batch shared as a
module-scoped reference rollout.
"""

import multiprocessing.resource_tracker

import numpy as np
import psutil
import pytest

from hrl_core.envs import BatchedEnv
from hrl_core.envs.batched import blocks

TASK, OPTIONS = "walker_walk", {"time_limit": 1.0, "size": 16}  # 20 agent steps an episode: no auto-reset below
SEEDS = [7, 3, 11]  # not consecutive, so a seed taken from the position instead of env_seeds would show
STEPS = 4
ACTIONS = np.random.default_rng(0).uniform(-1, 1, (STEPS + 1, len(SEEDS), 6))


def run(env, async_on):
    """reset, STEPS steps, reset, one step; step t goes through step_async/step_wait where async_on(t), else step."""
    obs = [env.reset()]
    for t, actions in enumerate(ACTIONS[:STEPS]):
        if async_on(t):
            env.step_async(actions)
            obs.append(env.step_wait())
        else:
            obs.append(env.step(actions))
    obs.append(env.reset())
    obs.append(env.step(ACTIONS[STEPS]))
    return obs


def assert_same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert set(x) == set(y)
        for key in x:
            np.testing.assert_array_equal(x[key], y[key], err_msg=key)


@pytest.fixture(scope="module")
def reference():
    """The in-process rollout for SEEDS; odd steps go through step_async/step_wait."""
    with BatchedEnv(TASK, len(SEEDS), parallel=False, env_seeds=SEEDS, **OPTIONS) as env:
        assert env.seeds == SEEDS and env.workers == 0
        return run(env, lambda t: t % 2 == 1)


def test_pool_of_fewer_workers_matches_in_process_and_surfaces_worker_errors(reference):
    multiprocessing.resource_tracker.ensure_running()  # started by the first BatchedEnv: not one of its workers
    before = {p.pid for p in psutil.Process().children()}
    with BatchedEnv(TASK, len(SEEDS), parallel=True, workers=2, env_seeds=SEEDS, **OPTIONS) as env:
        # Bounded: 3 environments on 2 processes, the first hosting environments 0 and 1.
        assert env.workers == len(env._procs) == 2
        procs = list(env._procs)
        assert {p.pid for p in psutil.Process().children()} - before == {p.pid for p in env._procs}
        # Even steps go through step_async/step_wait here, through step() in the reference: each path checks the other.
        assert_same(run(env, lambda t: t % 2 == 0), reference)

        with pytest.raises(RuntimeError, match="without a pending step_async"):
            env.step_wait()
        env.step_async(ACTIONS[0])
        for misuse in (lambda: env.step_async(ACTIONS[0]), env.reset):
            with pytest.raises(RuntimeError, match="pending"):
                misuse()
        assert env.step_wait()["image"].shape == (3, 16, 16, 3)  # the refused calls left the pending step intact

        # A worker's exception (here a wrong action width) comes back from step_wait as itself, and closes the pool.
        env.step_async(np.zeros((3, 2)))
        with pytest.raises(ValueError, match="broadcast") as err:
            env.step_wait()
        assert any("environment worker" in note for note in err.value.__notes__)
        assert not env._procs and not any(p.is_alive() for p in procs)


def test_env_seeds_match_single_environments_with_those_seeds(reference):
    for i in (0, 2):
        with BatchedEnv(TASK, 1, seed=SEEDS[i], parallel=False, **OPTIONS) as env:
            assert env.seeds == [SEEDS[i]]
            obs = [env.reset()] + [env.step(a[i:i + 1]) for a in ACTIONS[:STEPS]]
        assert_same(obs, [{k: v[i:i + 1] for k, v in o.items()} for o in reference[:STEPS + 1]])


def test_in_process_misuse_and_default_seeds():
    env = BatchedEnv(TASK, 2, seed=5, parallel=False, **OPTIONS)  # no reset: no GL context is built
    assert env.seeds == [5, 6]
    with pytest.raises(RuntimeError, match="without a pending step_async"):
        env.step_wait()
    with pytest.raises(ValueError, match="one row per environment"):
        env.step_async(np.zeros((3, 6)))
    env.step_async(np.zeros((2, 6)))
    with pytest.raises(RuntimeError, match="pending"):
        env.step_async(np.zeros((2, 6)))
    with pytest.raises(RuntimeError, match="pending"):
        env.reset()
    env.close()
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.zeros((2, 6)))


@pytest.mark.parametrize("workers", [0, -1, 1.5, True, "2"])
def test_bad_workers_is_named(workers):
    with pytest.raises(ValueError, match="workers="):
        BatchedEnv(TASK, 2, workers=workers)  # refused before any process starts


@pytest.mark.parametrize("num_envs,env_seeds,match", [
    (3, [1, 2], "env_seeds has 2 seeds but num_envs=3"),
    (1, [1, 2], "env_seeds has 2 seeds but num_envs=1"),
    (2, [1, "x"], "env_seeds=.*integers"),
    (2, [1, 2.0], "env_seeds=.*integers"),
    (1, 5, "env_seeds=.*integers"),
])
def test_bad_env_seeds_are_named(num_envs, env_seeds, match):
    with pytest.raises(ValueError, match=match):
        BatchedEnv(TASK, num_envs, env_seeds=env_seeds)


def test_blocks_are_contiguous_balanced_and_in_environment_order():
    assert blocks(3, 2) == [range(0, 2), range(2, 3)]
    assert blocks(7, 3) == [range(0, 3), range(3, 5), range(5, 7)]
    for n in range(1, 9):
        for w in range(1, n + 1):
            sizes = [len(b) for b in blocks(n, w)]
            assert [i for b in blocks(n, w) for i in b] == list(range(n)) and len(sizes) == w
            assert min(sizes) >= 1 and max(sizes) - min(sizes) <= 1

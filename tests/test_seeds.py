"""Seed-vectorized training: a seed trained inside a group is the run it would be alone, per-seed freezing, the
sharded seed axis, resume of a killed group, and the CLI form."""

import json
import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from hrl_core.learned import load_agent
from hrl_core.rundir import RunSpec, read_metrics
from hrl_core.train import Schedule, seed_logdirs, train, train_seeds
from tests.helpers import SMALL

OPTIONS = {"time_limit": 0.5}  # 10-step episodes
SCHEDULE = Schedule(24, log_every=2, checkpoint_every=10_000,
                    prefill=16)  # a log row every policy step (2 environments), about 4 updates
RUN = dict(parallel=False, progress=False)
LOSSES = ("wm/image", "wm/reward", "wm/dyn", "actor/entropy", "critic/loss")


def group_runs(logdirs, seeds, config=SMALL) -> dict:
    """{run folder: RunSpec} of a walker_speed group, one seed per folder."""
    return {logdir: RunSpec.create("walker_speed", seed=seed, config=config, env_options=OPTIONS)
            for logdir, seed in zip(logdirs, seeds)}


def replay_frames(logdir):
    """The replay's images in insertion order, from its saved chunks."""
    chunks = sorted((logdir / "replay").glob("*.npz"))
    return np.concatenate([np.load(path)["image"] for path in chunks], axis=1)


def test_group_seed_matches_the_seed_trained_alone(tmp_path):
    group = train_seeds(group_runs([tmp_path / "g0", tmp_path / "g1"], [0, 1]), SCHEDULE, **RUN)
    alone = train(tmp_path / "a1", RunSpec.create("walker_speed", seed=1, config=SMALL, env_options=OPTIONS),
                  SCHEDULE, **RUN)
    assert group[1]["updates"] == alone["updates"] >= 3
    rows, expected = read_metrics(tmp_path / "g1"), read_metrics(tmp_path / "a1")
    assert [r["step"] for r in rows] == [r["step"] for r in expected]
    trained = [(r, e) for r, e in zip(rows, expected) if r["updates"] > 0]
    assert trained
    for row, want in trained:
        keys = [k for k in LOSSES if k in want]
        np.testing.assert_allclose([row[k] for k in keys], [want[k] for k in keys], rtol=1e-3, atol=1e-4)
    # The same environment frames: seed 1's environments in the group are the ones it has alone. Its actions agree
    # to float tolerance, so the physics may drift by as much and a rendered pixel round one level apart.
    ours, theirs = replay_frames(tmp_path / "g1"), replay_frames(tmp_path / "a1")
    np.testing.assert_array_equal(ours[:, 0], theirs[:, 0])
    difference = np.abs(ours.astype(int) - theirs.astype(int))
    assert difference.max() <= 1 and (difference == 0).mean() > 0.999
    assert not np.array_equal(replay_frames(tmp_path / "g0"), replay_frames(tmp_path / "g1"))
    # Seed 0's run differs from seed 1's: the group did not train one run twice.
    assert read_metrics(tmp_path / "g0")[-1]["wm/image"] != rows[-1]["wm/image"]


def test_frozen_parts_hold_for_every_seed(tmp_path):
    from hrl_core.agents import make_agent
    from hrl_core.config import make_config
    from hrl_core.envs import spaces

    train_seeds(group_runs([tmp_path / "s3", tmp_path / "s4"], [3, 4], config={**SMALL, "train_parts": ("A", "V")}),
                SCHEDULE, **RUN)
    cfg = make_config("tiny", **SMALL)
    agent = make_agent(cfg, *spaces("walker_speed", OPTIONS))
    for seed in (3, 4):
        _, state, _ = load_agent(tmp_path / f"s{seed}")
        initial = agent.init(jax.random.split(jax.random.PRNGKey(seed))[1])
        for a, b in zip(jax.tree.leaves(state["params"]["wm"]), jax.tree.leaves(initial["params"]["wm"])):
            np.testing.assert_array_equal(a, b)
        assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state["params"]["actor"]),
                                                            jax.tree.leaves(initial["params"]["actor"])))


@pytest.mark.slow
def test_seed_axis_sharded_over_two_devices(tmp_path):
    """With two (host) devices the stacked states live on both, and seed 1 trains as in an unsharded group."""
    code = f"""
import json, jax
import hrl_core
from hrl_core.batches import seed_sharding
from hrl_core.rundir import RunSpec
from hrl_core.train import Schedule, train_seeds
from tests.helpers import SMALL
hrl_core.enable_compilation_cache()
assert jax.local_device_count() == 2
sharding = seed_sharding(4)
assert sharding is not None and len(sharding.device_set) == 2
assert seed_sharding(3) is None  # no even split: the seed axis stays on one device
runs = {{folder: RunSpec.create("walker_speed", seed=seed, config=SMALL, env_options={OPTIONS!r})
        for folder, seed in ((r"{tmp_path}/sh0", 0), (r"{tmp_path}/sh1", 1))}}
train_seeds(runs, Schedule(24, log_every=2, checkpoint_every=10_000, prefill=16), parallel=False, progress=False)
"""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=2"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=os.getcwd())
    train_seeds(group_runs([tmp_path / "u0", tmp_path / "u1"], [0, 1]), SCHEDULE, **RUN)
    for seed in (0, 1):
        rows, expected = read_metrics(tmp_path / f"sh{seed}"), read_metrics(tmp_path / f"u{seed}")
        assert [r["updates"] for r in rows] == [r["updates"] for r in expected]
        for row, want in zip(rows, expected):
            keys = [k for k in LOSSES if k in want]
            np.testing.assert_allclose([row[k] for k in keys], [want[k] for k in keys], rtol=1e-3, atol=1e-4)


def test_killed_group_resumes_every_seed(tmp_path):
    pattern = str(tmp_path / "run-s{seed}")
    cmd = [sys.executable, "-m", "hrl_core", "train", "--task", "walker_speed", "--steps", "100000", "--seeds", "0,1",
           "--logdir", pattern, "--log-every", "4", "--checkpoint-every", "100000", "--no-progress",
           "--option", "time_limit=2.0", "--env-workers", "1"]
    cmd += [arg for k, v in SMALL.items() for arg in ("--config", f"{k}={json.dumps(v)}")]
    proc = subprocess.Popen(cmd, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    metrics = tmp_path / "run-s1" / "metrics.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until it is training, then stop it
        if metrics.exists() and any(r.get("updates", 0) > 2 for r in map(json.loads, metrics.read_text().split("\n")[:-1])):
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    logdirs = seed_logdirs(pattern, [0, 1])
    summaries = [json.loads((d / "summary.json").read_text()) for d in logdirs]
    assert all(s["interrupted"] for s in summaries) and summaries[0]["step"] == summaries[1]["step"] > 0
    saved = [load_agent(d)[1] for d in logdirs]
    target = summaries[0]["step"] + 8
    resumed = train_seeds(group_runs(logdirs, [0, 1]), Schedule(target, prefill=10**9), resume=True,
                          parallel=False, progress=False)  # no updates: params stay
    for before, after, summary in zip(saved, resumed, summaries):
        assert after["step"] == target and after["replay_steps"] == summary["replay_steps"] + 8
        assert after["updates"] == summary["updates"]
    for logdir, before in zip(logdirs, saved):
        for a, b in zip(jax.tree.leaves(before), jax.tree.leaves(load_agent(logdir)[1])):
            np.testing.assert_array_equal(a, b)
        steps = [r["step"] for r in read_metrics(logdir)]
        assert steps == sorted(steps) and steps[-1] == target


def test_group_options_are_checked(tmp_path):
    from hrl_core.cli import main

    with pytest.raises(ValueError, match=r"logdir='runs/x' is not valid for several seeds; it must contain \{seed\}"):
        seed_logdirs("runs/x", [0, 1])
    with pytest.raises(ValueError, match=r"seeds=\[0, 0\] is not valid"):
        train_seeds(group_runs([tmp_path / "a", tmp_path / "b"], [0, 0]), SCHEDULE, **RUN)
    with pytest.raises(ValueError, match="env_workers=0 is not valid"):
        train_seeds(group_runs([tmp_path / "a"], [0]), SCHEDULE, env_workers=0, **RUN)
    assert main(["train", "--task", "walker_speed", "--steps", "4", "--seeds", "0,x",
                 "--logdir", str(tmp_path / "r{seed}")]) == 2
    assert main(["bench", "train", "--seeds", "1,0"]) == 2
    assert not list(tmp_path.iterdir())


def test_grids_group_seeds_where_asked(tmp_path):
    from hrl_core import study

    logdirs = {0: tmp_path / "a-s0", 1: tmp_path / "a-s1", 2: tmp_path / "a-s2"}
    assert study._groups(logdirs, 10, True) == [[0, 1, 2]]
    assert study._groups(logdirs, 10, False) == [[0], [1], [2]]
    assert study._groups(logdirs, 10, True, apart=lambda seed: seed % 2) == [[0, 2], [1]]
    assert study.vectorized(None) is (jax.default_backend() != "cpu") and study.vectorized(True)

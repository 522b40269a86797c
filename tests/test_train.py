import json
import os
import signal
import subprocess
import sys
import time

import numpy as np

from hrl_core.checkpoint import Checkpointer
from hrl_core.learned import load_agent
from hrl_core.rundir import RunSpec, latest_step, read_metrics
from hrl_core.train import Schedule, train
from tests.helpers import SMALL

OPTIONS = {"time_limit": 0.5}  # 10-step episodes: several end within each short run


def test_train_checkpoint_resume_continues(tmp_path):
    logdir = tmp_path / "run"
    spec = RunSpec.create("walker_speed", config=SMALL, env_options=OPTIONS)
    first = train(logdir, spec, Schedule(40, checkpoint_every=20, log_every=20, prefill=16), parallel=False,
                  progress=False)
    assert first["step"] == 40 and first["updates"] > 0 and first["replay_steps"] == 40
    _, state_a, run = load_agent(logdir)
    assert run.meta["counters"]["step"] == 40
    ckpt = Checkpointer(logdir / "ckpt")  # the record reads the latest step from the folder, without orbax
    assert latest_step(logdir) == ckpt.latest_step() == 40
    ckpt.close()
    second = train(logdir, spec, Schedule(60, log_every=20, prefill=16), resume=True, parallel=False,
                   progress=False)
    assert second["step"] == 60 and second["replay_steps"] == 60 and second["updates"] > first["updates"]
    steps = [r["step"] for r in read_metrics(logdir)]
    assert steps == sorted(steps) and steps[-1] == 60
    records = read_metrics(logdir)
    assert {"wm/image", "fps", "updates"} <= set(records[-1])
    assert any("episode/return" in r for r in records)
    assert first["replay_bytes_per_step"] == 64 * 64 * 3 + 4 * (1 + 6 + 1) + 3


def test_kill_mid_run_then_resume(tmp_path):
    logdir = tmp_path / "killed"
    cmd = [sys.executable, "-m", "hrl_core", "train", "--task", "walker_speed", "--steps", "100000",
           "--logdir", str(logdir), "--log-every", "4", "--checkpoint-every", "100000", "--no-progress",
           "--option", "time_limit=2.0"] + [arg for k, v in SMALL.items() for arg in ("--config", f"{k}={json.dumps(v)}")]
    proc = subprocess.Popen(cmd, env={**os.environ, "JAX_PLATFORMS": "cpu"})
    deadline = time.time() + 240
    while time.time() < deadline:  # wait until it is training, then kill it
        if (logdir / "metrics.jsonl").exists() and any(
                r.get("updates", 0) > 2 for r in map(json.loads, (logdir / "metrics.jsonl").read_text().split("\n")[:-1])):
            break
        time.sleep(0.5)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=120) == 0
    summary = json.loads((logdir / "summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["step"] < 100000
    ckpt = Checkpointer(logdir / "ckpt")
    assert ckpt.latest_step() == summary["step"]
    ckpt.close()
    _, saved_state, _ = load_agent(logdir)
    target = summary["step"] + 8
    resumed = train(logdir, RunSpec.create("walker_speed", config=SMALL, env_options=OPTIONS),
                    Schedule(target, prefill=10**9), resume=True, parallel=False,
                    progress=False)  # prefill: no updates, parameters stay put
    assert resumed["step"] == target and resumed["replay_steps"] == summary["replay_steps"] + 8
    assert resumed["updates"] == summary["updates"]
    _, state, _ = load_agent(logdir)
    for a, b in zip(np.asarray(jax_leaves(saved_state)), np.asarray(jax_leaves(state))):
        assert np.array_equal(a, b)


def jax_leaves(tree):
    import jax

    return np.array([np.asarray(x).ravel()[:4].tolist() + [float(np.asarray(x).sum())]
                     for x in jax.tree.leaves(tree["params"]) if np.asarray(x).size >= 4], dtype=object)


def test_eval_writes_returns_per_speed(tmp_path):
    from hrl_core.cli import main

    logdir = tmp_path / "ev"
    train(logdir, RunSpec.create("walker_speed", config=SMALL, env_options={"time_limit": 0.5}), Schedule(8),
          parallel=False, progress=False)
    assert main(["eval", "--logdir", str(logdir), "--split", "ood", "--episodes", "1"]) == 0
    result = json.loads((logdir / "eval_ood.json").read_text())
    from hrl_core.envs.locomotion import SPEEDS

    assert [r["speed"] for r in result["results"]] == list(SPEEDS["walker"]["ood"])
    assert all(len(r["returns"]) == 1 for r in result["results"])
    assert main(["eval", "--logdir", str(tmp_path / "missing")]) == 2

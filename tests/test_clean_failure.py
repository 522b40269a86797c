"""Bad input fails with one line before anything is created; Ctrl-C on a running `hrl train` checkpoints and exits."""

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hrl_core.checkpoint import Checkpointer
from hrl_core.cli import main
from hrl_core.rundir import RunSpec
from hrl_core.train import Schedule, train
from tests.helpers import SMALL

ROOT = Path(__file__).resolve().parents[1]
CONFIG = [arg for k, v in SMALL.items() for arg in ("--config", f"{k}={json.dumps(v)}")]


def _train_args(task, logdir, *extra):
    return ["train", "--task", task, "--logdir", str(logdir), "--no-progress", *CONFIG, *extra]


def _one_clean_line(err: str, *words):
    assert err.count("\n") == 1 and err.startswith("hrl train: error: "), err
    assert all(w in err for w in words), err
    assert "Traceback" not in err and "EOFError" not in err


def test_negative_steps_fail_before_creating_anything(tmp_path, capfd):
    logdir = tmp_path / "run"
    assert main(_train_args("walker_stand", logdir, "--steps", "-5")) == 2
    _one_clean_line(capfd.readouterr().err, "steps=-5", "positive")
    assert not logdir.exists()


def test_init_from_missing_run_fails_before_spawning(tmp_path, capfd):
    logdir = tmp_path / "run"
    assert main(_train_args("walker_stand", logdir, "--steps", "8", "--init-from", str(tmp_path / "missing"))) == 2
    _one_clean_line(capfd.readouterr().err, "init_from", "missing")
    assert not logdir.exists()


@contextlib.contextmanager
def _as_from_a_terminal():
    """Programs started meanwhile get SIGINT and SIGTERM at their default disposition, as a terminal's foreground
    job does. (A shell running pytest in the background leaves SIGINT ignored; `hrl train` and its workers would
    inherit that, and the bug would hide.) A Python handler becomes the default at exec."""
    old = {sig: signal.signal(sig, signal.default_int_handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def _updates(logdir: Path) -> float:
    path = logdir / "metrics.jsonl"
    lines = path.read_text().split("\n")[:-1] if path.exists() else []
    return max([json.loads(line).get("updates", 0) for line in lines], default=0)


def _live_members(pgid: int) -> list[str]:
    """Processes of group `pgid`, zombies aside (they only wait for a parent to reap them)."""
    live = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            state, _, group = stat.read_text().rsplit(")", 1)[1].split()[:3]
        except (OSError, IndexError):  # exited meanwhile
            continue
        if int(group) == pgid and state != "Z":
            live.append(stat.parent.name)
    return live


@pytest.fixture(scope="module")
def interrupted_run(tmp_path_factory):
    """A parallel `hrl train` (the CLI default, 2 workers) hit by Ctrl-C while updating: (logdir, pid, stderr)."""
    tmp = tmp_path_factory.mktemp("interrupted")
    logdir = tmp / "run"
    cmd = [sys.executable, "-m", "hrl_core", *_train_args("walker_speed", logdir, "--steps", "100000",
                                                           "--log-every", "4", "--checkpoint-every", "100000",
                                                           "--option", "time_limit=2.0")]
    with open(tmp / "stderr.txt", "w") as err:  # the workers share this stderr
        with _as_from_a_terminal():  # in its own process group, as a terminal's job
            proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "JAX_PLATFORMS": "cpu"},
                                    stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
        try:
            deadline = time.time() + 240
            while _updates(logdir) <= 2 and proc.poll() is None and time.time() < deadline:
                time.sleep(0.3)
            assert proc.poll() is None, (tmp / "stderr.txt").read_text()
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: the parent and its workers all get it
            assert proc.wait(timeout=60) == 0, (tmp / "stderr.txt").read_text()
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
    return logdir, proc.pid, (tmp / "stderr.txt").read_text()


def test_ctrl_c_to_process_group_checkpoints_and_resumes(interrupted_run):
    logdir, pid, stderr = interrupted_run
    for bad in ("Traceback", "KeyboardInterrupt", "ConnectionResetError", "EOFError"):
        assert bad not in stderr, stderr
    summary = json.loads((logdir / "summary.json").read_text())
    assert summary["interrupted"] and 0 < summary["step"] < 100000
    assert f"interrupted at step {summary['step']}; checkpoint saved" in stderr
    ckpt = Checkpointer(logdir / "ckpt")
    assert ckpt.latest_step() == summary["step"]  # the interrupt's checkpoint is the only one
    ckpt.close()
    deadline = time.time() + 10
    while _live_members(pid) and time.time() < deadline:  # the workers are gone too
        time.sleep(0.2)
    assert not _live_members(pid)

    target = summary["step"] + 4
    resumed = train(logdir, RunSpec.create("walker_speed", config=SMALL, env_options={"time_limit": 2.0}),
                    Schedule(target, log_every=2, prefill=10**9), resume=True, parallel=False, progress=False)
    assert resumed["step"] == target and resumed["replay_steps"] == summary["replay_steps"] + 4
    assert resumed["updates"] == summary["updates"]
    with open(logdir / "metrics.jsonl") as f:
        steps = [json.loads(line)["step"] for line in f]
    assert steps[-2:] == [summary["step"] + 2, target]  # the resumed run logged on from the interrupted step


def test_init_from_run_with_other_spaces_fails_naming_them(interrupted_run, tmp_path, capfd):
    source = interrupted_run[0]  # a walker run (6 actions) with a checkpoint; maze_novel has 8 actions
    logdir = tmp_path / "maze"
    assert main(_train_args("maze_novel", logdir, "--steps", "8", "--init-from", str(source))) == 2
    _one_clean_line(capfd.readouterr().err, "walker_speed", "maze_novel", "actions (6,)", "actions (8,)")
    assert not logdir.exists()

"""The grid executors (hrl_core/executor.py): Ray runs give the local runs' metrics; a run whose Ray worker is killed
is retried and resumes from its checkpoint with neither lost nor repeated log rows; a run that raises is reported
by name while the others finish. Ray runs are tiny dreamer runs of 200 steps on a local Ray with 2 CPUs."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import numpy as np
import pytest

from hrl_core import executor, study
from hrl_core.grid import Grid
from hrl_core.rundir import drop_rows_after, last_logged_step, read_metrics

GRID = dict(tasks=["walker_speed"], agents=["dreamer"], seeds=[0, 1])
TRAIN = dict(steps=200, time_limits={"walker_speed": 2.0}, checkpoint_every=100, progress=False)  # logs every 50 steps
# Ray starts its processes with fork + exec, which JAX's fork hook warns about.
pytestmark = pytest.mark.filterwarnings("ignore:os.fork:RuntimeWarning")


@pytest.fixture(scope="module")
def ray_env():
    """Token authentication with a token in the environment, so that Ray writes none into ~/.ray."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RAY_AUTH_TOKEN", uuid.uuid4().hex)
        yield


@pytest.fixture(scope="module")
def local_ray(ray_env):
    import ray

    ray.init(num_cpus=2, include_dashboard=False, object_store_memory=executor.LOCAL_OBJECT_STORE)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def local_runs(tmp_path_factory):
    runs = tmp_path_factory.mktemp("local")
    study.train_grid(Grid(runs, **GRID), **TRAIN)
    return runs


def run_dirs(runs):
    return sorted(p for p in Path(runs).iterdir() if p.is_dir())


def test_placement_options_are_checked_when_it_is_made():
    with pytest.raises(ValueError, match="executor='dask' is not valid; allowed values: local, ray"):
        executor.Placement("dask")
    with pytest.raises(ValueError, match="address='auto' is not valid with executor='local'"):
        executor.Placement(address="auto")
    with pytest.raises(ValueError, match="max_parallel=0 is not valid; it must be a positive integer"):
        executor.Placement("ray", max_parallel=0)
    with pytest.raises(ValueError, match="address='http://head:6379' is not valid; allowed values: None or 'local'"):
        executor.Placement("ray", "http://head:6379")
    for address in (None, "local", "auto", "ray://head-node:10001", "10.0.0.2:6379"):
        assert executor.Placement("ray", address, 2).address == address
    with pytest.raises(dataclasses.FrozenInstanceError):
        executor.LOCAL.executor = "ray"
    with pytest.raises(TypeError, match="placement='ray' is not valid; it must be an hrl_core.executor.Placement"):
        executor.run_jobs([], "ray")


def test_shared_path_check_names_what_a_node_cannot_read(tmp_path):
    marker, other = tmp_path / "marker", tmp_path / "config.json"
    marker.write_text("token")
    other.write_text("{}")
    expected = [(str(marker), "token"), (str(marker), "another driver's"), (str(other), None),
                (str(tmp_path / "missing"), None)]
    assert executor._unreadable(expected) == [str(marker), str(tmp_path / "missing")]


def test_local_executor_does_not_import_ray():
    code = ("import sys; from hrl_core import cli, executor, study; "
            "assert executor.run_jobs([executor.Job('a', dict, {'x': 1})], progress=False) == [{'x': 1}]; "
            "assert 'ray' not in sys.modules, 'ray was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "JAX_PLATFORMS": "cpu"})


def test_resume_drops_rows_logged_after_the_checkpoint(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("".join(json.dumps({"step": s, "x": s}) + "\n" for s in (50, 100, 150)) + '{"step": 2')
    drop_rows_after(path, 100)
    assert [r["step"] for r in map(json.loads, path.read_text().splitlines())] == [50, 100]


def test_cli_passes_executor_flags(monkeypatch):
    from hrl_core import cli, series

    seen = {}
    monkeypatch.setattr(series, "run_series", lambda *a, **k: seen.update(k) or [])
    assert cli.main(["notebooks", "--executor", "ray", "--address", "auto", "--max-parallel", "2"]) == 0
    assert seen["placement"] == executor.Placement("ray", "auto", 2)
    assert cli.main(["notebooks"]) == 0 and seen["placement"] is None  # each notebook keeps its own
    monkeypatch.setattr(study, "train_grid", lambda *a, **k: seen.update(grid=(a, k)) or [])
    assert cli.main(["grid", "--tasks", "maze_train", "--agents", "director", "--seeds", "0", "1", "--steps", "9",
                     "--runs", "r", "--time-limit", "maze_train=2.0", "--task-option", "maze_train:body=ball",
                     "--executor", "ray", "--max-parallel", "3"]) == 0
    args, options = seen["grid"]
    assert args == (Grid("r", "maze_train", "director", [0, 1], "tiny"), 9)
    assert options["time_limits"] == {"maze_train": 2.0} and options["task_options"] == {"maze_train": {"body": "ball"}}
    assert options["placement"] == executor.Placement("ray", None, 3)
    assert cli.main(["grid", "--tasks", "maze_train", "--steps", "9", "--runs", "r", "--vectorize", "on"]) == 0
    assert seen["grid"][1]["placement"] == executor.Placement(vectorize=True)
    assert cli.main(["grid", "--tasks", "maze", "--steps", "9", "--runs", "r"]) == 2  # no such task
    assert cli.main(["grid", "--tasks", "maze_train", "--agents", "dreamer", "--seeds", "0", "--steps", "9",
                     "--runs", "r", "--max-parallel", "3"]) == 2  # refused before anything starts: a ray option


@pytest.mark.slow
def test_failing_run_is_reported_and_the_others_finish(tmp_path, ray_env):
    """A bad option value raises inside its task (a bad option name is refused before any run starts:
    tests/test_runspec.py); that run is named with its cause, the other one completes. Run before the tests that
    start a Ray, this one leaves it to run_jobs to start (and stop) a Ray of its own."""
    with pytest.raises(executor.GridFailed, match=r"1 of 2 runs failed") as failed:
        study.train_grid(Grid(tmp_path, ["walker_speed", "cheetah_speed"], "dreamer", 0), 60,
                         time_limits={"walker_speed": 2.0}, task_options={"cheetah_speed": {"time_limit": -1.0}},
                         progress=False, placement=executor.Placement("ray"))
    assert list(failed.value.failures) == ["cheetah_speed-dreamer-s0"]
    assert "ValueError: time_limit=-1.0 is not valid" in str(failed.value)
    summary = json.loads((tmp_path / "walker_speed-dreamer-s0" / "summary.json").read_text())
    assert summary["step"] == 60 and not summary["interrupted"]
    assert not list(tmp_path.glob(".hrl-shared-check-*"))


@pytest.mark.slow
def test_ray_grid_matches_local(tmp_path, local_ray, local_runs):
    study.train_grid(Grid(tmp_path, **GRID), **TRAIN, placement=executor.Placement("ray"))
    assert [p.name for p in run_dirs(tmp_path)] == [p.name for p in run_dirs(local_runs)]
    for ours, theirs in zip(run_dirs(tmp_path), run_dirs(local_runs)):
        rows, expected = read_metrics(ours), read_metrics(theirs)
        assert [r.keys() for r in rows] == [r.keys() for r in expected]
        for row, want in zip(rows, expected):
            keys = sorted(set(row) - {"fps"})  # fps is a timing
            np.testing.assert_allclose([row[k] for k in keys], [want[k] for k in keys], rtol=1e-5, atol=1e-6)
    assert not list(tmp_path.glob(".hrl-shared-check-*"))


def _holder(path: Path) -> int | None:
    """The process that has `path` open (the Ray worker training that run), other than this one."""
    target = str(path.resolve())
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd) == target and int(fd.parts[2]) != os.getpid():
                return int(fd.parts[2])
        except OSError:  # a process or descriptor that went away
            continue
    return None


@pytest.mark.slow
def test_killed_worker_is_retried_and_resumes_from_its_checkpoint(tmp_path, local_ray, local_runs):
    """SIGKILL the run's worker once it has checkpointed at step 100 and logged step 150: Ray retries the task,
    which resumes at 100, drops the row of 150 and logs it again. The run ends where a never-killed run ends."""
    run, killed = tmp_path / "walker_speed-dreamer-s0", {}

    def kill_after_checkpoint():
        while not killed and time.time() < deadline:
            step = last_logged_step(run)
            if (run / "ckpt" / "100").is_dir() and step is not None and 100 < step < 200:
                pid = _holder(run / "metrics.jsonl")
                if pid is not None:
                    killed["rows"] = read_metrics(run)
                    os.kill(pid, signal.SIGKILL)
                    killed["pid"] = pid
            time.sleep(0.05)

    deadline = time.time() + 600
    killer = threading.Thread(target=kill_after_checkpoint, daemon=True)
    killer.start()
    try:
        study.train_grid(Grid(tmp_path, **{**GRID, "seeds": [0]}), **TRAIN, placement=executor.Placement("ray"))
    finally:
        deadline = 0
        killer.join()
    assert "pid" in killed, "the run finished before its worker could be killed"
    assert [r["step"] for r in killed["rows"]] == [50, 100, 150]
    rows, expected = read_metrics(run), read_metrics(local_runs / run.name)
    assert [r["step"] for r in rows] == [r["step"] for r in expected] == [50, 100, 150, 200]
    assert rows[:2] == killed["rows"][:2]  # kept as they were: the retry resumed at 100 instead of starting over
    summary, reference = (json.loads((path / "summary.json").read_text()) for path in (run, local_runs / run.name))
    for key in ("step", "updates", "replay_steps", "interrupted"):
        assert summary[key] == reference[key], key

"""The GPU path tested on this CPU: scripts/gpu_check.sh with --small (its order, its budget, the figures a kill
keeps, the report), and the one-line warning of `hrl` when nvidia-smi lists a GPU that JAX does not use."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.gpu_report import read_lines, report
from hrl_core.cli import main

ROOT = Path(__file__).resolve().parents[1]
FAKE_SMI = """#!/bin/sh
# nvidia-smi as on a machine with one GPU (only -L is asked for)
[ "$1" = -L ] && echo "GPU 0: NVIDIA H200 (UUID: GPU-00000000-0000-0000-0000-000000000000)" && exit 0
exit {code}
"""


def _fake_nvidia_smi(tmp_path, monkeypatch, code=0, lists=True):
    folder = tmp_path / "bin"
    folder.mkdir()
    smi = folder / "nvidia-smi"
    smi.write_text(FAKE_SMI.format(code=code) if lists else "#!/bin/sh\necho 'NVIDIA-SMI has failed' >&2\nexit 9\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")


def _warnings(capsys, tmp_path) -> list[str]:
    """The warning lines of one `hrl` command (a render of an unknown task: it fails at once, after the check)."""
    assert main(["render", "no_such_task", "--out", str(tmp_path / "x.png")]) == 2
    return [line for line in capsys.readouterr().err.splitlines() if "warning" in line]


def test_hrl_warns_once_when_nvidia_smi_lists_a_gpu_that_jax_does_not_use(tmp_path, monkeypatch, capsys):
    _fake_nvidia_smi(tmp_path, monkeypatch)
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)  # the tests pin the CPU; a user's machine would not
    lines = _warnings(capsys, tmp_path)
    assert len(lines) == 1, lines
    assert lines[0].startswith("hrl: warning: nvidia-smi lists 1 GPU (NVIDIA H200) but JAX")
    assert "runs on the CPU" in lines[0] and "make install JAX=cuda12" in lines[0]


def test_no_warning_without_a_listed_gpu_or_with_the_cpu_chosen(tmp_path, monkeypatch, capsys):
    """No nvidia-smi, an nvidia-smi that fails (no driver), or JAX_PLATFORMS=cpu set on purpose: nothing."""
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.delenv("JAX_PLATFORMS", raising=False)
    assert _warnings(capsys, tmp_path) == []
    _fake_nvidia_smi(tmp_path, monkeypatch, lists=False)
    assert _warnings(capsys, tmp_path) == []
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}/usr/bin:/bin")
    (tmp_path / "bin" / "nvidia-smi").write_text(FAKE_SMI.format(code=0))
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert _warnings(capsys, tmp_path) == []


def test_gpu_check_refuses_bad_arguments(tmp_path):
    for args, message in ((["--big"], "unknown argument '--big'"), (["--budget", "abc"], "--budget 'abc' is not valid"),
                          (["--budget", "10"], "--budget '10' is not valid"),
                          (["--wheelhouse", str(tmp_path)], "is not valid; it must be a folder from")):
        done = subprocess.run(["bash", "scripts/gpu_check.sh", str(tmp_path / "out"), *args], cwd=ROOT,
                              capture_output=True, text=True)
        assert done.returncode == 2 and message in done.stderr, (args, done.stderr)


def test_report_of_a_check_killed_part_way(tmp_path):
    """A line cut by a kill is skipped, a run without summary.json shows its last logged step, and the stages that
    did not finish are named."""
    train = {"preset": "S", "agent": "dreamer", "task": "walker_speed", "seeds": 1, "updates_per_s": 9.46,
             "total_updates_per_s": 9.46, "policy_steps_per_s": 18.92, "compile_s": 80.0, "peak_rss_mb": 900}
    (tmp_path / "figures.jsonl").write_text(json.dumps({"device": "NVIDIA H200", "backend": "gpu", "jax": "0.11.2",
                                                        "devices": ["cuda:0"]}) + "\n" + json.dumps(train)
                                            + '\n{"preset": "S", "agent": "dreamer", "seeds": 8, "upd')
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text(json.dumps({"step": 500, "updates": 0}) + "\n"
                                                    + json.dumps({"step": 2000, "updates": 488,
                                                                  "episode/return": 31.25}) + "\n")
    (tmp_path / "log.txt").write_text("[300s] train S dreamer seeds 1,8: exit 124 after 290s\n"
                                      "[300s] train S director seeds 1: skipped, 3s left\n")
    text = report(tmp_path)
    assert "| S | dreamer | 1 | 9.46 | 9.46 | 18.92 | 8.6 updates/s, 34 frames/s (here 1.10x, 38 frames/s) |" in text
    assert "| S | dreamer | 8 |" not in text
    assert "2000 policy steps, 488 updates (stopped before its summary was written)" in text
    assert "(2000, 31.2)" in text and "NVIDIA H200" in text
    assert "train S dreamer seeds 1,8: exit 124" in text and "train S director seeds 1: skipped" in text


def _start(out: Path, budget: int) -> subprocess.Popen:
    """The check in its own session with SIGINT at its default, as from a terminal, so that it and every process it
    started can be killed together."""
    env = {**os.environ, "PYTHON": sys.executable}
    return subprocess.Popen(["bash", "scripts/gpu_check.sh", str(out), "--small", "--budget", str(budget)], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(predicate, proc, timeout: float) -> float:
    """Seconds until predicate() holds, polling every 0.2 s; fails if the check ends first or at the timeout."""
    start = time.monotonic()
    while not predicate():
        assert proc.poll() is None, proc.stdout.read()
        assert time.monotonic() - start < timeout, f"not within {timeout}s"
        time.sleep(0.2)
    return time.monotonic() - start


def _train_rows(out: Path) -> list[dict]:
    return [r for r in read_lines(out / "figures.jsonl") if "updates_per_s" in r]


@pytest.mark.slow
def test_gpu_check_small_writes_its_first_figure_within_a_minute_and_ends_within_its_budget(tmp_path):
    """--small --budget 120: the first update rate is on disk within 60 s, every stage runs in order or is skipped
    for time, the whole check ends within its budget, and summary.md reports what it measured."""
    out = tmp_path / "check"
    start = time.monotonic()
    proc = _start(out, 120)
    first = _wait_for(lambda: len(_train_rows(out)) >= 1, proc, 60)
    proc.wait(timeout=150)
    elapsed = time.monotonic() - start
    log = (out / "log.txt").read_text()
    assert proc.returncode == 0 and elapsed <= 125, (elapsed, log)
    rows = _train_rows(out)
    assert rows[0]["preset"] == "tiny" and rows[0]["agent"] == "dreamer" and rows[0]["seeds"] == 1, rows
    order = ["device:", "train tiny dreamer seeds 1,2:", "train tiny director seeds 1:", "envs walker_walk",
             "walker_walk tiny run:", "group vs alone"]
    assert [log.index(name) for name in order] == sorted(log.index(name) for name in order), log
    text = (out / "summary.md").read_text()
    assert "| tiny | dreamer | 1 |" in text, text
    print(f"first figure after {first:.0f} s, whole check {elapsed:.0f} s; {len(rows)} update rates")


@pytest.mark.slow
@pytest.mark.parametrize("when", ["after the first figure", "during the learning run"])
def test_a_killed_gpu_check_keeps_every_figure_it_reached(tmp_path, when):
    """SIGKILL to the check and everything it started (a lease taken back): every figure on disk before the kill is
    still there, whole, and the report of the partial OUT shows them."""
    out = tmp_path / "check"
    proc = _start(out, 240)
    if when == "after the first figure":
        _wait_for(lambda: len(_train_rows(out)) >= 1, proc, 120)
    else:  # early in the run, while it compiles: before its summary.json, maybe before its first metrics line
        _wait_for(lambda: (out / "log.txt").exists() and "walker_walk tiny run: " in (out / "log.txt").read_text(),
                  proc, 220)
        time.sleep(5)
    seen = (out / "figures.jsonl").read_text().splitlines()
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    kept = (out / "figures.jsonl").read_text().splitlines()
    assert kept[:len(seen)] == seen and all(json.loads(line) for line in kept), kept
    text = report(out)
    for row in _train_rows(out):
        assert f"| {row['preset']} | {row['agent']} | {row['seeds']} | {row['updates_per_s']} |" in text, text
    if when == "during the learning run":
        assert [(r["agent"], r["seeds"]) for r in _train_rows(out)] == [("dreamer", 1), ("dreamer", 2), ("director", 1)]
        assert "walker_walk" in text and "agent steps/s with 2 worker processes" in text, text
        assert "stopped before its summary was written" in text, text

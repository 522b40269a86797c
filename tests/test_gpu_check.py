"""scripts/gpu_check.sh, the check a lent GPU runs in one call, end to end on this CPU with --small."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpu_check_runs_every_stage_and_reports_them(tmp_path):
    """--small: tiny preset, both agents at 1 and 2 seeds, 2 env workers, a short walker_walk run, all inside the
    budget; summary.md holds one table row per agent and seed count, the env rate and the run's steps."""
    out = tmp_path / "check"
    env = {**os.environ, "HRL": str(Path(sys.executable).parent / "hrl"), "PYTHON": sys.executable,
           "GPU_CHECK_SECONDS": "360"}
    done = subprocess.run(["bash", "scripts/gpu_check.sh", str(out), "--small"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=480)
    log = (out / "log.txt").read_text()
    assert done.returncode == 0, done.stderr + log
    # the 2 agents' benches and the env rate finish; the run is stopped at its time (timeout's 124) and checkpoints
    assert "skipped" not in log and log.count("exit 0") == 3 and "run: exit 124" in log, log
    for agent in ("dreamer", "director"):
        rows = json.loads((out / f"train_tiny_{agent}.json").read_text())
        assert [r["seeds"] for r in rows] == [1, 2] and all(r["updates_per_s"] > 0 for r in rows)
    summary = json.loads((out / "run" / "summary.json").read_text())
    assert summary["step"] > 0
    report = (out / "summary.md").read_text()
    assert "| tiny | dreamer | 1 |" in report and "| tiny | director | 2 |" in report
    assert "walker_walk" in report and f"{summary['step']} policy steps" in report


def test_gpu_check_refuses_a_bad_argument(tmp_path):
    done = subprocess.run(["bash", "scripts/gpu_check.sh", str(tmp_path), "--big"], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "must be --small" in done.stderr

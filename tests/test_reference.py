"""The repository's trained reference runs (reference/): small, CPU-loadable, described by series.json."""

import json
from pathlib import Path

import pytest

from hrl_core import series

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
RUNS = sorted(p for p in REFERENCE.glob("*-s*") if (p / "config.json").exists())


def test_reference_is_small_and_described():
    assert RUNS, "reference/ holds no runs"
    size = sum(f.stat().st_size for f in REFERENCE.rglob("*") if f.is_file())
    assert size < 30 * 2**20, f"reference/ is {size / 2**20:.1f} MB; the limit is 30 MB"
    settings = series.reference_settings(REFERENCE)
    assert settings["preset"] == "cpu" and (REFERENCE / "PROVENANCE.md").exists()
    for name in settings["notebooks"]:
        assert series.notebook_names([name]) == [name]
    for seed in settings["parameters"]["seeds"]:  # every notebook's runs are there
        for agent in ("dreamer", "director"):
            series.require_run(REFERENCE, "walker_speed", agent, seed)


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_reference_run_loads_on_cpu_with_its_evaluations(run):
    """An export: learned state without optimiser or replay; it loads, and its evaluation files are there."""
    from hrl_core.train import load_agent

    agent, state, info = load_agent(run)
    assert info["meta"]["learned_only"] and agent.cfg.preset == "cpu"
    assert json.loads((run / "summary.json").read_text())["step"] == info["meta"]["counters"]["step"]
    assert (run / "eval_train.json").exists() and (run / "eval_train_random.json").exists()

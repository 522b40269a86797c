"""Runs the whole notebook series through papermill with very small parameters and checks what each writes."""

import json

import nbformat
import pytest

from hrl_core import rundir, series
from hrl_core.claims import PRIMARY_ROWS
from hrl_core.viz.figures import has_chromium

pytestmark = pytest.mark.slow  # the whole series, about a quarter of an hour: `make test-slow` (CI runs it)

# Smaller than the tiny defaults: enough steps for updates to run (prefill is 128) and for episodes to end.
# All three agents: director+wr is a row of its own in runs, figures and findings.
PARAMS = {"agents": ["dreamer", "director", "director+wr"], "seeds": [0], "steps": 200,
          "time_limits": {"walker_speed": 2.0, "maze_train": 2.0}, "perturbations": 2,
          "window": 12, "trace_steps": 60, "columns": 4, "episodes": 1, "finetune_steps": 160, "time_limit": 2.0}

EXPECTED = {
    "01_train": (["learning_curves", "final_return_walker_speed"], ["runs", "final_return_iqm"]),
    "02_horizon_analysis": (["horizon", "l90_own_decisions"], ["table", "measured", "claims", "learned"]),
    "03_goal_decoding": (["goals", "goal_reward"], ["decisions", "distinct_goal_codes", "mean_goal_reward"]),
    "04_generalization": (["generalization", "performance_profile"], ["summary", "rows", "claims", "random_baseline"]),
    "05_finetune_ablation": (["finetune_curves", "returns_both"], ["variants", "claims", "evaluation_return_iqm"]),
    "06_composition": (["tracking", "intervals"], ["claims", "code_change", "runs"]),
    "07_findings": (["claims_per_seed", "claims"], ["claims", "missing"]),
}


@pytest.fixture(scope="module")
def series_out(tmp_path_factory):
    out = tmp_path_factory.mktemp("series")
    executed = series.run_series("tiny", out=out, overrides=PARAMS, progress=False)
    assert [p.stem for p in executed] == list(series.NOTEBOOKS)
    return out


@pytest.mark.parametrize("name", series.NOTEBOOKS)
def test_notebook_writes_its_copy_figures_and_metrics(series_out, name):
    figures, keys = EXPECTED[name]
    book = nbformat.read(series_out / f"{name}.ipynb", as_version=4)
    errors = [o for c in book.cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    injected = [c for c in book.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1 and str(series_out) in injected[0].source
    folder = series_out / name
    for figure in figures:
        assert (folder / f"{figure}.html").stat().st_size > 1000
        assert (folder / f"{figure}.png").exists() == has_chromium()
    metrics = json.loads((folder / "metrics.json").read_text())
    assert all(k in metrics for k in keys)


def test_series_results_are_consistent(series_out):
    runs = json.loads((series_out / "01_train" / "metrics.json").read_text())["runs"]
    assert {(r["task"], r["agent"]) for r in runs} == {(t, a) for t in ("walker_speed", "maze_train")
                                                       for a in PARAMS["agents"]}
    assert all(r["step"] >= PARAMS["steps"] and r["updates"] > 0 for r in runs)
    horizon = json.loads((series_out / "02_horizon_analysis" / "metrics.json").read_text())["measured"]
    dreamer, director = horizon["dreamer"][0], horizon["director"][0]  # one entry per seed
    assert dreamer["period"] == 1 and director["period"] == 4  # tiny K
    assert director["decisions_per_episode"] == -(-director["episode_steps"] // 4)
    goals = json.loads((series_out / "03_goal_decoding" / "metrics.json").read_text())
    # 60 traced observations: a 2 s episode is 40 steps, so 41 observations (reset to last), then 19 more
    assert goals["decisions"] == sum(-(-n // 4) for n in (41, 19))
    assert (series_out / "03_goal_decoding" / "goals.gif").exists()
    rows = json.loads((series_out / "04_generalization" / "metrics.json").read_text())["rows"]
    assert {r["split"] for r in rows} == {"train", "ood"} and len(rows) == 3 * 8  # 3 agents x 8 speeds
    claims = json.loads((series_out / "04_generalization" / "metrics.json").read_text())["claims"]
    retention = "held-out / own training-speed return (above random)"
    assert [(c["hierarchy"], c["measure"]) for c in claims] == [
        (h, m) for h in ("director", "director+wr")
        for m in (PRIMARY_ROWS["1-speed"][1], PRIMARY_ROWS["2a"][1], retention, retention)]
    assert [c["family"] for c in claims] == ["primary", "primary", "secondary", "secondary"] + ["secondary"] * 4
    # 200 steps learn nothing: every gated row is "not learned"; the training-task row has no gate, and one seed a
    # group cannot be tested. A notebook's own verdicts are marked uncorrected.
    assert all(c["verdict"].startswith("not learned") and not c["learned"]
               for c in claims if c["measure"] != PRIMARY_ROWS["1-speed"][1])
    assert all(c["verdict"].endswith("(uncorrected, see 07)") for c in claims)
    variants = json.loads((series_out / "05_finetune_ablation" / "metrics.json").read_text())["variants"]
    assert len(variants) == 3 and {v["novelty"] for v in variants} == {"both"}  # tiny: 3 variants, 1 grade, 1 seed
    assert all(v["updates"] > 0 for v in variants)  # fine-tuning trains
    # reached runs carry their step within the budget; the others are censored (None), never scored as the budget
    assert all((v["steps_to_threshold"] is not None) == v["reached"] for v in variants)
    assert all(v["steps_to_threshold"] <= PARAMS["finetune_steps"] for v in variants if v["reached"])
    assert all(v["curve"] == "eval/return" for v in variants)  # steps are read from evaluation curves
    finetune_claims = json.loads((series_out / "05_finetune_ablation" / "metrics.json").read_text())["claims"]
    assert [c["measure"].split(" (")[0] for c in finetune_claims] == [
        PRIMARY_ROWS["1-maze"][1], PRIMARY_ROWS["2b"][1], "steps to threshold on evaluation curves",
        "return after fine-tuning"]
    assert [c["family"] for c in finetune_claims] == ["primary"] * 3 + ["secondary"]
    composed = json.loads((series_out / "06_composition" / "metrics.json").read_text())
    assert {r["agent"] for r in composed["runs"]} == {"dreamer", "director", "director+wr", "random"}
    assert composed["schedule"] == [2.0, 5.0, 1.0]
    findings = json.loads((series_out / "07_findings" / "metrics.json").read_text())
    assert findings["missing"] == []
    # each claim for each hierarchy, except (c): its fine-tuning variants are Director's
    both = ("director", "director+wr")
    assert [(c["notebook"], c["hierarchy"]) for c in findings["claims"]] == \
        [("02_horizon_analysis", h) for h in both] + [("04_generalization", h) for h in both for _ in range(4)] + \
        [("05_finetune_ablation", "director")] * 4 + [("06_composition", h) for h in both for _ in range(2)]
    assert sum(c["family"] == "primary" for c in findings["claims"]) == 5  # the pre-registered rows, Director's
    # The tiny runs learn nothing, and one seed per agent can never reach p < 0.05: no row is tested.
    assert all(c["verdict"].startswith(("not learned", "untestable")) for c in findings["claims"])
    text = (series_out / "findings.md").read_text()
    assert text.startswith("# Findings (tiny preset)") and "## Primary family" in text and "## Secondary family" in text
    assert text.count("| not learned") + text.count("| untestable") >= 10


def test_rerun_reuses_the_runs(series_out):
    """A second run of 04 reads the trained runs; nothing in them changes."""
    run = rundir.run_path(series_out / "runs", "walker_speed", "dreamer", 0)
    before = (run / "metrics.jsonl").read_text()
    series.run_series("tiny", only=["04"], out=series_out, overrides={**PARAMS, "seeds": [0]}, progress=False)
    assert (run / "metrics.jsonl").read_text() == before


def test_missing_run_names_the_notebook_to_run_first(tmp_path):
    with pytest.raises(series.NotebookFailed, match=r"03_goal_decoding failed with MissingRun: .*01_train"):
        series.run_series("tiny", only=["03"], out=tmp_path, overrides=PARAMS, progress=False)


def test_executed_copy_keeps_the_widget_state(series_out):
    """The saved 03 shows the browser and explorer as last seen, not an empty box: nbclient (under papermill)
    stores the widget state, image buffers included, in the copy's metadata."""
    book = nbformat.read(series_out / "03_goal_decoding.ipynb", as_version=4)
    state = book.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    shown = [o["data"]["application/vnd.jupyter.widget-view+json"]["model_id"] for c in book.cells
             for o in c.get("outputs", []) if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert shown and all(model in state for model in shown)
    goal = [s for s in state.values() if "hrl-explorer-goal" in s["state"].get("_dom_classes", [])]
    assert len(goal) == 1 and goal[0]["buffers"][0]["path"] == ["value"]

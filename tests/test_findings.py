"""Claim rows built from notebook results (hrl_core/claims.py) and the findings table (hrl_core/findings.py), on
synthetic results with a known answer; no training."""

import json

import numpy as np
import pytest

from hrl_core import claims, findings
from hrl_core.analysis import stats

REPS = 300


def _composed_rows(director_error, dreamer_error, director_fixed, dreamer_fixed, seeds=(0, 1, 2, 3, 4)):
    rows = []
    for s in seeds:
        rows.append({"agent": "random", "seed": s, "summary": {"return": 10.0, "error": 3.0}})
        rows.append({"agent": "director", "seed": s,
                     "summary": {"return": 50.0, "error": director_error + 0.01 * s, "fixed_error": director_fixed}})
        rows.append({"agent": "dreamer", "seed": s,
                     "summary": {"return": 50.0, "error": dreamer_error + 0.01 * s, "fixed_error": dreamer_fixed}})
    return rows


def _check(*failures):
    """A gate result over the three agents; each failure's first word names the agent that failed."""
    failed = {text.split()[0]: text for text in failures}
    return {"learned": not failures, "rule": "test", "agents": {a: {} for a in ("dreamer", "director", "director+wr")},
            "failed": failed}


def test_composition_claims_relative_to_fixed_speeds_and_to_random():
    """5 seeds past the gate. Director's error after switches 0.6 m/s against 0.5 at fixed speeds (1.2x), DreamerV3's
    1.5 against 0.5 (3x): switching costs Director less, supported. Against random's 3 m/s both errors are lower
    for Director too (0.2 vs 0.5 of random's), supported."""
    fixed, random = claims.composition_claims(_composed_rows(0.6, 1.5, 0.5, 0.5), _check(), "test", reps=REPS)
    assert "fixed speeds" in fixed["measure"] and "random" in random["measure"]
    assert fixed["director"][0] == pytest.approx(1.2) and fixed["dreamer"][0] == pytest.approx(3.0)
    assert random["director"][0] == pytest.approx(0.2) and random["dreamer"][0] == pytest.approx(0.5)
    for row in (fixed, random):
        assert row["learned"] and not row["higher_is_better"] and row["verdict"] == stats.SUPPORTED


def test_composition_claims_relative_error_separates_switching_from_tracking():
    """DreamerV3 tracks worse everywhere (error 1.5 after switches, 1.5 at fixed speeds) than Director (0.6, 0.3):
    against random Director is better, but switching costs Director 2x its fixed-speed error and DreamerV3 1x, so
    the fixed-speed row is contradicted: the two rows ask different questions."""
    fixed, random = claims.composition_claims(_composed_rows(0.6, 1.5, 0.3, 1.5), _check(), "test", reps=REPS)
    assert random["verdict"] == stats.SUPPORTED and fixed["verdict"] == stats.CONTRADICTED


def test_composition_claims_gate_on_the_training_speeds_not_the_outcome():
    """The gate is the walker runs' skill at the training speeds, judged before the composed task: a failed gate
    makes both rows "not learned", naming who failed, whatever the composed task shows."""
    failure = "dreamer did not track the target speed: error 0.9 of it [0.84, 0.95], slope 0.0057 [0.0011, 0.01]"
    fixed, random = claims.composition_claims(_composed_rows(0.6, 1.5, 0.5, 0.5), _check(failure), "test", reps=REPS)
    assert not fixed["learned"] and random["verdict"] == fixed["verdict"] == f"not learned ({failure})"


def test_each_hierarchy_is_compared_with_dreamer_in_rows_of_its_own():
    """director+wr is a third agent row: its claim rows use its own runs and name it, and each comparison is gated
    on its two agents only, so director+wr failing the gate leaves Director's rows tested (and the other way
    round). Gate results over other agents are refused, naming what is missing."""
    rows = _composed_rows(0.6, 1.5, 0.5, 0.5)
    rows += [{**r, "agent": "director+wr", "summary": {**r["summary"], "error": 3.0 * r["summary"]["error"]}}
             for r in rows if r["agent"] == "director"]
    failure = "director+wr did not track the target speed: error 0.9 of it [0.84, 0.95], slope 0 [0, 0]"
    check = _check(failure)
    director = claims.composition_claims(rows, check, "test", reps=REPS)
    plus = claims.composition_claims(rows, check, "test", reps=REPS, hierarchy="director+wr")
    assert [r["hierarchy"] for r in director + plus] == ["director"] * 2 + ["director+wr"] * 2
    assert all(r["verdict"] == stats.SUPPORTED for r in director)
    assert all(r["verdict"] == f"not learned ({failure})" for r in plus)
    assert plus[0]["director"][0] == pytest.approx(3.6) and director[0]["director"][0] == pytest.approx(1.2)
    table = stats.findings_markdown(director + plus)
    assert "| director+wr | error after switches" in table and "director+wr - DreamerV3" in table
    from hrl_core.viz import figures

    assert len(figures.claim_intervals_figure(director + plus).data[0].y) == 4  # a row each, none merged
    drawn = {x for trace in figures.claim_seeds_figure(director + plus).data for x in trace.x}
    assert drawn == {"Director", "Director+wr", "DreamerV3"}
    assert claims.hierarchies(["dreamer", "director", "director+wr"]) == ["director", "director+wr"]
    with pytest.raises(ValueError, match="hierarchy='director\\+wr' is not valid for this gate; .*missing: director"):
        claims.pair_check({**check, "agents": {"dreamer": {}}}, "director+wr")


def test_tracking_gate_needs_the_speed_to_rise_with_the_target_for_every_agent():
    """The speed claims' gate: each run's achieved speed against the target at the training speeds. Director tracks
    (achieved = 0.9 target, error 0.1) on 3 seeds; DreamerV3 stands still at 0.2 m/s on one seed out of 3 and
    tracks on two: its error interval over seeds reaches above 0.5 (about the range of 3 seeds), so it fails,
    named with its numbers. Stored evaluations without forward speeds cannot be judged."""
    def rows(agent, seed, achieved):
        return [{"agent": agent, "seed": seed, "split": "train", "speed": v, "mean_return": 100.0,
                 "mean_forward_speed": achieved(v)} for v in (1.0, 3.0, 5.0)]
    data = [r for s in range(3) for r in rows("director", s, lambda v: 0.9 * v)]
    data += rows("dreamer", 0, lambda v: 0.2) + [r for s in (1, 2) for r in rows("dreamer", s, lambda v: 0.9 * v)]
    check = claims.tracking_from_rows(data, ["director", "dreamer"], reps=REPS)
    assert not check["learned"] and list(check["failed"]) == ["dreamer"]
    assert check["failed"]["dreamer"].startswith("dreamer did not track the target speed: error 0.")
    director = check["agents"]["director"]
    assert director["relative_error"]["point"] == pytest.approx(0.1) and director["slope"]["low"] > 0
    assert claims.tracking_from_rows([r for r in data if r["agent"] == "director"], ["director"], reps=REPS)["learned"]
    old = [{k: v for k, v in r.items() if k != "mean_forward_speed"} for r in data]
    with pytest.raises(ValueError, match="no forward speeds"):
        claims.tracking_from_rows(old, ["director"], reps=REPS)


def test_return_gate_passes_on_the_interval_not_the_mean():
    """learned_from_rows: per-seed return / random return against the factor, judged on the interval over seeds.
    Seeds at 4x, 4x and 1x random average 3x, which passes a 2x point rule, but the interval reaches 1x: not learned."""
    rows = [{"agent": "director", "seed": s, "split": "train", "speed": None, "mean_return": m}
            for s, m in enumerate((0.4, 0.4, 0.1))]
    baseline = [{"seed": s, "split": "train", "speed": None, "mean_return": 0.1} for s in range(3)]
    check = claims.learned_from_rows(rows, baseline, ["director"], 2.0, "on the source maze", reps=REPS)
    assert check["agents"]["director"]["per_seed"] == pytest.approx([4.0, 4.0, 1.0])
    assert not check["learned"] and list(check["failed"]) == ["director"]
    assert check["failed"]["director"].startswith("director reached 3x random on the source maze [1")
    rows[2]["mean_return"] = 0.3
    assert claims.learned_from_rows(rows, baseline, ["director"], 2.0, reps=REPS)["learned"]


def test_finetune_claims_pool_grades_and_compare_the_chosen_variants():
    """Two grades x 5 seeds: the Director variant needs 100 steps where DreamerV3 needs 300 and returns 0.9 vs 0.8,
    both sources past the gate on the source maze: steps supported (lower; every Director run sooner, P = 1), return
    supported (higher). A source that failed the gate makes the rows "not learned", naming it."""
    rows = []
    for s in range(5):
        for g in ("colours", "both"):
            base = {"seed": s, "novelty": g, "random_return": 0.1, "reached": True, "budget": 500}
            rows.append({**base, "variant": "director: WM+M (worker frozen)", "steps_to_threshold": 100 + s,
                         "evaluation_return": 0.9 + 0.01 * s})
            rows.append({**base, "variant": "dreamer: all", "steps_to_threshold": 300 + s,
                         "evaluation_return": 0.8 + 0.01 * s})
    source = _check()
    steps, ret = claims.finetune_claims(rows, "director: WM+M (worker frozen)", "dreamer: all", source, "t", reps=REPS)
    assert steps["verdict"] == stats.SUPPORTED and steps["difference"]["point"] == 1.0 and steps["censored"]
    assert steps["director"] == [100.0, 101.0, 102.0, 103.0, 104.0]  # one value per seed, the median over grades
    assert ret["verdict"] == stats.SUPPORTED
    with pytest.raises(ValueError, match="no fine-tuning run"):
        claims.finetune_claims(rows, "director: all", "dreamer: all", source, "t", reps=REPS)
    failed = _check("director reached 0.27x random on the source maze [0.2, 0.33], below 2x")
    gated = claims.finetune_claims(rows, "director: WM+M (worker frozen)", "dreamer: all", failed, "t", reps=REPS)
    assert gated[0]["verdict"] == "not learned (director reached 0.27x random on the source maze [0.2, 0.33], below 2x)"


def test_finetune_claims_censor_runs_that_never_reach_the_threshold():
    """5 seeds, one grade: every DreamerV3 run is censored (never reached the threshold) and Director's reach it at
    400-404 of a 500-step budget. Scoring the censored runs as the budget would make the difference -100 steps;
    censored, they rank above every reached run: P(Director sooner) = 1, p = 2/252, supported. Censored runs are
    listed as None, shown as "censored" in the table."""
    rows = []
    for s in range(5):
        base = {"seed": s, "novelty": "both", "evaluation_return": 0.5, "budget": 500}
        rows.append({**base, "variant": "director: all", "steps_to_threshold": 400 + s, "reached": True})
        rows.append({**base, "variant": "dreamer: all", "steps_to_threshold": None, "reached": False})
    steps = claims.finetune_claims(rows, "director: all", "dreamer: all", _check(), "t", reps=REPS)[0]
    assert steps["dreamer"] == [None] * 5 and steps["p"] == pytest.approx(2 / 252)
    assert steps["verdict"] == stats.SUPPORTED and steps["difference"]["label"].startswith("P(Director better)")
    assert "censored, censored" in stats.findings_markdown([steps])
    json.dumps(steps, allow_nan=False)  # storable in metrics.json as it is


def test_horizon_claim_in_steps_censors_at_the_window():
    """Claim (a) in environment steps: a run without a response, or whose response had not decayed in the window,
    is censored at the window (24 steps: listed as None, tested on ranks, never averaged as 24); others count their
    L90. The measure says how many runs were censored; windows of different lengths are an error."""
    def result(l90, decayed=True):
        return {"l90_steps": l90, "l90_decisions": None, "period": 4, "lags": list(range(24)), "decayed": decayed}
    measured = {"director": [result(None), result(8.0), result(5.0, decayed=False)],
                "dreamer": [result(10.0), result(12.0), result(11.0)]}
    claim = claims.horizon_claim(measured, _check(), "t", reps=REPS)
    assert claim["director"] == [None, 8.0, None] and not claim["higher_is_better"] and claim["censored"]
    assert "environment steps; 2 of 6 runs censored at the 24-step window" in claim["measure"]
    measured["dreamer"][0] = {**measured["dreamer"][0], "lags": list(range(32))}
    with pytest.raises(ValueError, match="windows \\[24, 32\\]"):
        claims.horizon_claim(measured, _check(), "t", reps=REPS)
    assert claim["verdict"].startswith(stats.UNTESTABLE)  # 3 vs 3 seeds can never reach p < 0.05


def test_claims_without_dreamer_name_the_missing_agent():
    """A series run on hierarchies alone (agents=["director", "director+wr"]) stops with the parameter and the agent
    to add, not a KeyError deep in a claim."""
    measured = {"director": [{"l90_steps": 8.0, "lags": list(range(24))}],
                "director+wr": [{"l90_steps": 6.0, "lags": list(range(24))}]}
    with pytest.raises(ValueError, match=r"agents=\['director', 'director\+wr'\] .*missing: dreamer"):
        claims.horizon_claim(measured, _check(), "t", reps=REPS, hierarchy="director+wr")
    rows = _composed_rows(0.6, 1.5, 0.5, 0.5)
    with pytest.raises(ValueError, match="compares director with dreamer \\(missing: dreamer\\)"):
        claims.composition_claims([r for r in rows if r["agent"] != "dreamer"], _check(), "t", reps=REPS)


def test_final_return_intervals_skip_runs_without_episodes():
    rows = [{"task": "t", "agent": "dreamer", "final_return": v} for v in (1.0, 2.0, float("nan"))] + \
           [{"task": "t", "agent": "director", "final_return": float("nan")}]
    out = claims.final_return_intervals(rows, ["t"], ["dreamer", "director"], reps=REPS)
    assert out["t"]["dreamer"]["iqm"] == pytest.approx(1.5) and np.isnan(out["t"]["director"]["iqm"])


def test_findings_gather_claims_in_series_order_and_name_what_is_missing(tmp_path):
    claim = stats.claim_row(stats.Claim("(b) x", "m"), np.array([1.0, 2.0]), np.array([1.0, 2.0]), False, "tiny",
                            reps=REPS)
    for notebook, metrics in (("06_composition", {"claims": [claim, claim]}), ("04_generalization", {"claim": claim})):
        (tmp_path / notebook).mkdir()
        (tmp_path / notebook / "metrics.json").write_text(json.dumps(metrics))
    rows, missing = findings.collect(tmp_path)
    assert [r["notebook"] for r in rows] == ["04_generalization", "06_composition", "06_composition"]
    assert missing == ["02_horizon_analysis", "05_finetune_ablation"]
    text = findings.write(tmp_path, "Findings (test)").read_text()
    assert text.startswith("# Findings (test)") and text.count(stats.NOT_LEARNED) >= 3
    assert "Not run (no metrics.json): 02_horizon_analysis, 05_finetune_ablation." in text


def test_one_run_per_agent_is_untestable():
    """A single seed per agent: the values stay, the interval is that seed's difference and says so, and the verdict
    is "untestable" even when the runs learned and the agents differ widely."""
    claim = stats.claim_row(stats.Claim("(b) x", "m"), np.array([10.0]), np.array([1.0]), True, "1 seed", reps=REPS)
    assert claim["runs"] == {"director": 1, "dreamer": 1} and claim["verdict"].startswith(stats.UNTESTABLE)
    assert claim["difference"]["point"] == pytest.approx(9.0)
    assert "9 [-inf, inf] (95% permutation interval over seeds (unbounded at this n))" in stats.findings_markdown([claim])


def test_findings_cells_stay_short_with_each_gate_a_numbered_note():
    """A failed gate's text is a note under its table, numbered once across the document's tables; a gated row
    that its seed counts could never decide says "untestable with n = 2" beside the gate; no cell runs long."""
    gate = "dreamer did not track the target speed: error 0.9 of it [0.84, 0.95], slope 0.0057 [0.0011, 0.01] " * 2
    gated = stats.claim_row(stats.Claim("(2a) held-out", "m", family=stats.PRIMARY), [1.0, 2.0], [1.0, 2.0], False,
                            "tiny", reps=REPS, gate=gate)
    other = {**gated, "family": stats.SECONDARY}
    decidable = stats.claim_row(stats.Claim("(b) x", "m"), [5.0, 6, 7, 8, 9], [0.0, 1, 2, 3, 4], False, "tiny",
                                reps=REPS, gate="director did not learn")
    rows = [{**r, "notebook": "04_generalization"} for r in (gated, other, decidable)]
    text = findings.document(stats.decide(rows), [], "Findings (test)")
    assert text.count("not learned (gate 1); untestable with n = 2 (smallest possible p = 0.33)") == 2
    assert "| not learned (gate 2) |" in text  # 5 vs 5 could decide it: the gate alone stops it
    assert text.count(f"- gate 1: {gate}") == 2 and text.count("- gate 2: director did not learn") == 1
    cells = [c.strip() for line in text.splitlines() if line.startswith("| (") for c in line.strip("|").split(" | ")]
    assert cells and max(map(len, cells)) <= 120

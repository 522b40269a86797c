"""Claim rows built from notebook results (hrl_core/study.py) and the findings table (hrl_core/findings.py), on
synthetic results with a known answer; no training."""

import json

import numpy as np
import pytest

from hrl_core import findings, study
from hrl_core.analysis import stats

REPS = 300


def _composed_rows(director_return, dreamer_return, director_error, dreamer_error, seeds=(0, 1, 2, 3, 4)):
    rows = []
    for s in seeds:
        rows.append({"agent": "random", "seed": s, "summary": {"return": 10.0, "error": 3.0}})
        rows.append({"agent": "director", "seed": s,
                     "summary": {"return": director_return + s, "error": director_error + 0.01 * s}})
        rows.append({"agent": "dreamer", "seed": s,
                     "summary": {"return": dreamer_return + s, "error": dreamer_error + 0.01 * s}})
    return rows


def _check(director, dreamer, factor=3.0):
    return {"learned": min(director, dreamer) >= factor, "normalised_iqm": {"director": director, "dreamer": dreamer},
            "learned_factor": factor}


def test_composition_claims_supported_when_director_tracks_better_and_both_learned():
    """Director 100+s vs DreamerV3 40+s against random 10, over 5 seeds, both past the training-speed gate: the
    return claim is supported; its tracking error 0.5 vs 1.5 m/s is lower, which supports the error claim."""
    ret, err = study.composition_claims(_composed_rows(100, 40, 0.5, 1.5), _check(3.5, 4.0), "test", reps=REPS)
    assert ret["learned"] and ret["verdict"] == stats.SUPPORTED and ret["difference"]["low"] > 0
    assert not err["higher_is_better"] and err["verdict"] == stats.SUPPORTED and err["difference"]["high"] < 0


def test_composition_claims_gate_on_the_training_speeds_not_the_outcome():
    """The gate is the walker runs' skill at the training speeds, judged before the composed task: DreamerV3 at 2x
    random there makes both rows "not learned", naming it, even though its composed return is 4x random."""
    ret, err = study.composition_claims(_composed_rows(100, 40, 0.5, 1.5), _check(3.5, 2.0), "test", reps=REPS)
    assert not ret["learned"] and err["verdict"] == ret["verdict"]
    assert ret["verdict"] == "not learned (dreamer reached 2x random at the training speeds, below 3x)"


def test_finetune_claims_pool_grades_and_compare_the_chosen_variants():
    """Two grades x 5 seeds: the Director variant needs 100 steps where DreamerV3 needs 300 and returns 0.9 vs 0.8,
    both sources past the gate on the source maze: steps supported (lower), return supported (higher). A source that
    failed the gate makes the rows "not learned", naming it."""
    rows = []
    for s in range(5):
        for g in ("colours", "both"):
            base = {"seed": s, "novelty": g, "random_return": 0.1, "reached": True}
            rows.append({**base, "variant": "director: WM+M (worker frozen)", "steps_to_threshold": 100 + s,
                         "evaluation_return": 0.9 + 0.01 * s})
            rows.append({**base, "variant": "dreamer: all", "steps_to_threshold": 300 + s,
                         "evaluation_return": 0.8 + 0.01 * s})
    source = {"learned": True, "normalised_iqm": {"director": 2.5, "dreamer": 3.0}, "learned_factor": 2.0}
    steps, ret = study.finetune_claims(rows, "director: WM+M (worker frozen)", "dreamer: all", source, "t", reps=REPS)
    assert steps["verdict"] == stats.SUPPORTED and steps["difference"]["point"] == pytest.approx(-200)
    assert steps["director"] == [100.0, 101.0, 102.0, 103.0, 104.0]  # one value per seed, grades averaged
    assert ret["verdict"] == stats.SUPPORTED
    with pytest.raises(ValueError, match="no fine-tuning run"):
        study.finetune_claims(rows, "director: all", "dreamer: all", source, "t", reps=REPS)
    failed = {"learned": False, "normalised_iqm": {"director": 0.27, "dreamer": 3.0}, "learned_factor": 2.0}
    gated = study.finetune_claims(rows, "director: WM+M (worker frozen)", "dreamer: all", failed, "t", reps=REPS)
    assert gated[0]["verdict"] == "not learned (director reached 0.27x random on the source maze, below 2x)"


def test_horizon_claim_in_steps_censors_at_the_window():
    """Claim (a) in environment steps: a run without a response, or whose response had not decayed in the window,
    counts as the whole window (24 steps); others count their L90."""
    def result(l90, decayed=True):
        return {"l90_steps": l90, "l90_decisions": None, "period": 4, "lags": list(range(24)), "decayed": decayed}
    measured = {"director": [result(None), result(8.0), result(5.0, decayed=False)],
                "dreamer": [result(10.0), result(12.0), result(11.0)]}
    claim = study.horizon_claim(measured, True, "t", reps=REPS)
    assert claim["director"] == [24.0, 8.0, 24.0] and not claim["higher_is_better"]
    assert "environment steps" in claim["measure"]
    assert claim["verdict"].startswith(stats.UNTESTABLE)  # 3 vs 3 seeds can never reach p < 0.05


def test_final_return_intervals_skip_runs_without_episodes():
    rows = [{"task": "t", "agent": "dreamer", "final_return": v} for v in (1.0, 2.0, float("nan"))] + \
           [{"task": "t", "agent": "director", "final_return": float("nan")}]
    out = study.final_return_intervals(rows, ["t"], ["dreamer", "director"], reps=REPS)
    assert out["t"]["dreamer"]["iqm"] == pytest.approx(1.5) and np.isnan(out["t"]["director"]["iqm"])


def test_findings_gather_claims_in_series_order_and_name_what_is_missing(tmp_path):
    claim = stats.claim_row("(b) x", "m", np.array([1.0, 2.0]), np.array([1.0, 2.0]), True, False, "tiny", reps=REPS)
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
    claim = stats.claim_row("(b) x", "m", np.array([10.0]), np.array([1.0]), True, True, "1 seed", reps=REPS)
    assert claim["runs"] == {"director": 1, "dreamer": 1} and claim["verdict"].startswith(stats.UNTESTABLE)
    assert claim["difference"]["point"] == pytest.approx(9.0)
    assert "9 [9, 9] (range of 1 seed)" in stats.findings_markdown([claim])

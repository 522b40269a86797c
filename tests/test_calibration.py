"""Calibration of the study's decision rule through its own code path (hrl_core/calibration.py: the claim
builders of hrl_core/claims.py, per_seed, the gates, the families and Holm): false verdicts with no true difference,
complete separation, a planted pseudo-replication, and the intervals' coverage from both sides."""

import numpy as np
import pytest

from hrl_core import calibration, claims
from hrl_core.analysis import stats


def bound(studies: int, rate: float = 0.05) -> float:
    """The rate plus 2.5 Monte Carlo standard errors: at 1000 studies 0.067, so a rule at 8% fails it."""
    return rate + 2.5 * np.sqrt(rate * (1 - rate) / studies)


def test_complete_separation_supports_every_primary_row_at_five_seeds():
    """5 vs 5 with every seed separated on every primary row: each of the 5 rows is "supported", with Holm-adjusted
    p = 5 x 2/252 = 0.040 < 0.05. The study's primary family is at most 5 rows for exactly this."""
    rows = calibration.simulate_study(np.random.default_rng(0), 5, effect=30.0)
    primary = [r for r in rows if r["family"] == stats.PRIMARY]
    assert len(primary) == len(claims.PRIMARY_ROWS) == 5
    assert all(r["verdict"] == stats.SUPPORTED for r in primary), [r["verdict"] for r in primary]
    assert all(r["p_holm"] == pytest.approx(5 * 2 / 252) for r in primary if not r["censored"])


def test_two_seeds_are_untestable_never_no_difference():
    """At n = 2 no row can pass Holm: every row says "untestable with n = 2", never "no significant difference"."""
    rows = calibration.simulate_study(np.random.default_rng(1), 2, effect=30.0)
    assert all(r["verdict"].startswith("untestable with n = 2") for r in rows), [r["verdict"] for r in rows]


def test_seven_separated_rows_in_one_family_are_untestable_at_five_seeds():
    """Holm over 7 rows at 5 vs 5 cannot reach 0.05 (7 x 2/252 = 0.056): the rule says so instead of "no
    significant difference"; the same rows as 5 primary and 2 secondary are decided."""
    high, low = [5.0, 6.0, 7.0, 8.0, 9.0], [0.0, 1.0, 2.0, 3.0, 4.0]
    seven = [stats.claim_row(stats.Claim("c", f"m{i}", family=stats.PRIMARY), high, low, True, "s") for i in range(7)]
    assert all(r["verdict"] == "untestable with n = 5 (smallest possible p = 0.0079, too large for Holm over the 7 "
               "rows of its family)" for r in stats.decide(seven))
    split = [{**r, "family": stats.PRIMARY if i < 5 else stats.SECONDARY} for i, r in enumerate(seven)]
    assert all(r["verdict"] == stats.SUPPORTED for r in stats.decide(split))


def test_false_verdicts_with_no_difference_at_five_seeds():
    """No true difference on any row: a study states "supported" or "contradicted" on some row of a family in at most
    5% of simulated studies (plus 2.5 standard errors, 1000 studies), in the primary and the secondary family."""
    studies = 1000
    rates = calibration.verdict_rates(5, 0.0, studies, seed=5)
    assert rates[stats.PRIMARY] <= bound(studies), rates
    assert rates[stats.SECONDARY] <= bound(studies), rates


@pytest.mark.slow
def test_false_verdicts_with_no_difference_at_ten_seeds():
    studies = 1000
    rates = calibration.verdict_rates(10, 0.0, studies, seed=10)
    assert rates[stats.PRIMARY] <= bound(studies), rates
    assert rates[stats.SECONDARY] <= bound(studies), rates


def test_counting_speeds_as_seeds_is_caught():
    """The planted error: each speed's evaluation counted as a run of its own (pseudo-replication). The false-
    verdict rate it gives on the same null studies is far above the bound the real path meets, so a calibration that
    went through such a path would fail."""
    studies = 60
    assert calibration.verdict_rates(5, 0.0, studies, seed=7, pseudo_replicate=True)[stats.PRIMARY] > bound(studies)


@pytest.mark.parametrize("n,studies", [(5, 1000), (10, 600)])
def test_interval_coverage_from_both_sides(n, studies):
    """The claim row's 95% interval (the permutation test inverted) covers the true shift in 93-97% of simulated
    studies, runs with correlated speed columns, through claim_row and per_seed: neither too narrow nor too wide
    (an unbounded interval covers 100% and fails)."""
    rng = np.random.default_rng(n)
    covered = 0
    for i in range(studies):
        runs = rng.normal(size=(2, n, 1)) + 0.5 * rng.normal(size=(2, n, 4))
        row = stats.claim_row(stats.Claim("c", "m"), runs[0] + 1.0, runs[1], True, "sim", seed=i)
        covered += row["difference"]["low"] <= 1.0 <= row["difference"]["high"]
    assert 0.93 <= covered / studies <= 0.97, covered / studies


def test_holm_by_hand_and_against_statsmodels():
    """Holm's adjusted p: sorted p1 <= p2 <= p3 get 3 p1, max(3 p1, 2 p2), max(..., p3), capped at 1; the same as
    statsmodels' multipletests on random p-values."""
    from statsmodels.stats.multitest import multipletests

    assert stats.holm([0.04, 0.01, 0.03]) == pytest.approx([0.06, 0.03, 0.06])
    p = np.random.default_rng(0).random(9) ** 3
    assert stats.holm(p) == pytest.approx(multipletests(p, method="holm")[1].tolist())


def test_power_at_five_seeds_for_a_large_effect():
    """With Director ahead by 3 run-effect standard deviations on every measure, each primary row is "supported" in
    at least 80% of 5-vs-5 studies (about 93% measured over 400: benchmarks/RESULTS.md)."""
    rates = calibration.verdict_rates(5, 3.0, 100, seed=3)
    primary = [m for _, m in claims.PRIMARY_ROWS.values()]
    for measure in primary:
        rate = next(v for m, v in rates["rows"].items() if m.startswith(measure))
        assert rate >= 0.8, (measure, rate)

"""The tests that decide claims (hrl_core/analysis/stats.py): the seed as the unit, exact permutation p-values, Holm
within families, verdicts. Their calibration through the study's own code path is tests/test_calibration.py."""

import dataclasses

import numpy as np
import pytest

from hrl_core.analysis import stats


def test_per_seed_values_are_row_means():
    """One number per run: a run's mean over its speeds; 1-D scores are already per run."""
    assert stats.per_seed(np.array([[1.0, 3.0], [2.0, 6.0]])).tolist() == [2.0, 4.0]
    assert stats.per_seed([5.0, 7.0]).tolist() == [5.0, 7.0]


def test_exact_permutation_p_by_hand():
    """Complete separation of 5 vs 5 runs: 2 of the C(10, 5) = 252 arrangements are as extreme (one per side), so
    p = 2/252; 3 vs 3: 2/20 = 0.1, the smallest p such a study can give. Identical groups: p = 1."""
    assert stats.permutation_p([5, 6, 7, 8, 9], [0, 1, 2, 3, 4]) == pytest.approx(2 / 252)
    assert stats.permutation_p([5, 6, 7], [0, 1, 2]) == pytest.approx(0.1)
    assert stats.permutation_p([1, 2, 3], [1, 2, 3]) == pytest.approx(1.0)
    assert stats.smallest_p(3, 3) == pytest.approx(0.1) and stats.smallest_p(5, 5) == pytest.approx(2 / 252)
    assert stats.smallest_p(4, 4) == pytest.approx(2 / 70)
    # One run against n: n + 1 arrangements (which run stands alone), enumerated since scipy needs two a group.
    assert stats.permutation_p([10.0], [1.0, 2.0, 3.0]) == pytest.approx(0.5) == stats.smallest_p(1, 3)
    assert stats.permutation_p([10.0], [1.0]) == pytest.approx(1.0)


def test_verdicts_supported_contradicted_untestable_not_learned():
    """5 vs 5 separated: supported (or contradicted when lower is better); 3 vs 3 separated: untestable with its
    smallest p; a failed gate: "not learned" with the reason, whatever the data."""
    high, low = [5.0, 6.0, 7.0, 8.0, 9.0], [0.0, 1.0, 2.0, 3.0, 4.0]
    higher, lower = stats.Claim("c", "m"), stats.Claim("c", "m", higher_is_better=False)
    assert stats.claim_row(higher, high, low, True, "s")["verdict"] == stats.SUPPORTED
    assert stats.claim_row(lower, high, low, True, "s")["verdict"] == stats.CONTRADICTED
    assert stats.claim_row(lower, low, high, True, "s")["verdict"] == stats.SUPPORTED
    small = stats.claim_row(stats.Claim("c", "m"), high[:3], low[:3], True, "s")
    assert small["verdict"] == "untestable with n = 3 (smallest possible p = 0.1)" and small["p_holm"] is None
    gated = stats.claim_row(stats.Claim("c", "m"), high, low, False, "s", gate="Director did not learn the maze")
    assert gated["verdict"] == "not learned (Director did not learn the maze)"
    overlap = stats.claim_row(stats.Claim("c", "m"), [1.0, 3.0, 5.0, 7.0, 9.0], [2.0, 4.0, 6.0, 8.0, 10.0], True, "s")
    assert overlap["verdict"] == stats.NOT_SIGNIFICANT


def test_holm_across_rows_by_hand():
    """Holm over the tested rows only: raw p (sorted) p1 <= p2 get m p1 and max(m p1, (m - 1) p2); an untestable
    row is not in the family. Two separated 5 vs 5 rows (p = 2/252 each) stay significant (2 x 2/252 < 0.05)."""
    high, low = [5.0, 6.0, 7.0, 8.0, 9.0], [0.0, 1.0, 2.0, 3.0, 4.0]
    mixed = [0.0, 1.0, 5.5, 3.0, 9.5]
    rows = [stats.claim_row(stats.Claim(name, "m"), director, dreamer, True, "s")
            for name, director, dreamer in (("a", high, low), ("b", high, mixed), ("c", high[:3], low[:3]))]
    decided = stats.decide(rows)
    p1, p2 = rows[0]["p"], rows[1]["p"]
    assert decided[0]["p_holm"] == pytest.approx(2 * p1)
    assert decided[1]["p_holm"] == pytest.approx(max(2 * p1, p2))
    assert decided[2]["p_holm"] is None and decided[0]["verdict"] == stats.SUPPORTED
    table = stats.findings_markdown(rows)
    assert table.count("\n") == 5 and "5, 6, 7, 8, 9" in table and "(unbounded at this n)" in table
    assert "untestable with n = 3 (smallest possible p = 0.1) " in table


def test_findings_table_escapes_pipes_and_shows_per_seed_values():
    row = stats.claim_row(stats.Claim("Director | returns more", "return"), [5.0, 6.0], [1.0, 2.0], True, "2 seeds")
    lines = stats.findings_markdown([row]).strip().splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("| claim | family | hierarchy | measure | hierarchy per seed | DreamerV3 per seed")
    assert "Director \\| returns more | secondary | director | return | 5, 6 | 1, 2 |" in lines[2]


def test_a_claim_names_a_bad_field_and_its_allowed_values():
    with pytest.raises(ValueError, match="family='tertiary' is not valid; allowed values: primary, secondary"):
        stats.Claim("c", "m", family="tertiary")
    with pytest.raises(ValueError, match="measure='' is not valid; it must be a non-empty string"):
        stats.Claim("c", "")
    with pytest.raises(ValueError, match="censored='yes' is not valid"):
        stats.Claim("c", "m", censored="yes")
    with pytest.raises(dataclasses.FrozenInstanceError):
        stats.Claim("c", "m").family = stats.PRIMARY

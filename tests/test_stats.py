"""Interval estimates (hrl_core/analysis/stats.py) on known synthetic scores; numpy only, small reps. The tests
across seeds and their calibration are in test_seed_tests.py."""

import numpy as np
import pytest

from hrl_core.analysis import stats

REPS = 500


def _scores(offset: float, seed: int, runs: int = 5, tasks: int = 3) -> np.ndarray:
    return offset + np.random.default_rng(seed).normal(size=(runs, tasks))


SEPARATED = (_scores(10.0, 1), _scores(0.0, 2))  # Director ~ 10, DreamerV3 ~ 0


def test_iqm_by_hand():
    """IQM is the mean of the middle half: [1..8] -> mean(3, 4, 5, 6) = 4.5; a 2-D array is pooled over tasks."""
    assert stats.iqm(np.arange(1, 9)) == pytest.approx(4.5)
    assert stats.iqm(np.arange(1, 9).reshape(4, 2)) == pytest.approx(4.5)
    assert stats.iqm([1.0, 2.0, 3.0, 1000.0]) == pytest.approx(2.5)  # the outlier run is trimmed


def test_separated_scores_exclude_zero_and_are_supported():
    """Director 10+noise vs DreamerV3 0+noise (5 runs x 3 tasks): the difference CI excludes 0, P(improvement)'s
    CI lies above 0.5, each agent's IQM CI brackets its IQM, and the verdict is supported (contradicted when the
    claim is that Director's value is lower)."""
    director, dreamer = SEPARATED
    diff = stats.iqm_difference(director, dreamer, reps=REPS)
    assert 0 < diff["low"] <= diff["difference"] <= diff["high"]
    assert diff["difference"] == pytest.approx(stats.iqm(director) - stats.iqm(dreamer))
    poi = stats.probability_of_improvement(director, dreamer, reps=REPS)
    assert poi["low"] > 0.5 and poi["probability"] == pytest.approx(1.0)
    est = stats.interval_estimates({"director": director, "dreamer": dreamer}, reps=REPS)
    for name, s in (("director", director), ("dreamer", dreamer)):
        assert est[name]["iqm"] == pytest.approx(stats.iqm(s))
        assert est[name]["low"] <= est[name]["iqm"] <= est[name]["high"]
    assert est["director"]["low"] > est["dreamer"]["high"]


def test_identical_distributions_include_zero():
    """Two agents drawn from the same distribution: the difference CI includes 0, P(improvement)'s CI includes
    0.5."""
    x, y = _scores(5.0, 3), _scores(5.0, 4)
    diff = stats.iqm_difference(x, y, reps=REPS)
    assert diff["low"] < 0 < diff["high"]
    poi = stats.probability_of_improvement(x, y, reps=REPS)
    assert poi["low"] < 0.5 < poi["high"]
    same = stats.probability_of_improvement(x, x, reps=REPS)
    assert same["probability"] == pytest.approx(0.5)


def test_learned_rule():
    """Runs have learned when their IQM reaches fraction x reference; the reference must be positive."""
    runs = np.array([[40.0], [50.0], [60.0], [1000.0]])  # IQM = 55
    assert stats.learned(runs, reference=500.0, fraction=0.1)
    assert not stats.learned(runs, reference=1000.0, fraction=0.1)
    assert stats.learned(runs, reference=550.0, fraction=0.1)  # exactly at the bar counts
    with pytest.raises(ValueError, match="reference"):
        stats.learned(runs, reference=0.0, fraction=0.1)
    with pytest.raises(ValueError, match="fraction"):
        stats.learned(runs, reference=100.0, fraction=1.5)


def test_deterministic_under_seed_and_leaves_global_rng_alone():
    """Same seed -> identical intervals; another seed -> different bootstrap draws; numpy's global RNG state is
    restored afterwards."""
    x, y = _scores(1.0, 5), _scores(0.0, 6)
    state = np.random.get_state()
    a = stats.iqm_difference(x, y, reps=REPS, seed=7)
    assert np.random.get_state()[1].tolist() == state[1].tolist()
    assert stats.iqm_difference(x, y, reps=REPS, seed=7) == a
    assert stats.iqm_difference(x, y, reps=REPS, seed=8) != a
    e = stats.interval_estimates({"x": x}, reps=REPS, seed=3)
    assert stats.interval_estimates({"x": x}, reps=REPS, seed=3) == e


def test_performance_profile_extremes():
    """The profile is 1 (CI [1, 1]) at a threshold below every score and 0 above every score, for each agent."""
    director, dreamer = SEPARATED
    prof = stats.performance_profile({"director": director, "dreamer": dreamer}, [-100.0, 5.0, 100.0], reps=200)
    np.testing.assert_array_equal(prof["director"]["fraction"], [1.0, 1.0, 0.0])
    np.testing.assert_array_equal(prof["dreamer"]["fraction"], [1.0, 0.0, 0.0])
    for p in prof.values():
        np.testing.assert_array_equal(p["low"][[0, 2]], [1.0, 0.0])
        np.testing.assert_array_equal(p["high"][[0, 2]], [1.0, 0.0])


def test_mismatched_tasks_rejected():
    """Comparisons need the same task columns for both agents."""
    with pytest.raises(ValueError, match="task columns"):
        stats.iqm_difference(np.zeros((3, 2)), np.zeros((3, 3)), reps=10)

"""Interval estimates for comparing two agents (Director vs DreamerV3) or two variants, and a verdict per claim.

Scores are arrays of shape (runs, tasks): one row per independent run (seed), one column per task, speed or
maze that is pooled into the aggregate (a 1-D array is one column). Following rliable (Agarwal et al. 2021):

    IQM                 the interquartile mean: the mean of the middle 50% of all runs x tasks scores (25% trimmed
                        from each end), less sensitive to outlier runs than the mean, less noisy than the median.
    95% CI              a percentile stratified bootstrap: each task column is a stratum, and runs are resampled
                        with replacement within each column (rliable's `StratifiedBootstrap`), so the interval is
                        over seeds with the set of tasks/speeds held fixed. Two agents are resampled independently.
                        With few runs (3-5 seeds) the intervals are wide and a bootstrap cannot reach values the
                        runs never showed; a narrow-looking interval from 3 seeds is still weak evidence.
    P(X > Y)            the probability of improvement: for each task, the probability that a random run of X
                        scores higher than a random run of Y (ties count half; Mann-Whitney U / (n_x n_y)), averaged
                        over tasks; 0.5 means no difference.
    performance profile the fraction of all runs x tasks scores above each threshold tau.

`verdict` turns the interval on Director - DreamerV3 into "supported", "contradicted" or "inconclusive at this
scale"; `claim_row` and `findings_markdown` build a findings table. Every estimator takes `seed` and is
deterministic under it (rliable draws from numpy's global generator; it is seeded here and restored after).
"""

from __future__ import annotations

import contextlib

import numpy as np
from rliable import library as rly
from rliable import metrics

SUPPORTED = "supported"
CONTRADICTED = "contradicted"
INCONCLUSIVE = "inconclusive at this scale"
VERDICTS = (SUPPORTED, CONTRADICTED, INCONCLUSIVE)


@contextlib.contextmanager
def _seeded(seed: int):
    """Seed numpy's global generator (which rliable's bootstraps draw from) and restore its state afterwards."""
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(state)


def _as_matrix(scores) -> np.ndarray:
    """(runs, tasks) float array; a 1-D array of runs is one task."""
    a = np.asarray(scores, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise ValueError(f"scores must have shape (runs, tasks) or (runs,), got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError("scores contain NaN or inf")
    return a


def _interval(point, ci) -> dict:
    ci = np.asarray(ci, dtype=np.float64).reshape(2, -1)
    return {"low": float(ci[0, 0]), "high": float(ci[1, 0]), "point": float(np.asarray(point).reshape(-1)[0])}


def iqm(scores) -> float:
    """Interquartile mean over all runs x tasks: the mean after trimming 25% from each end (rliable's IQM)."""
    return float(metrics.aggregate_iqm(_as_matrix(scores)))


def interval_estimates(scores_by_agent: dict, reps: int = 2000, seed: int = 0) -> dict:
    """IQM and its 95% stratified-bootstrap CI per agent: {agent: {"iqm": x, "low": l, "high": h}}.

    `scores_by_agent[agent]` has shape (runs, tasks); columns (tasks, or speeds when speeds are pooled) are the
    strata and runs are resampled within each. With few runs the interval is wide.
    """
    data = {name: _as_matrix(s) for name, s in scores_by_agent.items()}
    with _seeded(seed):
        points, cis = rly.get_interval_estimates(data, lambda x: np.array([metrics.aggregate_iqm(x)]), reps=reps)
    out = {}
    for name in data:
        iv = _interval(points[name], cis[name])
        out[name] = {"iqm": iv["point"], "low": iv["low"], "high": iv["high"]}
    return out


def iqm_difference(x, y, reps: int = 2000, seed: int = 0) -> dict:
    """IQM(x) - IQM(y) with a 95% CI: {"difference", "low", "high"}.

    x and y are (runs, tasks) with the same task columns (run counts may differ); each is resampled independently,
    runs within each task column (rliable's `StratifiedIndependentBootstrap`).
    """
    x, y = _as_matrix(x), _as_matrix(y)
    _same_tasks(x, y)
    diff = lambda a, b: np.array([metrics.aggregate_iqm(a) - metrics.aggregate_iqm(b)])  # noqa: E731
    with _seeded(seed):
        points, cis = rly.get_interval_estimates({"d": [x, y]}, diff, reps=reps)
    iv = _interval(points["d"], cis["d"])
    return {"difference": iv["point"], "low": iv["low"], "high": iv["high"]}


def probability_of_improvement(x, y, reps: int = 2000, seed: int = 0) -> dict:
    """P(X > Y), averaged over task columns, with a 95% CI: {"probability", "low", "high"}.

    Ties count half, so identical runs give 0.5. Same resampling as `iqm_difference` (rliable's
    `metrics.probability_of_improvement` through `get_interval_estimates` on the pair).
    """
    x, y = _as_matrix(x), _as_matrix(y)
    _same_tasks(x, y)
    poi = lambda a, b: np.array([metrics.probability_of_improvement(a, b)])  # noqa: E731
    with _seeded(seed):
        points, cis = rly.get_interval_estimates({"p": [x, y]}, poi, reps=reps)
    iv = _interval(points["p"], cis["p"])
    return {"probability": iv["point"], "low": iv["low"], "high": iv["high"]}


def performance_profile(scores_by_agent: dict, thresholds, reps: int = 2000, seed: int = 0) -> dict:
    """Fraction of runs x tasks scores strictly above each threshold, with 95% CIs (rliable's score distribution).

    Returns {agent: {"thresholds": tau (n,), "fraction": (n,), "low": (n,), "high": (n,)}} as numpy arrays.
    """
    data = {name: _as_matrix(s) for name, s in scores_by_agent.items()}
    tau = np.asarray(thresholds, dtype=np.float64).reshape(-1)
    with _seeded(seed):
        profiles, cis = rly.create_performance_profile(data, tau, reps=reps)
    return {name: {"thresholds": tau, "fraction": np.asarray(profiles[name], dtype=np.float64),
                   "low": np.asarray(cis[name][0], dtype=np.float64),
                   "high": np.asarray(cis[name][1], dtype=np.float64)} for name in data}


def learned(returns, reference: float, fraction: float) -> bool:
    """Whether runs count as having learned: IQM(returns) >= fraction * reference.

    `reference` is a positive return stated by the caller (a published score for the task, or the random-policy
    return times a factor), and `fraction` in (0, 1] is how much of it the runs must reach, e.g. 0.1. Below that,
    differences between agents are differences between untrained policies and any verdict is inconclusive.
    """
    if not reference > 0:
        raise ValueError(f"reference={reference!r} must be a positive return")
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction={fraction!r} must lie in (0, 1]")
    return iqm(returns) >= fraction * reference


def verdict(difference_ci, higher_is_better: bool, learned: bool) -> str:
    """One of "supported", "contradicted", "inconclusive at this scale" for a claim about Director vs DreamerV3.

    `difference_ci` = (low, high), the 95% CI of Director - DreamerV3 on the measure. The claim is that Director
    does better: a higher value when `higher_is_better`, a lower one otherwise (errors, steps to a threshold).
    supported:     the runs learned and the CI excludes 0 on the claimed side (low > 0, or high < 0);
    contradicted:  the runs learned and the CI excludes 0 on the other side;
    inconclusive:  the CI includes 0 (an endpoint at 0 counts as including it), or the runs did not learn.
    """
    low, high = (float(v) for v in difference_ci)
    if not learned or not (np.isfinite(low) and np.isfinite(high)):
        return INCONCLUSIVE
    if low > high:
        raise ValueError(f"difference_ci={difference_ci!r} has low > high")
    if low > 0:
        return SUPPORTED if higher_is_better else CONTRADICTED
    if high < 0:
        return CONTRADICTED if higher_is_better else SUPPORTED
    return INCONCLUSIVE


def claim_row(claim: str, measure: str, director_scores, dreamer_scores, higher_is_better: bool, learned: bool,
              scale: str, reps: int = 2000, seed: int = 0) -> dict:
    """One findings-table row: both IQMs, their difference and P(Director better), each with a 95% CI.

    P(Director better) is the probability that a Director run scores better than a DreamerV3 run on the measure:
    P(Director > DreamerV3) where higher is better, P(Director < DreamerV3) where lower is (steps, horizons, errors).

    Scores are (runs, tasks) with the same task columns. `learned` is the caller's judgement (see `learned()`);
    `scale` says what the evidence is (e.g. "3 seeds x 2 speeds, 100k steps"). Interval values are dicts with
    "point", "low", "high". With a single run for either agent the bootstrap has nothing to resample: the row keeps
    the point values, the table says "no CI", and the verdict is "inconclusive at this scale".
    """
    runs = {"director": _as_matrix(director_scores).shape[0], "dreamer": _as_matrix(dreamer_scores).shape[0]}
    est = interval_estimates({"director": director_scores, "dreamer": dreamer_scores}, reps=reps, seed=seed)
    diff = iqm_difference(director_scores, dreamer_scores, reps=reps, seed=seed)
    better = (director_scores, dreamer_scores) if higher_is_better else (dreamer_scores, director_scores)
    poi = probability_of_improvement(*better, reps=reps, seed=seed)
    return {
        "claim": claim,
        "measure": measure,
        "director_iqm": {"point": est["director"]["iqm"], "low": est["director"]["low"],
                         "high": est["director"]["high"]},
        "dreamer_iqm": {"point": est["dreamer"]["iqm"], "low": est["dreamer"]["low"], "high": est["dreamer"]["high"]},
        "difference": {"point": diff["difference"], "low": diff["low"], "high": diff["high"]},
        "p_director_better": {"point": poi["probability"], "low": poi["low"], "high": poi["high"]},
        "higher_is_better": bool(higher_is_better),
        "learned": bool(learned),
        # One run per agent has no spread to resample: its "interval" is a point, so no verdict either.
        "verdict": verdict((diff["low"], diff["high"]), higher_is_better, learned and min(runs.values()) >= 2),
        "scale": scale,
        "runs": runs,
    }


def _num(v: float) -> str:
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _ci(iv: dict, runs: int = 2) -> str:
    if runs < 2:
        return f"{_num(iv['point'])} (1 run: no CI)"
    return f"{_num(iv['point'])} [{_num(iv['low'])}, {_num(iv['high'])}]"


def findings_markdown(rows) -> str:
    """A markdown table of `claim_row` rows (values are point [95% CI low, high])."""
    head = ["claim", "measure", "Director IQM", "DreamerV3 IQM", "Director - DreamerV3", "P(Director better)",
            "verdict", "scale"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        runs = r.get("runs", {"director": 2, "dreamer": 2})
        both = min(runs.values())
        cells = [r["claim"], r["measure"], _ci(r["director_iqm"], runs["director"]), _ci(r["dreamer_iqm"], runs["dreamer"]),
                 _ci(r["difference"], both), _ci(r["p_director_better"], both), r["verdict"], r["scale"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def _same_tasks(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} task columns and y has {y.shape[1]}; they must match")

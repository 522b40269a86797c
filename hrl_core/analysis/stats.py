"""Statistics for the study's claims: tests across seeds that decide them, and rliable's interval estimates that
describe them.

Deciding a claim (Director vs DreamerV3 on one measure). The seed is the unit: each run becomes one number (its
mean over speeds, mazes and episodes, `per_seed`) before anything is compared, since one trained network fills a
whole row of speeds.

    test        a two-sided exact permutation test of the difference in means of the per-seed values
                (`permutation_p`; exact up to 8 vs 8 runs), Holm-corrected within the row's family (`decide`:
                "primary" or "secondary", hrl_core/claims.py), never across families.
    verdict     "supported" / "contradicted" when the corrected p < 0.05 and both agents passed the gate applied
                before the treatment; "untestable with n = N" when even complete separation on every row of its
                family could not pass Holm (5 vs 5: smallest p 2/252, so at most 6 rows a family); "not learned
                (...)" when an agent failed the gate.
    effect      the difference of means with the exact permutation-inverted interval for a shift (`shift_interval`:
                every shift the permutation test does not reject); its coverage is the test's, 95.2% at 5 vs 5 and
                unbounded when the test cannot reject at all (n = 2 vs 2).
    censored    a measure some runs never reach within their budget (steps to a threshold): those runs are
                censored, known only to lie above the budget, and neither scored as the budget nor dropped. The test
                is then the same exact permutation test on the pooled ranks (censored runs tie above every reached
                one; the exact Mann-Whitney test), and the effect is the probability that a Director run does
                better than a DreamerV3 run (ties half), bootstrapped over seeds (`superiority_interval`).

Describing results (figures). Scores are arrays of shape (runs, tasks): one row per run, one column per task, speed
or maze (a 1-D array is one column). Following rliable (Agarwal et al. 2021):

    IQM                 the interquartile mean of all runs x tasks scores (25% trimmed from each end).
    95% CI              a percentile stratified bootstrap (runs resampled within each task column). Its coverage
                        rests on many separately trained tasks: over the speeds one network was evaluated on it is
                        pseudo-replication, so it describes, it does not decide.
    P(X > Y)            the probability of improvement (Mann-Whitney U / (n_x n_y), averaged over tasks).
    performance profile the fraction of all runs x tasks scores above each threshold tau.

Every estimator takes `seed` and is deterministic under it (rliable draws from numpy's global generator; it is
seeded here and restored after).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math

import numpy as np
import scipy.stats
from rliable import library as rly
from rliable import metrics

from hrl_core.validation import check_choice, check_text

ALPHA = 0.05
SUPPORTED = "supported"
CONTRADICTED = "contradicted"
NOT_SIGNIFICANT = "no significant difference"
UNTESTABLE = "untestable"
NOT_LEARNED = "not learned"
PRIMARY, SECONDARY = "primary", "secondary"  # the families Holm corrects within (hrl_core/claims.py)


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


def per_seed(scores) -> np.ndarray:
    """One number per run: the mean of its row (speeds, mazes, episodes) of a (runs, tasks) score matrix. The seed is
    the unit of every test: one trained network fills a whole row, so its columns are not independent samples."""
    return _as_matrix(scores).mean(1)


def smallest_p(n_x: int, n_y: int) -> float:
    """The smallest two-sided p an exact permutation test of n_x against n_y runs can give: a complete separation,
    2 / C(n_x + n_y, n_x) (3 vs 3: 0.1, 4 vs 4: 0.029, 5 vs 5: 0.0079)."""
    return min(1.0, 2.0 / math.comb(n_x + n_y, n_x))


def permutation_p(x, y, resamples: int = 20_000, seed: int = 0) -> float:
    """Two-sided permutation test of the difference in means between two groups of per-seed values: exact (every
    arrangement of the group labels) whenever there are at most `resamples` arrangements (up to 8 vs 8), else a
    Monte Carlo p from `resamples` random ones drawn under `seed`, the observed one counted among them. p is twice
    the smaller tail, at most 1 (as scipy.stats.permutation_test's two-sided p)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if len(x) < 1 or len(y) < 1:
        raise ValueError(f"permutation_p needs at least one run per group, got {len(x)} and {len(y)}")
    return _tails(_weights(len(x), len(y), resamples, seed) @ np.concatenate([x, y]), x.mean() - y.mean())


def _tails(stats_: np.ndarray, observed: float) -> float:
    """Two-sided p of `observed` among arrangement statistics `stats_` (ties within float rounding count)."""
    tol = 1e-9 * max(1.0, float(np.abs(stats_).max()))
    return float(min(1.0, 2 * min(np.mean(stats_ >= observed - tol), np.mean(stats_ <= observed + tol))))


def _bootstrap_interval(point: float, boot: np.ndarray, runs: int, level: float, prefix: str = "") -> dict:
    """{"point", "low", "high", "label"} from bootstrap replicates: the percentile interval, labelled "range of N
    seeds" below 5 runs a group, where it is little more than the range of the seeds' values."""
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(boot, [tail, 100 - tail])
    span = f"{level:.0%} bootstrap over seeds" if runs >= 5 else f"range of {runs} seed{'s' if runs != 1 else ''}"
    return {"point": float(point), "low": float(low), "high": float(high), "label": prefix + span}


@functools.lru_cache(maxsize=64)
def _weights(n_x: int, n_y: int, resamples: int = 20_000, seed: int = 0) -> np.ndarray:
    """(arrangements, n_x + n_y) weights whose product with the pooled values (x then y) is each arrangement's
    difference in means: every one of the C(n_x + n_y, n_x) arrangements when there are at most `resamples` (up to
    8 vs 8), else the observed one plus `resamples` random ones drawn under `seed`. Cached: a simulation of many
    studies reuses them."""
    import itertools

    n = n_x + n_y
    if math.comb(n, n_x) <= resamples:
        masks = np.zeros((math.comb(n, n_x), n), bool)
        for i, chosen in enumerate(itertools.combinations(range(n), n_x)):
            masks[i, list(chosen)] = True
    else:
        order = np.argsort(np.random.default_rng(seed).random((resamples, n)), axis=1)[:, :n_x]
        masks = np.zeros((resamples + 1, n), bool)
        masks[0, :n_x] = True
        np.put_along_axis(masks[1:], order, True, axis=1)
    weights = masks / n_x - ~masks / n_y
    weights.setflags(write=False)
    return weights


def shift_interval(x, y, level: float = 0.95, seed: int = 0) -> dict:
    """mean(x) - mean(y) with the interval of every shift d for which the two-sided permutation test of x - d
    against y does not reject at 1 - level (the test inverted: its coverage under a shift is the test's, at least
    `level` and 95.2% at 5 vs 5). {"point", "low", "high", "label"}; low and high are None (unbounded) when so few
    runs can never reject (2 vs 2 at 95%)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    point = float(x.mean() - y.mean())
    label = f"{level:.0%} permutation interval over seeds"
    if smallest_p(len(x), len(y)) >= 1 - level:
        return {"point": point, "low": None, "high": None, "label": label + " (unbounded at this n)"}
    weights = _weights(len(x), len(y), seed=seed)

    def p_value(d):  # the permutation test of x - d against y
        return _tails(weights @ np.concatenate([x - d, y]), point - d)

    spread = max(np.ptp(np.concatenate([x, y])), 1e-12)

    def edge(sign):  # bisection between an accepted shift (the point) and a rejected one
        inside, outside = point, point + sign * spread
        while p_value(outside) >= 1 - level:
            inside, outside = outside, outside + sign * spread
        for _ in range(60):
            mid = (inside + outside) / 2
            inside, outside = (mid, outside) if p_value(mid) >= 1 - level else (inside, mid)
        return float(inside)

    return {"point": point, "low": edge(-1.0), "high": edge(1.0), "label": label}


def _ranks(x, y) -> tuple[np.ndarray, np.ndarray]:
    """Pooled ranks of two groups (ties averaged; +inf, a censored run, ties above every finite value)."""
    pooled = scipy.stats.rankdata(np.concatenate([x, y]))
    return pooled[:len(x)], pooled[len(x):]


def superiority_interval(x, y, lower_is_better: bool, reps: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """P(a run of x does better than a run of y), ties counted half (the Mann-Whitney U / (n_x n_y)), with a
    percentile bootstrap over seeds: {"point", "low", "high", "label"}. Works on censored values (+inf): two
    censored runs tie, a reached run beats a censored one. 0.5 is no difference."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    sign = -1.0 if lower_is_better else 1.0

    def prob(a, b):  # a: (..., n_x), b: (..., n_y)
        with np.errstate(invalid="ignore"):  # inf - inf: both censored, a tie
            d = sign * (a[..., :, None] - b[..., None, :])
        d = np.where(np.isnan(d), 0.0, d)
        return ((d > 0) + 0.5 * (d == 0)).mean((-1, -2))

    rng = np.random.default_rng(seed)
    boot = prob(rng.choice(x, (reps, len(x))), rng.choice(y, (reps, len(y))))
    return _bootstrap_interval(prob(x, y), boot, min(len(x), len(y)), level, "P(Director better), ")


def mean_interval(x, reps: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """One group's mean over seeds with a percentile bootstrap interval (its runs resampled with replacement):
    {"point", "low", "high", "label"}; below 5 runs, about their range. A gate passes on this interval, not on the
    point: one lucky seed does not make an agent learned."""
    x = np.asarray(x, np.float64).reshape(-1)
    if len(x) < 1 or not np.all(np.isfinite(x)):
        raise ValueError(f"mean_interval needs one or more finite values, got {x.tolist()}")
    boot = np.random.default_rng(seed).choice(x, (reps, len(x))).mean(1)
    return _bootstrap_interval(x.mean(), boot, len(x), level)


def seed_interval(x, y, reps: int = 2000, seed: int = 0, level: float = 0.95) -> dict:
    """mean(x) - mean(y) with a percentile bootstrap interval over seeds (each group's runs resampled with
    replacement): {"point", "low", "high", "label"}. Below 5 runs a group the interval is little more than the range
    of the seeds' values, and its label says so."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    rng = np.random.default_rng(seed)
    boot = (rng.choice(x, (reps, len(x))).mean(1) - rng.choice(y, (reps, len(y))).mean(1))
    return _bootstrap_interval(x.mean() - y.mean(), boot, min(len(x), len(y)), level)


@dataclasses.dataclass(frozen=True)
class Claim:
    """What one findings row tests, fixed before the runs: the claim and its measure in words; `higher_is_better`,
    the claim's direction (Director does better means a higher value, or a lower one: errors, steps to a threshold);
    `censored`, whether the scores are one value per run with +inf for a run censored at its budget (see the
    module's docstring: the test is on ranks and the effect is P(Director better)); `hierarchy`, the hierarchical
    agent compared with DreamerV3, whose values are the row's "director" entry whichever it is, so every row reads
    the same way; and `family`, the Holm family the row is decided in (`decide`)."""

    claim: str
    measure: str
    higher_is_better: bool = True
    censored: bool = False
    hierarchy: str = "director"
    family: str = SECONDARY

    def __post_init__(self):
        for name in ("claim", "measure", "hierarchy"):
            check_text(name, getattr(self, name))
        for name in ("higher_is_better", "censored"):
            check_choice(name, getattr(self, name), (True, False))
        check_choice("family", self.family, (PRIMARY, SECONDARY))


def claim_row(spec: Claim, director_scores, dreamer_scores, learned: bool, scale: str, reps: int = 2000,
              seed: int = 0, gate: str = "") -> dict:
    """One findings-table row for `spec`: each run's value (its mean over the columns of its score row), the
    difference of the agents' means with an interval over seeds, and the raw two-sided permutation p. The verdict is
    decided together with the other rows of its family (`decide`: Holm's correction across them); the row holds the
    verdict it would get alone (uncorrected).

    Scores are (runs, tasks) or (runs,). `learned` is the pre-treatment gate: both agents passed the skill the claim
    starts from (the caller's rule; `gate` says in words which rule, or who failed it). `scale` names the runs'
    scale (preset and seeds) for the table."""
    higher_is_better, censored = spec.higher_is_better, spec.censored
    if censored:
        director, dreamer = (np.asarray(v, np.float64).reshape(-1) for v in (director_scores, dreamer_scores))
        both = np.concatenate([director, dreamer])
        if np.isnan(both).any() or np.isneginf(both).any():
            raise ValueError("censored scores must be numbers, or +inf for a run censored at its budget")
        rank_director, rank_dreamer = _ranks(director, dreamer)
        p = permutation_p(rank_director, rank_dreamer, seed=seed)
        effect = superiority_interval(director, dreamer, not higher_is_better, reps, seed)
        better = effect["point"] > 0.5
        listed = {"director": [None if np.isinf(v) else float(v) for v in director],
                  "dreamer": [None if np.isinf(v) else float(v) for v in dreamer]}
    else:
        director, dreamer = per_seed(director_scores), per_seed(dreamer_scores)
        p = permutation_p(director, dreamer, seed=seed)
        effect = shift_interval(director, dreamer, seed=seed)
        better = (effect["point"] > 0) == bool(higher_is_better)
        listed = {"director": director.tolist(), "dreamer": dreamer.tolist()}
    row = {"claim": spec.claim, "measure": spec.measure, **listed,
           "runs": {"director": len(director), "dreamer": len(dreamer)}, "difference": effect, "p": p,
           "smallest_p": smallest_p(len(director), len(dreamer)), "higher_is_better": bool(higher_is_better),
           "director_better": bool(better), "censored": bool(censored), "learned": bool(learned), "gate": gate,
           "scale": scale, "hierarchy": spec.hierarchy, "family": spec.family}
    return decide([row])[0]


def holm(p_values) -> list[float]:
    """Holm's step-down adjusted p-values, in the given order: the i-th smallest times (m - i + 1), made monotone,
    at most 1. Written out (checked against statsmodels' multipletests in the tests) because multipletests runs a
    garbage collection on every call, which costs more than a simulated study's tests."""
    p = np.asarray(list(p_values), np.float64)
    order = np.argsort(p, kind="stable")
    adjusted = np.minimum(1.0, np.maximum.accumulate(p[order] * (len(p) - np.arange(len(p)))))
    out = np.empty_like(p)
    out[order] = adjusted
    return out.tolist()


def testable(rows: list[dict], alpha: float = ALPHA) -> list[int]:
    """Indices of the gated rows of one family that could pass Holm at all: with every row at its smallest possible
    p (complete separation; Holm's adjusted p only grows with any p), a row whose adjusted p is still >= alpha can
    never be decided. Rows that cannot are left out of the family and the rest tried again, since the criterion
    reads only seed counts and gates, never the results."""
    candidates = [i for i, r in enumerate(rows) if r["learned"]]
    while True:
        best = holm([rows[i]["smallest_p"] for i in candidates])
        keep = [i for i, b in zip(candidates, best) if b < alpha]
        if keep == candidates:
            return candidates
        candidates = keep


def decide(rows: list[dict], alpha: float = ALPHA) -> list[dict]:
    """Verdicts for rows tested together: Holm's step-down correction within each family (a row's "family",
    primary by default; rows of different families never correct each other), over the rows of the family that
    are tested, i.e. whose agents passed the gate and which could pass Holm at all (`testable`).

    - "supported" / "contradicted": Holm-corrected p < alpha, on the claim's side or the other;
    - "no significant difference": tested, corrected p >= alpha;
    - "untestable with n = N" (or N vs M): even complete separation of every row of its family cannot pass Holm;
    - "not learned (...)": an agent failed the pre-treatment gate; a finding about that agent, not a test.
    Returns new rows with "p_holm" (None where untested), "family_size" (rows tested in the family) and
    "verdict"."""
    rows = [dict(r) for r in rows]
    for family in dict.fromkeys(r.get("family", PRIMARY) for r in rows):
        members = [r for r in rows if r.get("family", PRIMARY) == family]
        tested = testable(members, alpha)
        gated = sum(bool(r["learned"]) for r in members)
        corrected = dict(zip(tested, holm([members[i]["p"] for i in tested])))
        for i, r in enumerate(members):
            r["p_holm"], r["family_size"] = corrected.get(i), len(tested)
            n = r["runs"]
            if not r["learned"]:
                r["verdict"] = f"{NOT_LEARNED} ({r['gate']})" if r.get("gate") else NOT_LEARNED
            elif i not in corrected:
                alone = r["smallest_p"] < alpha  # decidable alone, but not in its family
                why = f", too large for Holm over the {gated} rows of its family" if alone else ""
                r["verdict"] = untestable_text(r, why)
            elif corrected[i] < alpha:
                better = r.get("director_better", (r["difference"]["point"] > 0) == r["higher_is_better"])
                r["verdict"] = SUPPORTED if better else CONTRADICTED
            else:
                r["verdict"] = NOT_SIGNIFICANT
    return rows


def untestable_text(row: dict, why: str = "") -> str:
    """"untestable with n = N (smallest possible p = ...)" for a row whose seed counts cannot reach p < alpha."""
    n = row["runs"]
    counts = f"{n['director']}" if n["director"] == n["dreamer"] else f"{n['director']} vs {n['dreamer']}"
    return f"{UNTESTABLE} with n = {counts} (smallest possible p = {row['smallest_p']:.2g}{why})"


def _num(v: float | None, none: str = "censored") -> str:
    if v is None:
        return none
    return f"{v:.0f}" if abs(v) >= 100 else f"{v:.3g}"


def findings_markdown(rows, complete: bool = True, gates: dict | None = None) -> str:
    """A markdown table of claim rows, decided together (Holm within each family of exactly these rows). With
    `complete` False (a notebook's own rows, not the whole study), the verdicts are marked uncorrected: the study's
    are the ones notebook 07 decides over every row of each family.

    Cells stay short: a failed gate's full text is a numbered note under the table ("not learned (gate 1)"), and a
    row whose seed counts could never decide it says so beside the gate. `gates` (gate text -> number) numbers the
    notes across several tables of one document."""
    head = ["claim", "family", "hierarchy", "measure", "hierarchy per seed", "DreamerV3 per seed",
            "effect [interval]", "p (Holm)", "verdict", "scale"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    gates = {} if gates is None else gates
    used = []
    for r in decide(rows):
        d = r["difference"]
        p = f"{r['p']:.2g}" + (f" ({r['p_holm']:.2g})" if r["p_holm"] is not None else " (not tested)")
        hierarchy = r.get("hierarchy", "director")
        verdict = r["verdict"]
        if not r["learned"] and r.get("gate"):
            number = gates.setdefault(r["gate"], len(gates) + 1)
            used += [number] if number not in used else []
            verdict = f"{NOT_LEARNED} (gate {number})"
            if r["smallest_p"] >= ALPHA:
                verdict += f"; {untestable_text(r)}"
        verdict = verdict if complete else f"{verdict} (uncorrected, see 07)"
        cells = [r["claim"], r.get("family", PRIMARY), hierarchy, r["measure"],
                 ", ".join(_num(v) for v in r["director"]), ", ".join(_num(v) for v in r["dreamer"]),
                 ("" if r.get("censored") else f"{hierarchy} - DreamerV3 ")
                 + f"{_num(d['point'])} [{_num(d['low'], '-inf')}, {_num(d['high'], 'inf')}] ({d['label']})", p,
                 verdict, r["scale"]]
        lines.append("| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |")
    by_number = {n: text for text, n in gates.items()}
    notes = [f"- gate {n}: {by_number[n]}" for n in sorted(used)]
    return "\n".join(lines) + "\n" + ("\n" + "\n".join(notes) + "\n" if notes else "")


def _same_tasks(x: np.ndarray, y: np.ndarray) -> None:
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has {x.shape[1]} task columns and y has {y.shape[1]}; they must match")

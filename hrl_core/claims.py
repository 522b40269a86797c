"""The study's claims as arithmetic on measured rows: per-run scores, the gates that come before a treatment, claim
rows and the pre-registered families they are decided in. Nothing here trains, evaluates or reads a run
(hrl_core/study.py does); every function takes rows and returns numbers, so each claim can be checked by hand and
simulated (tests/test_calibration.py).

Families (FAMILIES), fixed before the five-seed runs. Holm's correction runs within a family, never across:

    primary     one row per claim of the study, Director against DreamerV3, at most 5 rows so that 5 vs 5 runs can
                reach a Holm-adjusted p < 0.05 (complete separation: 5 x 2/252 = 0.040):
                (1) training tasks: per-run performance at the budget on the speed task and on the source maze,
                    against the random policy on the same episodes; no gate (it is the skill itself);
                (2a) held-out speeds: per-run return at the held-out speeds / the random policy's on the same
                     episodes; gated on speed tracking at the training speeds;
                (2b) novel maze, zero shot: per-run success on the novel maze before fine-tuning minus the random
                     policy's; gated on the source maze being learned;
                (3) fine-tuning: Director WM+M (worker frozen) against DreamerV3 all, steps to a threshold read
                    from evaluation curves; gated on the source maze.
    secondary   everything else (director+wr, the horizon and composition mechanisms, retention, second
                measures), with its own Holm correction.

A row is "untestable with n = N" when even complete separation on every row of its family could not pass Holm
(`stats.decide`); a notebook that shows its rows alone labels them "uncorrected, see 07".
"""

from __future__ import annotations

import numpy as np

from hrl_core.analysis import stats
from hrl_core.config import DIRECTORS

MIN_RANDOM_SUCCESS = 0.05  # the smallest random return a ratio is taken against (a maze's random success can be 0)
MIN_TRACKING_SLOPE = 0.5  # m/s of achieved speed per m/s of target: the gate's slope bound (its interval above it)
MAX_TRACKING_ERROR = 0.5  # the gate's mean relative speed error bound (its interval below it)

# The primary family, pre-registered: row id -> (claim, measure). Director against DreamerV3 only; the fine-tuning
# row compares PRIMARY_FINETUNE's variants. Every other row is secondary.
PRIMARY_ROWS = {
    "1-speed": ("(1) hierarchy performs better on the training tasks", "speed task: return / random return"),
    "1-maze": ("(1) hierarchy performs better on the training tasks", "source maze: success - random success"),
    "2a": ("(2a) hierarchy generalizes to held-out speeds", "held-out return / random return"),
    "2b": ("(2b) hierarchy generalizes to the novel maze zero-shot", "novel-maze success - random success"),
    "3": ("(3) hierarchy adapts with less fine-tuning", "steps to threshold on evaluation curves"),
}
PRIMARY_HIERARCHY = "director"
# The evaluation policy that decides the claims: "train" samples both agents' actions (and Director's codes), the
# policy each was trained and logged with. "eval" compares unlike policies: DreamerV3 sampled against Director's
# worker at its mean action, which in the maze scores below Director's own sampled training episodes.
STUDY_POLICY = "train"
PRIMARY_FINETUNE = ("director: WM+M (worker frozen)", "dreamer: all")


def family(row_id: str | None, hierarchy: str) -> str:
    """The Holm family of a row: primary for a pre-registered row about Director, secondary otherwise."""
    return stats.PRIMARY if row_id in PRIMARY_ROWS and hierarchy == PRIMARY_HIERARCHY else stats.SECONDARY


def alone(rows: list[dict]) -> list[dict]:
    """A notebook's rows as it stores and shows them: each verdict marked uncorrected, since Holm runs over every
    row of a family, across notebooks (07 decides them; findings.collect ignores these verdicts)."""
    return [{**r, "verdict": f"{r['verdict']} (uncorrected, see 07)"} for r in rows]


def _above_random(rows: list[dict], baseline: list[dict], agent: str, split: str, ratio: bool) -> np.ndarray:
    """Per seed: the run's mean over speeds (or its maze) of return / random return (`ratio`) or return - random
    return, the random policy on exactly the same episodes."""
    if ratio:
        return stats.per_seed(normalised_scores(rows, baseline, agent, split))
    random = {(r["seed"], r["split"], r["speed"]): r["mean_return"] for r in baseline}
    mine = [r for r in rows if r["agent"] == agent and r["split"] == split]
    return np.array([np.mean([r["mean_return"] - random[seed, split, r["speed"]] for r in mine if r["seed"] == seed])
                     for seed in sorted({r["seed"] for r in mine})])


def _pair(agents, hierarchy: str) -> None:
    """A clear error, before any lookup, when a claim's agents lack the two it compares."""
    missing = {hierarchy, "dreamer"} - set(agents)
    if missing:
        raise ValueError(f"agents={sorted(set(agents))} is not valid for the claim; it compares {hierarchy} with "
                         f"dreamer (missing: {', '.join(sorted(missing))})")


def training_claim(rows: list[dict], baseline: list[dict], maze: bool, scale: str, reps: int = 2000,
                   hierarchy: str = "director") -> dict:
    """Claim (1) on one training task, at the budget: each run's return / the random policy's on the same episodes
    at the training speeds (speed task), or its success minus the random policy's (maze, `maze`). No gate: the
    skill is what it measures."""
    _pair({r["agent"] for r in rows}, hierarchy)
    row_id = "1-maze" if maze else "1-speed"
    claim, measure = PRIMARY_ROWS[row_id]
    spec = stats.Claim(claim, measure, hierarchy=hierarchy, family=family(row_id, hierarchy))
    return stats.claim_row(spec, _above_random(rows, baseline, hierarchy, "train", not maze),
                           _above_random(rows, baseline, "dreamer", "train", not maze), True, scale, reps)


def heldout_claim(rows: list[dict], baseline: list[dict], check: dict, scale: str, reps: int = 2000,
                  hierarchy: str = "director") -> dict:
    """Claim (2a): each run's return at the held-out speeds / the random policy's on the same episodes, gated on
    speed tracking at the training speeds (`check`)."""
    _pair({r["agent"] for r in rows}, hierarchy)
    check = pair_check(check, hierarchy)
    claim, measure = PRIMARY_ROWS["2a"]
    spec = stats.Claim(claim, measure, hierarchy=hierarchy, family=family("2a", hierarchy))
    return stats.claim_row(spec, _above_random(rows, baseline, hierarchy, "ood", True),
                           _above_random(rows, baseline, "dreamer", "ood", True), check["learned"], scale, reps,
                           gate=gate_text(check))


def zero_shot_claim(rows: list[dict], baseline: list[dict], check: dict, scale: str, reps: int = 2000,
                    hierarchy: str = "director") -> dict:
    """Claim (2b): each source-maze run's success on the novel maze before any fine-tuning, minus the random
    policy's on the same episodes; gated on the source maze being learned (`check`). `rows` and `baseline` are
    novel-maze evaluations (split "train", speed None)."""
    _pair({r["agent"] for r in rows}, hierarchy)
    check = pair_check(check, hierarchy)
    claim, measure = PRIMARY_ROWS["2b"]
    spec = stats.Claim(claim, measure, hierarchy=hierarchy, family=family("2b", hierarchy))
    return stats.claim_row(spec, _above_random(rows, baseline, hierarchy, "train", False),
                           _above_random(rows, baseline, "dreamer", "train", False), check["learned"], scale, reps,
                           gate=gate_text(check))




def normalised_scores(rows: list[dict], baseline: list[dict], agent: str, split: str) -> np.ndarray:
    """Return / random return on the same episodes, as a (seeds, speeds) matrix for the interval estimators."""
    random = {(r["seed"], r["split"], r["speed"]): r["mean_return"] for r in baseline}
    mine = [r for r in rows if r["agent"] == agent and r["split"] == split]
    seeds, speeds = sorted({r["seed"] for r in mine}), sorted({r["speed"] for r in mine})
    value = {(r["seed"], r["speed"]): r["mean_return"] / max(random[(r["seed"], split, r["speed"])], MIN_RANDOM_SUCCESS)
             for r in mine}
    return np.array([[value[(seed, speed)] for speed in speeds] for seed in seeds])


def retention_scores(rows: list[dict], agent: str, inside: bool, baseline: list[dict] | None = None) -> np.ndarray:
    """Per seed: the mean return at the held-out speeds inside the training range (`inside`, interpolation) or
    outside it (extrapolation), divided by the same run's mean return at the training speeds. A ratio within each
    run, so skill at the training speeds, which comes before the treatment, does not count as generalisation. With
    the random policy's rows on the same episodes (`baseline`), both are taken above random, (held-out - random) /
    (train - random): a run that learned nothing then scores about 0, not 1."""
    if baseline is not None:
        random = {(r["seed"], r["split"], r["speed"]): r["mean_return"] for r in baseline}
        rows = [{**r, "mean_return": r["mean_return"] - random[r["seed"], r["split"], r["speed"]]} for r in rows]
    mine = [r for r in rows if r["agent"] == agent]
    train_speeds = [r["speed"] for r in mine if r["split"] == "train"]
    lo, hi = min(train_speeds), max(train_speeds)
    out = []
    for seed in sorted({r["seed"] for r in mine}):
        train = np.mean([r["mean_return"] for r in mine if r["seed"] == seed and r["split"] == "train"])
        held = [r["mean_return"] for r in mine if r["seed"] == seed and r["split"] == "ood"
                and (lo < r["speed"] < hi) == inside]
        out.append(np.mean(held) / (max(train, 1e-6) if baseline is None else np.sign(train) * max(abs(train), 1e-6)))
    return np.array(out)


def speed_tracking(rows: list[dict], max_error: float = MAX_TRACKING_ERROR,
                   min_slope: float = MIN_TRACKING_SLOPE) -> dict:
    """Whether one run tracks the commanded speed, from its training-speed evaluation rows (with each episode's mean
    forward speed): the achieved speed rises with the target (least-squares slope > `min_slope`, 0.5 m/s per m/s)
    and the mean relative error |achieved - target| / target is below `max_error` (half the target by default). Runs
    evaluated before forward speeds were recorded raise: the rule cannot be judged from returns, which a good
    posture earns without walking. {"slope", "relative_error", "tracks"}."""
    rows = [r for r in rows if r["speed"] is not None]
    if len({r["speed"] for r in rows}) < 2:
        raise ValueError("speed_tracking needs evaluations at two or more target speeds")
    missing = [r["speed"] for r in rows if "mean_forward_speed" not in r]
    if missing:
        raise ValueError(f"evaluations at speeds {missing} have no forward speeds (written before they were "
                         "recorded); evaluate the run again (hrl eval)")
    target = np.array([r["speed"] for r in rows])
    achieved = np.array([r["mean_forward_speed"] for r in rows])
    slope = float(np.polyfit(target, achieved, 1)[0])
    error = float(np.mean(np.abs(achieved - target) / target))
    return {"slope": slope, "relative_error": error, "tracks": slope > min_slope and error < max_error}


def generalization_claims(rows: list[dict], check: dict, scale: str, reps: int = 2000,
                          hierarchy: str = "director", baseline: list[dict] | None = None) -> list[dict]:
    """Claim (b) on a speed task, as retention: each run's return at held-out speeds over its own return at the
    training speeds, one row for the held-out speeds inside the training range (interpolation) and one for those
    outside (extrapolation); higher is better. `hierarchy` (director or director+wr) is compared with dreamer. The
    gate is `check`, judged on the training speeds before the held-out ones (for walker_speed the speed-tracking rule,
    `tracking_from_rows`), for these two agents (`pair_check`). Secondary rows (the primary held-out row is
    `heldout_claim`); with `baseline` (the random policy on the same episodes) retention is taken above random."""
    _pair({r["agent"] for r in rows}, hierarchy)
    check = pair_check(check, hierarchy)
    train = [r["speed"] for r in rows if r["split"] == "train"]
    claims = []
    for inside, kind in ((True, "interpolation"), (False, "extrapolation")):
        if not any(r["split"] == "ood" and (min(train) < r["speed"] < max(train)) == inside for r in rows):
            continue
        spec = stats.Claim(f"(b) hierarchy generalizes to held-out speeds ({kind})",
                           "held-out / own training-speed return" + (" (above random)" if baseline else ""),
                           hierarchy=hierarchy)
        claims.append(stats.claim_row(spec, retention_scores(rows, hierarchy, inside, baseline),
                                      retention_scores(rows, "dreamer", inside, baseline), check["learned"], scale,
                                      reps, gate=gate_text(check)))
    return claims


def generalization_summary(rows: list[dict]) -> dict:
    """Per agent: mean return over training speeds, over held-out speeds, and their ratio."""
    summary = {}
    for agent in sorted({r["agent"] for r in rows}):
        means = {split: float(np.mean([r["mean_return"] for r in rows if r["agent"] == agent and r["split"] == split]))
                 for split in ("train", "ood")}
        means["ood_over_train"] = means["ood"] / means["train"] if means["train"] else float("nan")
        summary[agent] = means
    return summary


def steps_to_threshold(records: list[dict], threshold: float, metric: str = "episode/return", smooth: int = 3):
    """First logged step at which the running mean of the last `smooth` values of `metric` reaches `threshold`;
    None when it never does within the run."""
    points = [(r["step"], r[metric]) for r in records if metric in r]
    for i in range(len(points)):
        window = [v for _, v in points[max(0, i - smooth + 1):i + 1]]
        if np.mean(window) >= threshold:
            return int(points[i][0])
    return None


def composition_claims(rows: list[dict], check: dict, scale: str, reps: int = 2000,
                       hierarchy: str = "director") -> list[dict]:
    """The composition claim, two rows on the speed tracking error after switches (m/s, lower is better), one value
    per seed: relative to the same run's error at fixed speeds over the same steps (what switching costs it), and
    relative to the random policy's on the same episodes; `hierarchy` (director or director+wr) against dreamer. The
    gate is `check`, the walker runs' skill at the training speeds (`tracking_check`) for these two agents, judged
    before the composed task: gating on the composed task itself would turn "Director does not compose" into no
    answer."""
    random = {r["seed"]: r["summary"]["error"] for r in rows if r["agent"] == "random"}

    def scores(agent, relative_to):
        mine = sorted((r for r in rows if r["agent"] == agent), key=lambda r: r["seed"])
        return np.array([r["summary"]["error"] / max(r["summary"]["fixed_error"] if relative_to == "fixed"
                                                      else random[r["seed"]], 1e-6) for r in mine])

    _pair({r["agent"] for r in rows}, hierarchy)
    check = pair_check(check, hierarchy)
    learned, gate = check["learned"], gate_text(check)
    return [stats.claim_row(stats.Claim("(b) hierarchy composes skills zero-shot", f"error after switches / {relative}",
                                        higher_is_better=False, hierarchy=hierarchy),
                            scores(hierarchy, kind), scores("dreamer", kind), learned, scale, reps, gate=gate)
            for kind, relative in (("fixed", "own error at fixed speeds"), ("random", "random policy's"))]


def final_return_intervals(rows: list[dict], tasks, agents, reps: int = 2000) -> dict:
    """{task: {agent: {"iqm", "low", "high"}}}: IQM over seeds of the runs' final training returns, 95% CIs
    (runs without a finished episode are left out; an agent with none gets NaN)."""
    out = {}
    for task in tasks:
        scores = {a: np.array([r["final_return"] for r in rows if r["task"] == task and r["agent"] == a
                               and np.isfinite(r["final_return"])]) for a in agents}
        present = {a: s for a, s in scores.items() if len(s)}
        estimates = stats.interval_estimates(present, reps=reps) if present else {}
        out[task] = {a: estimates.get(a, {"iqm": float("nan"), "low": float("nan"), "high": float("nan")})
                     for a in agents}
    return out


def finetune_thresholds(rows: list[dict]) -> dict:
    """{novelty grade: its success threshold} from `finetune_results` rows."""
    return {str(r["novelty"]): r["threshold"] for r in rows}


def steps_summary(rows: list[dict]) -> list[dict]:
    """Per variant and grade: runs, runs that reached the threshold, and the median steps to it over all runs
    (censored runs count as above every budget, so the median is None once half the runs are censored)."""
    out = []
    for key in dict.fromkeys((r["novelty"], r["variant"]) for r in rows):
        mine = [r for r in rows if (r["novelty"], r["variant"]) == key]
        steps = np.array([np.inf if r["steps_to_threshold"] is None else r["steps_to_threshold"] for r in mine])
        median = float(np.median(steps))
        out.append({"novelty": key[0], "variant": key[1], "runs": len(mine), "reached": int(np.isfinite(steps).sum()),
                    "median_steps": median if np.isfinite(median) else None,
                    "budget": max(r["budget"] for r in mine)})
    return out


def variant_intervals(rows: list[dict], measure: str, reps: int = 2000) -> dict:
    """{novelty: {variant: {"iqm", "low", "high"}}}: IQM over seeds of `measure` per variant and grade."""
    out = {}
    for novelty in dict.fromkeys(r["novelty"] for r in rows):
        grade = [r for r in rows if r["novelty"] == novelty]
        scores = {v: np.array([r[measure] for r in grade if r["variant"] == v])
                  for v in dict.fromkeys(r["variant"] for r in grade)}
        out[str(novelty)] = stats.interval_estimates(scores, reps=reps)
    return out


def finetune_claims(rows: list[dict], director_variant: str, dreamer_variant: str, check: dict, scale: str,
                    reps: int = 2000) -> list[dict]:
    """Claim (c), two rows comparing a pre-chosen Director variant with a DreamerV3 one, one value per seed:
    steps to the threshold (lower is better; its median over novelty grades, censored when it never reached it on
    most grades, so the test is on ranks: `stats.Claim(censored=True)`) and the evaluation return after
    fine-tuning (higher is better; its mean over grades). The gate is `check`, the source runs' skill on the source
    maze (`learned_check` on it), judged before fine-tuning: gating on the fine-tuned return would turn "Director
    fails to adapt" into no answer."""
    novelties = list(dict.fromkeys(r["novelty"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})
    compared = [r for r in rows if r["variant"] in (director_variant, dreamer_variant)]
    budgets = sorted({r["budget"] for r in compared})
    if len(budgets) > 1:  # a censored run is known only to lie above its budget: one budget for all
        raise ValueError(f"fine-tuning runs of {director_variant!r} and {dreamer_variant!r} have budgets {budgets}; "
                         "steps to threshold are censored at the budget, which must be the same for every run")
    curves = {r.get("curve", "episode/return") for r in compared}

    def matrix(variant, measure):
        table = {(r["seed"], r["novelty"]): r[measure] for r in rows if r["variant"] == variant}
        missing = [(s, n) for s in seeds for n in novelties if (s, n) not in table]
        if missing:
            raise ValueError(f"variant {variant!r} has no fine-tuning run for (seed, novelty) {missing}")
        return np.array([[np.inf if table[s, n] is None else table[s, n] for n in novelties] for s in seeds],
                        dtype=np.float64)

    def steps(variant):
        return np.median(matrix(variant, "steps_to_threshold"), axis=1)

    hierarchy = director_variant.split(":")[0]  # variants are named "AGENT: what learns"
    check = pair_check(check, hierarchy)
    learned, gate = check["learned"], gate_text(check)
    label = f"{director_variant} vs {dreamer_variant}"
    # Only steps read from evaluation curves are the pre-registered measure; training episodes (runs logged
    # before evaluation curves) are a secondary row.
    on_curves = curves == {"eval/return"}
    primary = on_curves and (director_variant, dreamer_variant) == PRIMARY_FINETUNE
    claim = PRIMARY_ROWS["3"][0]
    where = "evaluation curves" if on_curves else "training episodes"
    steps_claim = stats.Claim(claim, f"steps to threshold on {where} ({label})", higher_is_better=False,
                              censored=True, hierarchy=hierarchy, family=family("3" if primary else None, hierarchy))
    return_claim = stats.Claim(claim, f"return after fine-tuning ({label})", hierarchy=hierarchy)
    return [stats.claim_row(steps_claim, steps(director_variant), steps(dreamer_variant), learned, scale, reps,
                            gate=gate),
            stats.claim_row(return_claim, matrix(director_variant, "evaluation_return"),
                            matrix(dreamer_variant, "evaluation_return"), learned, scale, reps, gate=gate)]


def learned_from_rows(rows: list[dict], baseline: list[dict], agents, learned_factor: float,
                      where: str = "at the training speeds", reps: int = 2000, split: str = "train") -> dict:
    """Every agent learned: its per-seed return / random return (each run's mean over the training speeds or
    mazes, on the rows of `split`; the study gates on "gate", episodes of its own) passes `learned_factor` with its
    interval over seeds, not only with its mean.
    {"learned", "rule", "agents": {agent: interval with "per_seed"}, "failed": {agent: how it failed, in words}}."""
    agents_out, failed = {}, {}
    for agent in agents:
        per_seed = stats.per_seed(normalised_scores(rows, baseline, agent, split))
        iv = {**stats.mean_interval(per_seed, reps), "per_seed": per_seed.tolist()}
        agents_out[agent] = iv
        if iv["low"] < learned_factor:
            failed[agent] = (f"{agent} reached {iv['point']:.2g}x random {where} [{iv['low']:.2g}, {iv['high']:.2g}], "
                             f"below {learned_factor:g}x")
    return {"learned": not failed, "rule": f"return >= {learned_factor:g}x random {where}, interval over seeds",
            "agents": agents_out, "failed": failed}


def tracking_from_rows(rows: list[dict], agents, max_error: float = MAX_TRACKING_ERROR, reps: int = 2000,
                       min_slope: float = MIN_TRACKING_SLOPE, split: str = "train") -> dict:
    """Every agent tracks the commanded speed at the training speeds, the skill the speed claims are about (a good
    posture earns a walker 3x the random return without walking): each run's `speed_tracking` slope and relative
    error, and the agent passes when the interval over seeds of its slope lies above `min_slope` (0.5 m/s per m/s:
    tracking, not a slope of 0.006 that any drift gives) and that of its error below `max_error`. The same bounds
    at every n. `split` as in `learned_from_rows`. Same result shape as `learned_from_rows`."""
    agents_out, failed = {}, {}
    for agent in agents:
        mine = [r for r in rows if r["agent"] == agent and r["split"] == split]
        runs = [speed_tracking([r for r in mine if r["seed"] == seed], max_error, min_slope)
                for seed in sorted({r["seed"] for r in mine})]
        slope = stats.mean_interval([r["slope"] for r in runs], reps)
        error = stats.mean_interval([r["relative_error"] for r in runs], reps)
        agents_out[agent] = {"slope": slope, "relative_error": error, "per_seed": runs}
        if not (slope["low"] > min_slope and error["high"] < max_error):
            failed[agent] = (f"{agent} did not track the target speed: error {error['point']:.2g} of it "
                             f"[{error['low']:.2g}, {error['high']:.2g}], slope {slope['point']:.2g} "
                             f"[{slope['low']:.2g}, {slope['high']:.2g}]")
    return {"learned": not failed, "rule": f"tracks the target speed: slope > {min_slope:g}, relative error < "
            f"{max_error:g}, interval over seeds", "agents": agents_out, "failed": failed}


def hierarchies(agents) -> list[str]:
    """The hierarchical agents among `agents`: each is compared with DreamerV3 in rows of its own."""
    return [a for a in agents if a in DIRECTORS]


def pair_check(check: dict, hierarchy: str) -> dict:
    """The gate of one comparison, `hierarchy` against DreamerV3, from a check over more agents: a row about Director
    is not gated on `director+wr`'s skill, nor the other way round."""
    pair = (hierarchy, "dreamer")
    missing = [a for a in pair if a not in check["agents"]]
    if missing:
        raise ValueError(f"hierarchy={hierarchy!r} is not valid for this gate; it checked "
                         f"{', '.join(check['agents'])} (missing: {', '.join(missing)})")
    failed = {a: text for a, text in check["failed"].items() if a in pair}
    return {**check, "agents": {a: v for a, v in check["agents"].items() if a in pair}, "failed": failed,
            "learned": not failed}


def gate_text(check: dict) -> str:
    """Who failed the gate of a `learned_from_rows` / `tracking_from_rows` result, in words ("" if none)."""
    return " and ".join(check["failed"].values())


def horizon_claim(measured: dict, check: dict, scale: str, reps: int = 2000, hierarchy: str = "director") -> dict:
    """Claim (a) from decision_response results {agent: [per-seed result]}: the reach (L90) of an equal K-step
    perturbation (a random goal code held K steps against K random actions), in environment steps, lower for the
    hierarchy (`hierarchy`, against dreamer). A run with no response, or one whose response had not decayed within
    the window, is censored at the window: its reach is only known to be at least that, so the test is on ranks
    (`stats.Claim(censored=True)`), never a mean of windows, and the measure says how many runs were censored.
    The gate is `check` (`tracking_check`) for these two agents."""
    def reach(result):  # +inf: censored at the window (known only to lie beyond it)
        value = result["l90_steps"]
        return np.inf if value is None or not result.get("decayed", True) else value

    _pair(measured, hierarchy)
    scores = {a: np.array([reach(r) for r in measured[a]], dtype=float) for a in (hierarchy, "dreamer")}
    censored = sum(int(np.isinf(v).sum()) for v in scores.values())
    runs = sum(len(v) for v in scores.values())
    windows = sorted({len(r["lags"]) for a in (hierarchy, "dreamer") for r in measured[a]})
    if len(windows) > 1:  # censored runs are ranked above every reached one: one window for all
        raise ValueError(f"decision responses were measured over windows {windows}; censoring needs one window")
    check = pair_check(check, hierarchy)
    spec = stats.Claim("(a) hierarchy shortens the effective horizon",
                       f"L90 of a K-step perturbation (environment steps; {censored} of {runs} runs censored at the "
                       f"{windows[0]}-step window)", higher_is_better=False, censored=True, hierarchy=hierarchy)
    return stats.claim_row(spec, scores[hierarchy], scores["dreamer"], check["learned"], scale, reps,
                           gate=gate_text(check))

"""Simulated studies through the study's own decision path, for calibration and power (tests/test_calibration.py,
benchmarks/stats_calibration.py).

A simulated study builds the rows the notebooks build, in their shapes (evaluation rows per agent, seed, split and
speed, the random policy's rows on the same episodes, fine-tuning rows), runs the gates (`claims.tracking_from_rows`,
`claims.learned_from_rows`), builds every claim with the functions the notebooks call (`claims.training_claim`,
`heldout_claim`, `zero_shot_claim`, `finetune_claims`, `generalization_claims`) and decides them in their families
(`stats.decide`). Nothing is re-implemented: a bug in per-seed pooling, a family or a gate shows in the rates.

Each run has a run effect (one network: every speed of it moves together) of standard deviation 1 and, per speed,
noise of standard deviation 0.5; `effect` is Director's advantage in run-effect standard deviations on every
measure (fewer steps on the fine-tuning one). `pseudo_replicate` plants the error the tests must catch: speeds
counted as seeds.
"""

from __future__ import annotations

import numpy as np

from hrl_core import claims
from hrl_core.analysis import stats

SPEEDS = {"train": (1.0, 2.0, 3.0, 4.0), "ood": (1.5, 5.0)}
BUDGET = 1000  # fine-tuning steps; a run that would need more is censored


def _speed_rows(rng, n: int, effect: float):
    rows, baseline = [], []
    for seed in range(n):
        random = {(split, v): 50.0 + rng.normal() for split, speeds in SPEEDS.items() for v in speeds}
        baseline += [{"seed": seed, "split": s, "speed": v, "mean_return": r} for (s, v), r in random.items()]
        for agent, shift in (("director", effect), ("dreamer", 0.0)):
            run = rng.normal() + shift
            for split, speeds in SPEEDS.items():
                for v in speeds:
                    rows.append({"agent": agent, "seed": seed, "split": split, "speed": v,
                                 "mean_return": 200.0 + 20.0 * (run + 0.5 * rng.normal()),
                                 "mean_forward_speed": v * (1.0 + 0.05 * rng.normal())})
    return rows, baseline


def _speeds_as_seeds(rows: list[dict], baseline: list[dict]):
    """The planted error: every (seed, speed) evaluation relabelled as a run of its own."""
    index = {(r["seed"], r["split"], r["speed"]): i for i, r in enumerate(baseline)}
    column = {split: speeds[0] for split, speeds in SPEEDS.items()}  # one column: each "run" is one evaluation
    return ([{**r, "seed": index[r["seed"], r["split"], r["speed"]], "speed": column[r["split"]]} for r in rows],
            [{**r, "seed": i, "speed": column[r["split"]]} for i, r in enumerate(baseline)])


def _maze_rows(rng, n: int, effect: float, level: float):
    rows, baseline = [], []
    for seed in range(n):
        baseline.append({"seed": seed, "split": "train", "speed": None, "mean_return": 0.2})
        for agent, shift in (("director", effect), ("dreamer", 0.0)):
            rows.append({"agent": agent, "seed": seed, "split": "train", "speed": None,
                         "mean_return": level + 0.1 * (rng.normal() + shift)})
    return rows, baseline


def _finetune_rows(rng, n: int, effect: float):
    rows = []
    for seed in range(n):
        for variant, shift in ((claims.PRIMARY_FINETUNE[0], effect), (claims.PRIMARY_FINETUNE[1], 0.0)):
            steps = 600.0 + 200.0 * (rng.normal() - shift)
            rows.append({"variant": variant, "novelty": "both", "seed": seed, "budget": BUDGET, "curve": "eval/return",
                         "steps_to_threshold": None if steps > BUDGET else float(max(steps, 0.0)),
                         "evaluation_return": 0.5 + 0.1 * (rng.normal() + shift)})
    return rows


def simulate_study(rng, n: int, effect: float = 0.0, pseudo_replicate: bool = False, reps: int = 200) -> list[dict]:
    """Every claim row of one simulated study with `n` seeds per agent, decided in its family."""
    speed, speed_random = _speed_rows(rng, n, effect)
    maze, maze_random = _maze_rows(rng, n, effect, 0.6)
    novel, novel_random = _maze_rows(rng, n, effect, 0.4)
    tracking = claims.tracking_from_rows(speed, ["director", "dreamer"], reps=reps)
    retention = claims.generalization_claims(speed, tracking, "sim", reps, baseline=speed_random)
    tested, tested_random = _speeds_as_seeds(speed, speed_random) if pseudo_replicate else (speed, speed_random)
    source = claims.learned_from_rows(maze, maze_random, ["director", "dreamer"], 2.0, "on the source maze", reps)
    rows = [claims.training_claim(tested, tested_random, False, "sim", reps),
            claims.training_claim(maze, maze_random, True, "sim", reps),
            claims.heldout_claim(tested, tested_random, tracking, "sim", reps),
            claims.zero_shot_claim(novel, novel_random, source, "sim", reps),
            *claims.finetune_claims(_finetune_rows(rng, n, effect), *claims.PRIMARY_FINETUNE, source, "sim", reps),
            *retention]
    return stats.decide(rows)


def decided(rows: list[dict], family: str) -> bool:
    """Whether any row of `family` was decided (supported or contradicted)."""
    return any(r["verdict"] in (stats.SUPPORTED, stats.CONTRADICTED) for r in rows if r["family"] == family)


def verdict_rates(n: int, effect: float, studies: int, seed: int = 0, pseudo_replicate: bool = False) -> dict:
    """{family: fraction of simulated studies with a decided row; "rows": {measure: fraction "supported"}}."""
    rng = np.random.default_rng(seed)
    any_decided = {stats.PRIMARY: 0, stats.SECONDARY: 0}
    supported: dict = {}
    for _ in range(studies):
        rows = simulate_study(rng, n, effect, pseudo_replicate)
        for family in any_decided:
            any_decided[family] += decided(rows, family)
        for r in rows:
            supported[r["measure"]] = supported.get(r["measure"], 0) + (r["verdict"] == stats.SUPPORTED)
    return {**{f: v / studies for f, v in any_decided.items()}, "rows": {m: v / studies for m, v in supported.items()}}

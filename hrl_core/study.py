"""The study's procedures, one per notebook step: train a grid of runs, read their curves, evaluate them across
target speeds, and fine-tune trained runs on a new task with parts frozen.

Every procedure resumes: a finished run is read back, an unfinished one continues from its last checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from hrl_core.series import require_run, run_path

# Fine-tuning variants: (agent, parts that learn, start from the trained run?). Frozen parts keep their parameters.
FINETUNE_VARIANTS = {
    "director: all": ("director", ("WM", "G", "M", "W", "V"), True),
    "director: WM+M (worker frozen)": ("director", ("WM", "M", "V"), True),
    "director: M only": ("director", ("M", "V"), True),
    "dreamer: all": ("dreamer", ("WM", "A", "V"), True),
    "dreamer: A+V (world model frozen)": ("dreamer", ("A", "V"), True),
    "director: scratch": ("director", (), False),
    "dreamer: scratch": ("dreamer", (), False),
}


def _run_settings(steps: int, time_limit: float | None) -> dict:
    """Episode length, and log and checkpoint intervals that scale with the run (about 40 logs, 20 checkpoints)."""
    return {"env_options": {} if time_limit is None else {"time_limit": time_limit},
            "log_every": max(50, steps // 40), "checkpoint_every": max(1000, steps // 20)}


def _finished(logdir: Path, steps: int) -> bool:
    summary = logdir / "summary.json"
    return summary.exists() and json.loads(summary.read_text())["step"] >= steps


def train_grid(runs, tasks, agents, seeds, steps: int, preset: str = "tiny", time_limits: dict | None = None,
               progress: bool = True) -> list[Path]:
    """Trains every (task, agent, seed) run under `runs` to `steps` policy steps."""
    from tqdm.auto import tqdm

    from hrl_core.train import train

    grid = [(t, a, s) for t in tasks for a in agents for s in seeds]
    paths = []
    for task, agent, seed in tqdm(grid, desc="runs", disable=not progress):
        logdir = run_path(runs, task, agent, seed)
        if not _finished(logdir, steps):
            train(task, logdir, agent=agent, preset=preset, steps=steps, seed=seed, resume=True, progress=progress,
                  **_run_settings(steps, (time_limits or {}).get(task)))
        paths.append(logdir)
    return paths


def learning_curves(runs, tasks, agents, seeds, notebook: str = "01_train") -> dict:
    """{(task, agent): [metrics records per seed]} for runs that exist (missing ones raise MissingRun)."""
    from hrl_core.train import read_metrics

    return {(task, agent): [read_metrics(require_run(runs, task, agent, seed, notebook)) for seed in seeds]
            for task in tasks for agent in agents}


def final_return(records: list[dict], last: int = 3, metric: str = "episode/return") -> float:
    values = [r[metric] for r in records if metric in r]
    return float(np.mean(values[-last:])) if values else float("nan")


def evaluate_grid(runs, task, agents, seeds, episodes: int, policy: str = "eval", progress: bool = True) -> list[dict]:
    """One row per (agent, seed, split, target speed): mean evaluation return in `policy` mode (see evaluate.py)."""
    from tqdm.auto import tqdm

    from hrl_core.evaluate import evaluate_run

    rows = []
    grid = [(a, s, split) for a in agents for s in seeds for split in ("train", "ood")]
    for agent, seed, split in tqdm(grid, desc="evaluations", disable=not progress):
        result = evaluate_run(require_run(runs, task, agent, seed), split, episodes, policy=policy)
        rows += [{"agent": agent, "seed": seed, "split": split, "speed": r["speed"],
                  "mean_return": r["mean_return"], "returns": r["returns"]} for r in result["results"]]
    return rows


def random_baseline(runs, task, agent, seeds, episodes: int, progress: bool = True) -> list[dict]:
    """The uniform random policy on exactly the episodes each run of `seeds` is evaluated on (same speeds, same
    evaluation seeds), both splits: the yardstick for "has it learned" and for normalising returns across speeds."""
    from tqdm.auto import tqdm

    from hrl_core.evaluate import evaluate_run

    rows = []
    for seed, split in tqdm([(s, split) for s in seeds for split in ("train", "ood")], desc="random baseline",
                            disable=not progress):
        result = evaluate_run(require_run(runs, task, agent, seed), split, episodes, policy="random")
        rows += [{"seed": seed, "split": split, "speed": r["speed"], "mean_return": r["mean_return"]}
                 for r in result["results"]]
    return rows


def normalised_scores(rows: list[dict], baseline: list[dict], agent: str, split: str) -> np.ndarray:
    """Return / random return on the same episodes, as a (seeds, speeds) matrix for the interval estimators."""
    random = {(r["seed"], r["split"], r["speed"]): r["mean_return"] for r in baseline}
    mine = [r for r in rows if r["agent"] == agent and r["split"] == split]
    seeds, speeds = sorted({r["seed"] for r in mine}), sorted({r["speed"] for r in mine})
    value = {(r["seed"], r["speed"]): r["mean_return"] / max(random[(r["seed"], split, r["speed"])], 1e-6)
             for r in mine}
    return np.array([[value[(seed, speed)] for speed in speeds] for seed in seeds])


def generalization_claim(rows: list[dict], baseline: list[dict], learned_factor: float, scale: str,
                         reps: int = 2000) -> dict:
    """Claim (b) on a speed task: Director's return at held-out speeds, as a multiple of the random policy's on the
    same episodes, is higher than DreamerV3's (IQM over seeds x held-out speeds, 95% CIs). The runs count as learned
    when both agents' training-speed IQM reaches `learned_factor` x the random return; else the verdict is
    "inconclusive at this scale" whatever the interval says. The factor 3 suits walker_speed, where a random walker
    earns almost no move reward; on cheetah_speed and quadruped_speed (margin v) a random policy already earns about
    half the move reward, so choose a factor below 2 there."""
    from hrl_core.analysis import stats

    missing = {"director", "dreamer"} - {r["agent"] for r in rows}
    if missing:
        raise ValueError(f"agents={sorted({r['agent'] for r in rows})} is not valid for the claim; it compares "
                         f"director with dreamer (missing: {', '.join(sorted(missing))})")
    learned = all(stats.learned(normalised_scores(rows, baseline, agent, "train"), learned_factor, 1.0)
                  for agent in ("director", "dreamer"))
    return stats.claim_row("(b) hierarchy generalizes to held-out speeds", "held-out return / random return",
                           normalised_scores(rows, baseline, "director", "ood"),
                           normalised_scores(rows, baseline, "dreamer", "ood"), True, learned, scale, reps)


def run_scale(runs, task, agents, seeds) -> str:
    """What the evidence is: preset, policy steps per run and seeds, read from the runs themselves."""
    path = require_run(runs, task, agents[0], seeds[0])
    preset = json.loads((path / "config.json").read_text())["config"]["preset"]
    steps = json.loads((path / "summary.json").read_text())["step"] if (path / "summary.json").exists() else "?"
    return f"{preset} preset, {steps} steps per run, {len(seeds)} seeds"


def generalization_summary(rows: list[dict]) -> dict:
    """Per agent: mean return over training speeds, over held-out speeds, and their ratio."""
    summary = {}
    for agent in sorted({r["agent"] for r in rows}):
        means = {split: float(np.mean([r["mean_return"] for r in rows if r["agent"] == agent and r["split"] == split]))
                 for split in ("train", "ood")}
        means["ood_over_train"] = means["ood"] / means["train"] if means["train"] else float("nan")
        summary[agent] = means
    return summary


def finetune_grid(runs, source_task: str, target_task: str, seed: int, steps: int, variants=None,
                  preset: str = "tiny", time_limit: float | None = None, progress: bool = True) -> dict:
    """Fine-tunes the `source_task` runs of `seed` on `target_task`, one run per variant; {variant: logdir}."""
    from tqdm.auto import tqdm

    from hrl_core.validation import check_choice
    from hrl_core.train import train

    variants = list(variants or FINETUNE_VARIANTS)
    for name in variants:
        check_choice("variants", name, FINETUNE_VARIANTS)
    sources = {agent: require_run(runs, source_task, agent, seed)
               for agent, _, start in (FINETUNE_VARIANTS[v] for v in variants) if start}
    paths = {}
    for name in tqdm(variants, desc="fine-tune variants", disable=not progress):
        agent, parts, start = FINETUNE_VARIANTS[name]
        slug = name.split(" (")[0].replace(": ", "-").replace("+", "").replace(" ", "_")
        logdir = Path(runs) / f"finetune-{target_task}-{slug}-s{seed}"
        if not _finished(logdir, steps):
            train(target_task, logdir, agent=agent, preset=preset, steps=steps, seed=seed, resume=True,
                  config={"train_parts": parts} if parts else None, init_from=sources[agent] if start else None,
                  progress=progress, **_run_settings(steps, time_limit))
        paths[name] = logdir
    return paths


def steps_to_threshold(records: list[dict], threshold: float, metric: str = "episode/return", smooth: int = 3):
    """First logged step at which the running mean of the last `smooth` values of `metric` reaches `threshold`;
    None when it never does within the run."""
    points = [(r["step"], r[metric]) for r in records if metric in r]
    for i in range(len(points)):
        window = [v for _, v in points[max(0, i - smooth + 1):i + 1]]
        if np.mean(window) >= threshold:
            return int(points[i][0])
    return None

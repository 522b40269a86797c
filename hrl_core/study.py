"""The study's procedures, one per notebook step: train a grid of runs, read their curves, evaluate them across
target speeds, and fine-tune trained runs on a new task with parts frozen. Each takes the runs as a `Grid`
(hrl_core/grid.py) and, where it starts processes, a `Placement` (hrl_core/executor.py). The claims' arithmetic on
what these procedures measure is in hrl_core/claims.py.

Every procedure resumes: a finished run is read back, an unfinished one continues from its last checkpoint.
"""

from __future__ import annotations

import functools
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from hrl_core.analysis import composition
from hrl_core.analysis.horizon import decision_response
from hrl_core.claims import MIN_RANDOM_SUCCESS, STUDY_POLICY, learned_from_rows, steps_to_threshold, tracking_from_rows
from hrl_core.config import DIRECTOR_UPDATE_FIELDS, DIRECTORS, make_config
from hrl_core.envs import TASKS, composed_task, make_env
from hrl_core.envs.locomotion import DEFAULT_SPEED_SET, composed_schedule
from hrl_core.envs.seeds import EVALUATION_OFFSET, HORIZON_OFFSET
from hrl_core.evaluate import evaluate_run
from hrl_core.executor import LOCAL, Job, Placement, run_jobs
from hrl_core.grid import Grid
from hrl_core.learned import load_agent
from hrl_core.rundir import (RunSpec, analysis, has_spec, is_finished, is_record, latest_step, read_metrics, read_spec,
                             read_summary, trained_steps)
from hrl_core.train import Schedule, evaluation_return, train_seeds
from hrl_core.validation import check_choice

# Fine-tuning variants: (agent, parts that learn, start from the trained run?). Frozen parts keep their parameters.
FINETUNE_VARIANTS = {
    "director: all": ("director", ("WM", "G", "M", "W", "V"), True),
    "director: WM+M (worker frozen)": ("director", ("WM", "M", "V"), True),
    "director: WM+W (manager frozen)": ("director", ("WM", "W", "V"), True),
    "director: WM only (hierarchy frozen)": ("director", ("WM",), True),
    "director: M only": ("director", ("M", "V"), True),
    "dreamer: all": ("dreamer", ("WM", "A", "V"), True),
    "dreamer: A+V (world model frozen)": ("dreamer", ("A", "V"), True),
    "dreamer: WM only (policy frozen)": ("dreamer", ("WM",), True),
    "director: scratch": ("director", (), False),
    "dreamer: scratch": ("dreamer", (), False),
}
FINETUNE_EVALUATION = (10, 8)  # a fine-tuning run's evaluation curve: points, episodes per point (spawns vary)
FINETUNE_LOGS = 100  # logged points of a fine-tuning run (every 10 steps at least): its curve and steps to threshold
# Options a fine-tuning run inherits from its source run, so that its spaces match (the maze's body and size).
INHERITED_OPTIONS = ("action_repeat", "size", "body", "maze_size", "conditioning", "speed_set")
# Training settings every fine-tuning run of a seed takes from that seed's source run, the scratch variants too, so
# that variants differ only in what they start from and what learns: the model's image size and the update rate.
INHERITED_TRAINING = ("image_size", "train_ratio")


def _run_settings(steps: int, time_limit: float | None, options: dict | None = None, logs: int = 40,
                  min_log_every: int = 50, prefill: int | None = None, evaluation: tuple | None = None):
    """(task options, schedule): the options with the episode length, and log and checkpoint intervals that scale
    with the run (about `logs` logs, 20 checkpoints). `evaluation` (points, episodes): an evaluation curve of that
    many points, each of that many evaluation episodes (per training speed), at equal steps, under the study's
    policy (claims.STUDY_POLICY), as every claim reads its evaluations."""
    env_options = {**(options or {}), **({} if time_limit is None else {"time_limit": time_limit})}
    every, episodes = (0, 1) if not evaluation else (max(1, steps // evaluation[0]), evaluation[1])
    return env_options, Schedule(steps, checkpoint_every=max(1000, steps // 20),
                                 log_every=max(min_log_every, steps // logs), prefill=prefill,
                                 evaluate_every=every, evaluate_episodes=episodes, evaluate_policy=STUDY_POLICY)


def vectorized(vectorize: bool | None) -> bool:
    """Whether a grid trains the seeds of one task and agent in one process (`train_seeds`). None: only where JAX
    runs on an accelerator, which one run leaves mostly idle; on a CPU a group of N seeds is slower than N runs one
    after another (benchmarks/RESULTS.md, "Seed-vectorized training"). On a Ray cluster whose GPUs the driver lacks,
    pass True."""
    if vectorize is None:
        import jax

        return jax.default_backend() != "cpu"
    return bool(vectorize)


def _groups(logdirs: dict, steps: int, vectorize: bool, apart=None) -> list[list]:
    """The unfinished runs of `logdirs` ({seed: folder}, one task and agent) in the groups that train together in
    one process: with `vectorize`, runs stopped at the same checkpoint step (or not started), as a group trains its
    seeds in step; else one run per group. `apart` (seed -> key) keeps runs apart that cannot share a process
    (different task options)."""
    groups = {}
    for seed, logdir in logdirs.items():
        if not is_finished(logdir, steps):
            key = (latest_step(logdir), None if apart is None else apart(seed)) if vectorize else seed
            groups.setdefault(key, []).append(seed)
    return list(groups.values())


def train_grid(grid: Grid, steps: int, time_limits: dict | None = None, task_options: dict | None = None,
               progress: bool = True, checkpoint_every: int | None = None, placement: Placement = LOCAL) -> list[Path]:
    """Trains every run of `grid` to `steps` policy steps; `task_options` maps a task to its options (e.g.
    {"maze_train": {"body": "ball", "maze_size": "small"}}). Where `placement.vectorize` holds (see `vectorized`)
    the seeds of one task and agent train in one process (`train_seeds`). `checkpoint_every` (default: about 20
    checkpoints a run) bounds what a lost worker costs. `placement` says where the processes execute
    (hrl_core/executor.py)."""
    paths, jobs = [], []
    for task, agent in [(t, a) for t in grid.tasks for a in grid.agents]:
        logdirs = {seed: grid.path(task, agent, seed) for seed in grid.seeds}
        paths += logdirs.values()
        options, schedule = _run_settings(steps, (time_limits or {}).get(task), (task_options or {}).get(task))
        if checkpoint_every is not None:
            schedule = replace(schedule, checkpoint_every=checkpoint_every)
        for group in _groups(logdirs, steps, vectorized(placement.vectorize)):
            specs = {logdirs[seed]: RunSpec.create(task, agent, seed, grid.preset, options) for seed in group}
            jobs.append(_training_job(specs, schedule, progress and placement.local))
    run_jobs(jobs, placement, progress, desc="runs", folders=[grid.runs])
    return paths


def _training_job(specs: dict, schedule, progress: bool):
    """A grid's job that trains one group of runs {folder: spec} (`train.train_seeds`, resuming)."""
    folders = list(specs)
    first = next(iter(specs.values()))
    return Job(",".join(f.name for f in folders), train_seeds,
               dict(runs=specs, schedule=schedule, resume=True, progress=progress),
               cpus=first.config.num_envs, logdir=folders[0], steps=schedule.steps)


def learning_curves(grid: Grid, notebook: str = "01_train") -> dict:
    """{(task, agent): [metrics records per seed]} for runs that exist (missing ones raise MissingRun, naming
    `notebook`)."""
    return {(task, agent): [read_metrics(grid.require(task, agent, seed, notebook)) for seed in grid.seeds]
            for task in grid.tasks for agent in grid.agents}


def final_return(records: list[dict], last: int = 3, metric: str = "episode/return") -> float:
    values = [r[metric] for r in records if metric in r]
    return float(np.mean(values[-last:])) if values else float("nan")


def evaluate_grid(grid: Grid, episodes: int, policy: str = STUDY_POLICY, progress: bool = True, splits=("train", "ood"),
                  placement: Placement = LOCAL, reuse: bool = True) -> list[dict]:
    """One row per (agent, seed, split, target speed) of the grid's one task: mean evaluation return in `policy`
    mode (see evaluate.py). `placement` says where the evaluations execute (hrl_core/executor.py). With `reuse` a
    run's stored evaluation that is exactly this one (same checkpoint, task, options, policy and episodes, e.g.
    the reference runs' `hrl eval` files) is read instead of recomputed; nothing is ever written into the runs."""
    task = grid.task
    cells = [(a, s, split) for a in grid.agents for s in grid.seeds for split in splits]
    jobs = [Job(f"{task}-{agent}-s{seed} {split}", evaluate_run,
                dict(logdir=grid.require(task, agent, seed), split=split, episodes=episodes, policy=policy,
                     write=False, reuse=reuse))
            for agent, seed, split in cells]
    results = run_jobs(jobs, placement, progress, desc="evaluations", folders=[grid.runs])
    return [{"agent": agent, "seed": seed, "split": split, "speed": r["speed"], "mean_return": r["mean_return"],
             "returns": r["returns"], **{k: r[k] for k in ("forward_speeds", "mean_forward_speed") if k in r}}
            for (agent, seed, split), result in zip(cells, results) for r in result["results"]]


def random_baseline(grid: Grid, episodes: int, progress: bool = True, splits=("train", "ood"),
                    reuse: bool = True) -> list[dict]:
    """The uniform random policy on exactly the episodes each seed's runs are evaluated on (same speeds, same
    evaluation seeds; the spec read from the run of the grid's first agent), both splits: the yardstick for "has it
    learned" and for normalising returns across speeds. `reuse` as in `evaluate_grid`."""
    rows = []
    for seed, split in tqdm([(s, split) for s in grid.seeds for split in splits], desc="random baseline",
                            disable=not progress):
        result = evaluate_run(grid.require(grid.task, grid.agents[0], seed), split, episodes, policy="random",
                              write=False, reuse=reuse)
        rows += [{"seed": seed, "split": split, "speed": r["speed"], "mean_return": r["mean_return"]}
                 for r in result["results"]]
    return rows


def run_scale(grid: Grid) -> str:
    """What the evidence is: preset, policy steps per run (per agent when they differ) and seeds, read from the
    runs themselves (the first seed's of the grid's one task)."""
    steps, seeds = {}, grid.seeds
    for agent in grid.agents:
        path = grid.require(grid.task, agent, seeds[0])
        preset = read_spec(path).preset
        reached = trained_steps(path)
        steps[agent] = "?" if reached is None else reached
    counts = (f"{next(iter(steps.values()))} steps per run" if len(set(steps.values())) == 1
              else ", ".join(f"{agent} {n}" for agent, n in steps.items()) + " steps")
    return f"{preset} preset, {counts}, {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"


def source_agents(variants=None) -> list[str]:
    """The agents whose trained runs these fine-tuning variants (None: all) start from: a fine-tuning grid's agents."""
    chosen = [FINETUNE_VARIANTS[check_choice("variants", v, FINETUNE_VARIANTS)] for v in variants or FINETUNE_VARIANTS]
    return sorted({agent for agent, _, start in chosen if start})


def finetune_path(runs, target_task: str, variant: str, seed: int, novelty: str | None = None) -> Path:
    slug = variant.split(" (")[0].replace(": ", "-").replace("+", "").replace(" ", "_")
    return Path(runs) / f"finetune-{target_task}{'' if novelty is None else '-' + novelty}-{slug}-s{seed}"


def finished_as(logdir: Path, spec, steps: int) -> bool:
    """Whether `logdir` holds this run, finished at `steps` or beyond: the same spec, its source run compared by
    folder name (a run made from another copy of reference/ is the same run). Such a run is not trained again. A run
    stored without its learned state (`learned.export_run(learned=False)`, the reference fine-tuning runs) that is
    not this finished run cannot be continued: ValueError."""
    if not has_spec(logdir):
        return False
    stored = read_spec(logdir)
    source = lambda s: s.init_from and Path(s.init_from).name  # noqa: E731
    same = replace(stored, init_from=None) == replace(spec, init_from=None) and source(stored) == source(spec)
    if same and is_finished(logdir, steps):
        return True
    if is_record(logdir):  # nothing to resume from
        differs = "fewer steps" if same else "other settings"
        raise ValueError(f"{logdir} holds a run stored without its learned state, with {differs} than this one "
                         f"(steps={steps}), so it cannot be continued; delete that folder to train this run")
    return False


def finetune_grid(grid: Grid, target_task: str, steps: int, variants=None, novelties=(None,),
                  time_limit: float | None = None, progress: bool = True, out_runs=None,
                  placement: Placement = LOCAL, evaluation: tuple | None = FINETUNE_EVALUATION) -> dict:
    """Fine-tunes the source runs of `grid` (its one task, each seed) on `target_task` at the grid's preset, one
    run per variant and novelty grade (maze_novel's `novelty` option; None keeps the task's default);
    {(variant, novelty, seed): logdir}. A variant that starts from a trained run needs its agent in `grid.agents`.
    Each run inherits the source run's body, maze size and other INHERITED_OPTIONS, and its INHERITED_TRAINING
    settings (image size, train ratio), scratch runs too. The fine-tuning runs are written under `out_runs`
    (default: the grid's runs), so read-only source runs (the repository's reference/) stay untouched. `placement`
    says where the runs execute (hrl_core/executor.py), and whether seeds train together (as in `train_grid`).
    `evaluation` (points, episodes) gives each run its evaluation curve, from which steps to threshold are read
    (`finetune_results`); None: none."""
    variants = list(variants or FINETUNE_VARIANTS)
    starts = set(source_agents(variants))  # checks each variant's name
    runs, source_task, seeds, preset = grid.runs, grid.task, grid.seeds, grid.preset
    if not starts <= set(grid.agents):
        raise ValueError(f"variants={variants!r} start from trained {sorted(starts)} runs, but the grid's agents are "
                         f"{list(grid.agents)}; add {sorted(starts - set(grid.agents))} to the grid's agents")
    prefill = finetune_prefill(preset)
    if steps <= prefill:
        raise ValueError(f"steps={steps} is not valid for fine-tuning at the {preset} preset: updates start after a "
                         f"{prefill}-step prefill, so steps must be > {prefill} (and well above it for curves)")
    sources = {(agent, seed): grid.require(source_task, agent, seed) for agent in starts for seed in seeds}
    source_options, source_training = {}, {}  # every run of a seed inherits these from that seed's source run
    for seed in seeds:
        saved = read_spec(grid.require(source_task, FINETUNE_VARIANTS[variants[0]][0], seed))
        source_options[seed] = {k: v for k, v in saved.env_options.items() if k in INHERITED_OPTIONS}
        source_training[seed] = {k: getattr(saved.config, k) for k in INHERITED_TRAINING}
    paths, jobs = {}, []
    for name, novelty in [(v, n) for n in novelties for v in variants]:
        agent, parts, start = FINETUNE_VARIANTS[name]
        logdirs = {seed: finetune_path(out_runs or runs, target_task, name, seed, novelty) for seed in seeds}
        paths.update({(name, novelty, seed): logdir for seed, logdir in logdirs.items()})
        apart = lambda seed: json.dumps([source_options[seed], source_training[seed]], sort_keys=True)  # noqa: E731
        for group in _groups(logdirs, steps, vectorized(placement.vectorize), apart):
            options, schedule = _run_settings(steps, time_limit, {**source_options[group[0]], **(
                {} if novelty is None else {"novelty": novelty})}, FINETUNE_LOGS, 10, prefill, evaluation)
            config = {**source_training[group[0]], **(update_options(sources[agent, group[0]]) if start else {}),
                      **({"train_parts": parts} if parts else {})}
            specs = {logdirs[seed]: RunSpec.create(target_task, agent, seed, preset, options, config,
                                                   sources[agent, seed] if start else None) for seed in group}
            specs = {logdir: spec for logdir, spec in specs.items() if not finished_as(logdir, spec, steps)}
            if specs:
                jobs.append(_training_job(specs, schedule, progress and placement.local))
    run_jobs(jobs, placement, progress, desc="fine-tune variants", folders=[out_runs or runs],
             files=list(sources.values()))
    return paths


def update_options(source) -> dict:
    """The options a fine-tuning run inherits from its source run, so that the state it carries over fits: its
    image size, and Director's normaliser, entropy, code mix, optimiser, critic and worker-reward choices (a run
    trained before Director's own update keeps the earlier one)."""
    cfg = read_spec(source).config
    director = {k: getattr(cfg, k) for k in DIRECTOR_UPDATE_FIELDS} if cfg.agent in DIRECTORS else {}
    return {"image_size": cfg.image_size, **director}  # the model's image size, whatever the preset's


def finetune_prefill(preset: str) -> int:
    """Policy steps a fine-tuning run collects before its first update: one replayed sequence per environment. The
    trained source needs no long prefill; the default (batch x length, 256 at the cpu preset) would leave a short
    fine-tuning budget without a single update."""
    cfg = make_config(preset)
    return cfg.batch_length * cfg.num_envs


def composition_grid(grid: Grid, episodes: int, schedule=None, time_limit: float | None = None, policy: str = STUDY_POLICY,
                     progress: bool = True, store: bool = False) -> list[dict]:
    """Runs each trained run of the grid's one task zero-shot on its composed task (`envs.composed_task`: the target
    speed switches within the episode, see envs/locomotion.py), and the uniform random policy on the same episodes
    (agent "random", one per seed). Each trained run also runs `episodes` episodes at each speed the schedule
    switches to, held for the whole episode: its fixed-speed error over the same steps
    (analysis/composition.fixed_speed_error).

    Environment seeds are the run's seed + EVALUATION_OFFSET (`envs/seeds.py`), as in every evaluation. One row
    per (agent, seed): its summary (analysis/composition.summarize, plus "fixed_error" for trained runs;
    Director's code change window is 2K steps after each switch), each episode's return, and the first episode's
    target and velocity for plotting.

    A row stored in its run with the same parameters and step (`rundir.stored_analysis`; the random policy's in the
    run of the grid's first agent) is read instead of computed; store=True writes each computed row into its run."""
    rows, agents = [], grid.agents
    schedule = composition_schedule(grid, schedule)  # resolved, so that a stored row names the targets it saw
    cells = [(a, s) for s in grid.seeds for a in [*agents, "random"]]
    for agent, seed in tqdm(cells, desc="composed task", disable=not progress):
        source = grid.require(grid.task, agents[0] if agent == "random" else agent, seed)
        name = "composition_random" if agent == "random" else "composition"
        params = {"schedule": schedule, "time_limit": time_limit, "episodes": episodes,
                  "policy": "random" if agent == "random" else policy}
        rows.append(analysis(source, name, params, lambda: _composition_row(source, agent, seed, params), store))
    return rows


def composition_schedule(grid: Grid, schedule=None) -> list[float]:
    """The targets (m/s) that `composition_grid(grid, ..., schedule)` switches between: `schedule`, or the composed
    task's default for the speed set that the grid's runs trained on."""
    spec = read_spec(grid.require(grid.task, grid.agents[0], grid.seeds[0]))
    domain = TASKS[grid.task].speed_domain
    return list(composed_schedule(domain, spec.env_options.get("speed_set", DEFAULT_SPEED_SET), schedule))


def _composition_row(source: Path, agent: str, seed: int, params: dict) -> dict:
    """One row of `composition_grid`: `agent` ("random" for the uniform random policy) with the spec of `source`."""
    spec = read_spec(source)
    ag, state = (None, None) if agent == "random" else load_agent(source)[:2]
    options = {k: v for k, v in spec.env_options.items()
               if k in ("action_repeat", "size", "conditioning", "speed_set")}

    def rollouts(speeds):
        env = make_env(composed_task(spec.task), seed=seed + EVALUATION_OFFSET, schedule=speeds,
                       time_limit=params["time_limit"], **options)
        out = composition.switch_rollouts(ag, state, env, params["episodes"], seed + EVALUATION_OFFSET,
                                          params["policy"])
        env.close()
        return out, env.action_repeat * env.control_timestep

    episodes_out, seconds_per_step = rollouts(params["schedule"])
    window = 2 * spec.config.manager_period if agent in DIRECTORS else None
    summary = composition.summarize(episodes_out, window=window)
    if agent != "random":
        switched_to = {s["target"] for ep in episodes_out for s in composition.tracking(ep)}
        fixed = {speed: rollouts([speed])[0] for speed in sorted(switched_to)}
        summary["fixed_error"] = composition.fixed_speed_error(episodes_out, fixed)
    return {"agent": agent, "seed": seed, "summary": summary,
            "returns": [float(ep["reward"].sum()) for ep in episodes_out], "seconds_per_step": seconds_per_step,
            "target": episodes_out[0]["target"].tolist(), "velocity": episodes_out[0]["velocity"].tolist()}


def decision_responses(grid: Grid, perturbations: int, window: int, progress: bool = True,
                       store: bool = False) -> dict:
    """Notebook 02's measurement, {agent: [per-seed `analysis.horizon.decision_response`]}: each run's reward
    response (the grid's one task) to a K-step perturbation at `perturbations` decision times, over `window` steps,
    in an episode with environment seed = the run's seed + HORIZON_OFFSET (`envs/seeds.py`). A result stored in
    the run with the same parameters and step (`rundir.stored_analysis`) is read instead of computed; store=True
    writes each computed one into its run."""
    task = grid.task

    def measure(path, seed):
        agent, state, run = load_agent(path)
        make = functools.partial(make_env, task, seed=seed + HORIZON_OFFSET, **run.spec.env_options)
        return decision_response(agent, state, make, perturbations, window, seed=seed, progress=progress)

    measured = {agent: [] for agent in grid.agents}
    for agent_name in grid.agents:
        for seed in grid.seeds:
            path = grid.require(task, agent_name, seed)
            params = {"perturbations": perturbations, "window": window, "env_seed": seed + HORIZON_OFFSET}
            measured[agent_name].append(analysis(path, "decision_response", params, lambda: measure(path, seed),
                                                 store))
    return measured


def finetune_results(paths: dict, episodes: int, threshold_factor: float, progress: bool = True) -> list[dict]:
    """One row per fine-tuning run of `finetune_grid`'s {(variant, novelty, seed): logdir}: final training return,
    evaluation return and, on the same episodes, the uniform random policy's success (computed once per novelty
    and seed), and the steps it needed to reach the grade's threshold, fixed before any run:
    `threshold_factor` x the random policy's mean success on that grade (floored at MIN_RANDOM_SUCCESS, capped at
    1). A run that never reaches it within its budget is censored: "steps_to_threshold" None and "reached" False.
    A run that made no update is an error: it would be its source, unchanged, scored as fine-tuned.

    Steps are read from the run's evaluation curve ("eval/return", `finetune_grid(evaluation=...)`) against the
    random policy on exactly the curve's episodes; a run logged without one (written before evaluation curves)
    falls back to its finished training episodes (its row's "curve" says which)."""
    if not threshold_factor > 0:
        raise ValueError(f"threshold_factor={threshold_factor!r} is not valid; it must be a positive multiple of the "
                         "random policy's success")
    rows, random, curve_random = [], {}, {}
    for (variant, novelty, seed), path in tqdm(paths.items(), desc="fine-tune evaluations", disable=not progress):
        summary = read_summary(path)
        updates = summary["updates"]
        if not updates:
            raise RuntimeError(f"fine-tuning run {path} made no updates in its {summary['step']} steps: it is its "
                               "source unchanged; fine-tune for more steps than the prefill (study.finetune_prefill)")
        if (novelty, seed) not in random:
            random[novelty, seed] = evaluate_run(path, "train", episodes, policy="random",
                                                 reuse=True)["results"][0]["mean_return"]
        records = read_metrics(path)
        curve = [r for r in records if "eval/return" in r]
        if curve and (novelty, seed) not in curve_random:  # every variant of a seed has the same curve episodes
            spec = read_spec(path)
            curve_random[novelty, seed] = evaluation_return(None, None, spec.task, curve[0]["eval/episodes"],
                                                            spec.env_options, spec.seed, policy="random")
        evaluation = evaluate_run(path, "train", episodes, policy=STUDY_POLICY, reuse=True)["results"][0]["mean_return"]
        rows.append({"variant": variant, "novelty": novelty, "seed": seed, "records": records, "updates": updates,
                     "budget": summary["step"], "final_training_return": final_return(records),
                     "evaluation_return": evaluation, "random_return": random[novelty, seed],
                     "curve": "eval/return" if curve else "episode/return"})
    for novelty in dict.fromkeys(r["novelty"] for r in rows):
        grade = [r for r in rows if r["novelty"] == novelty]
        for metric, chances in (("eval/return", curve_random), ("episode/return", random)):
            mine = [r for r in grade if r["curve"] == metric]
            if not mine:
                continue
            chance = np.mean([chances[novelty, seed] for seed in {r["seed"] for r in mine}])
            threshold = float(min(1.0, threshold_factor * max(chance, MIN_RANDOM_SUCCESS)))
            for r in mine:  # an evaluation point is already a mean of episodes: no running mean over points
                reached = steps_to_threshold(r["records"], threshold, metric, 1 if metric == "eval/return" else 3)
                r.update({"threshold": threshold, "reached": reached is not None, "steps_to_threshold": reached})
    for r in rows:
        del r["records"]
    return rows


def zero_shot_grid(grid: Grid, target_task: str, episodes: int, env_options: dict | None = None,
                   policy: str = STUDY_POLICY, store: bool = False) -> tuple[list[dict], list[dict]]:
    """(rows, baseline): each run of the grid (its one task) evaluated on `target_task` before any fine-tuning (with
    these task options, e.g. the novelty grade and episode length), and the uniform random policy on exactly the
    same episodes (the run's evaluation seeds), in the row shapes of `evaluate_grid` and `random_baseline`.

    An evaluation stored in its run with the same parameters and step (`rundir.stored_analysis`; the random
    policy's in the run of the grid's first agent) is read instead of computed; store=True writes each computed one
    into its run, so that a run stored without its learned state still answers."""
    def evaluate(agent, seed, how):
        source = grid.require(grid.task, agent, seed)
        params = {"task": target_task, "env_options": env_options or {}, "episodes": episodes, "policy": how}

        def compute():
            return evaluate_run(source, "train", episodes, task=target_task, env_options=env_options, policy=how,
                                write=False)["results"]

        name = "zero_shot_random" if how == "random" else "zero_shot"
        return [{"agent": agent, "seed": seed, "split": "train", "speed": r["speed"], "mean_return": r["mean_return"],
                 "returns": r["returns"]} for r in analysis(source, name, params, compute, store)]

    rows = [row for agent in grid.agents for seed in grid.seeds for row in evaluate(agent, seed, policy)]
    baseline = [row for seed in grid.seeds for row in evaluate(grid.agents[0], seed, "random")]
    return rows, baseline


def learned_check(grid: Grid, episodes: int, learned_factor: float, policy: str = STUDY_POLICY,
                  where: str = "at the training speeds") -> dict:
    """The gate of a claim that starts from a learned task (the source maze): `learned_from_rows` on the grid's runs
    and the uniform random policy on the gate's own episodes (split "gate"), never the measure's."""
    rows = evaluate_grid(grid, episodes, policy, splits=("gate",))
    baseline = random_baseline(grid, episodes, splits=("gate",))
    return learned_from_rows(rows, baseline, grid.agents, learned_factor, where, split="gate")


def tracking_check(grid: Grid, episodes: int, max_error: float = 0.5, policy: str = STUDY_POLICY) -> dict:
    """The gate of the speed claims and composition: `tracking_from_rows` at the training speeds, on the gate's own
    episodes (split "gate"), never the measure's."""
    return tracking_from_rows(evaluate_grid(grid, episodes, policy, splits=("gate",)), grid.agents, max_error,
                              split="gate")



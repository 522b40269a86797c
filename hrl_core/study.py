"""The study's procedures, one per notebook step: train a grid of runs, read their curves, evaluate them across
target speeds, and fine-tune trained runs on a new task with parts frozen.

Every procedure resumes: a finished run is read back, an unfinished one continues from its last checkpoint.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np

from hrl_core.config import DIRECTORS
from hrl_core.rundir import require_run, run_path

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
FINETUNE_LOGS = 100  # logged points of a fine-tuning run (every 10 steps at least): its curve and steps to threshold
MIN_RANDOM_SUCCESS = 0.05  # the smallest random return a ratio is taken against (a maze's random success can be 0)
# Options a fine-tuning run inherits from its source run, so that its spaces match (the maze's body and size).
INHERITED_OPTIONS = ("action_repeat", "size", "body", "maze_size", "conditioning")


def _run_settings(steps: int, time_limit: float | None, options: dict | None = None, logs: int = 40,
                  min_log_every: int = 50, prefill: int | None = None):
    """(task options, schedule): the options with the episode length, and log and checkpoint intervals that scale
    with the run (about `logs` logs, 20 checkpoints)."""
    from hrl_core.train import Schedule

    env_options = {**(options or {}), **({} if time_limit is None else {"time_limit": time_limit})}
    return env_options, Schedule(steps, checkpoint_every=max(1000, steps // 20),
                                 log_every=max(min_log_every, steps // logs), prefill=prefill)


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
    from hrl_core.rundir import is_finished, latest_step

    groups = {}
    for seed, logdir in logdirs.items():
        if not is_finished(logdir, steps):
            key = (latest_step(logdir), None if apart is None else apart(seed)) if vectorize else seed
            groups.setdefault(key, []).append(seed)
    return list(groups.values())


def train_grid(runs, tasks, agents, seeds, steps: int, preset: str = "tiny", time_limits: dict | None = None,
               task_options: dict | None = None, progress: bool = True, checkpoint_every: int | None = None,
               executor: str = "local", address: str | None = None, max_parallel: int | None = None,
               vectorize: bool | None = None) -> list[Path]:
    """Trains every (task, agent, seed) run under `runs` to `steps` policy steps; `task_options` maps a task to its
    options (e.g. {"maze_train": {"body": "ball", "maze_size": "small"}}). With `vectorize` (see `vectorized`) the
    seeds of one task and agent train in one process (`train_seeds`). `checkpoint_every` (default: about 20
    checkpoints a run) bounds what a lost worker costs. `executor` ("local" or "ray"), `address` and
    `max_parallel` say where the processes execute (hrl_core/executor.py)."""
    from dataclasses import replace

    from hrl_core.executor import run_jobs
    from hrl_core.rundir import RunSpec

    paths, jobs = [], []
    for task, agent in [(t, a) for t in tasks for a in agents]:
        logdirs = {seed: run_path(runs, task, agent, seed) for seed in seeds}
        paths += logdirs.values()
        options, schedule = _run_settings(steps, (time_limits or {}).get(task), (task_options or {}).get(task))
        if checkpoint_every is not None:
            schedule = replace(schedule, checkpoint_every=checkpoint_every)
        for group in _groups(logdirs, steps, vectorized(vectorize)):
            specs = {logdirs[seed]: RunSpec.create(task, agent, seed, preset, options) for seed in group}
            jobs.append(_training_job(specs, schedule, progress and executor == "local"))
    run_jobs(jobs, executor, address, max_parallel, progress, desc="runs", folders=[runs])
    return paths


def _training_job(specs: dict, schedule, progress: bool):
    """A grid's job that trains one group of runs {folder: spec} (`train.train_seeds`, resuming)."""
    from hrl_core.executor import Job
    from hrl_core.train import train_seeds

    folders = list(specs)
    first = next(iter(specs.values()))
    return Job(",".join(f.name for f in folders), train_seeds,
               dict(runs=specs, schedule=schedule, resume=True, progress=progress),
               cpus=first.config.num_envs, logdir=folders[0], steps=schedule.steps)


def learning_curves(runs, tasks, agents, seeds, notebook: str = "01_train") -> dict:
    """{(task, agent): [metrics records per seed]} for runs that exist (missing ones raise MissingRun)."""
    from hrl_core.rundir import read_metrics

    return {(task, agent): [read_metrics(require_run(runs, task, agent, seed, notebook)) for seed in seeds]
            for task in tasks for agent in agents}


def final_return(records: list[dict], last: int = 3, metric: str = "episode/return") -> float:
    values = [r[metric] for r in records if metric in r]
    return float(np.mean(values[-last:])) if values else float("nan")


def evaluate_grid(runs, task, agents, seeds, episodes: int, policy: str = "eval", progress: bool = True,
                  splits=("train", "ood"), executor: str = "local", address: str | None = None,
                  max_parallel: int | None = None, reuse: bool = True) -> list[dict]:
    """One row per (agent, seed, split, target speed): mean evaluation return in `policy` mode (see evaluate.py).
    `executor`, `address` and `max_parallel` say where the evaluations execute (hrl_core/executor.py). With `reuse`
    a run's stored evaluation that is exactly this one (same checkpoint, task, options, policy and episodes, e.g.
    the reference runs' `hrl eval` files) is read instead of recomputed; nothing is ever written into the runs."""
    from hrl_core.evaluate import evaluate_run
    from hrl_core.executor import Job, run_jobs

    grid = [(a, s, split) for a in agents for s in seeds for split in splits]
    jobs = [Job(f"{task}-{agent}-s{seed} {split}", evaluate_run,
                dict(logdir=require_run(runs, task, agent, seed), split=split, episodes=episodes, policy=policy,
                     write=False, reuse=reuse))
            for agent, seed, split in grid]
    results = run_jobs(jobs, executor, address, max_parallel, progress, desc="evaluations", folders=[runs])
    return [{"agent": agent, "seed": seed, "split": split, "speed": r["speed"], "mean_return": r["mean_return"],
             "returns": r["returns"], **{k: r[k] for k in ("forward_speeds", "mean_forward_speed") if k in r}}
            for (agent, seed, split), result in zip(grid, results) for r in result["results"]]


def random_baseline(runs, task, agent, seeds, episodes: int, progress: bool = True,
                    splits=("train", "ood"), reuse: bool = True) -> list[dict]:
    """The uniform random policy on exactly the episodes each run of `seeds` is evaluated on (same speeds, same
    evaluation seeds), both splits: the yardstick for "has it learned" and for normalising returns across speeds.
    `reuse` as in `evaluate_grid`."""
    from tqdm.auto import tqdm

    from hrl_core.evaluate import evaluate_run

    rows = []
    for seed, split in tqdm([(s, split) for s in seeds for split in splits], desc="random baseline",
                            disable=not progress):
        result = evaluate_run(require_run(runs, task, agent, seed), split, episodes, policy="random", write=False,
                              reuse=reuse)
        rows += [{"seed": seed, "split": split, "speed": r["speed"], "mean_return": r["mean_return"]}
                 for r in result["results"]]
    return rows


def normalised_scores(rows: list[dict], baseline: list[dict], agent: str, split: str) -> np.ndarray:
    """Return / random return on the same episodes, as a (seeds, speeds) matrix for the interval estimators."""
    random = {(r["seed"], r["split"], r["speed"]): r["mean_return"] for r in baseline}
    mine = [r for r in rows if r["agent"] == agent and r["split"] == split]
    seeds, speeds = sorted({r["seed"] for r in mine}), sorted({r["speed"] for r in mine})
    value = {(r["seed"], r["speed"]): r["mean_return"] / max(random[(r["seed"], split, r["speed"])], MIN_RANDOM_SUCCESS)
             for r in mine}
    return np.array([[value[(seed, speed)] for speed in speeds] for seed in seeds])


def retention_scores(rows: list[dict], agent: str, inside: bool) -> np.ndarray:
    """Per seed: the mean return at the held-out speeds inside the training range (`inside`, interpolation) or
    outside it (extrapolation), divided by the same run's mean return at the training speeds. A ratio within each
    run, so skill at the training speeds, which comes before the treatment, does not count as generalisation."""
    mine = [r for r in rows if r["agent"] == agent]
    train_speeds = [r["speed"] for r in mine if r["split"] == "train"]
    lo, hi = min(train_speeds), max(train_speeds)
    out = []
    for seed in sorted({r["seed"] for r in mine}):
        train = np.mean([r["mean_return"] for r in mine if r["seed"] == seed and r["split"] == "train"])
        held = [r["mean_return"] for r in mine if r["seed"] == seed and r["split"] == "ood"
                and (lo < r["speed"] < hi) == inside]
        out.append(np.mean(held) / max(train, 1e-6))
    return np.array(out)


def speed_tracking(rows: list[dict], max_error: float = 0.5) -> dict:
    """Whether one run tracks the commanded speed, from its training-speed evaluation rows (with each episode's mean
    forward speed): the achieved speed rises with the target (least-squares slope > 0) and the mean relative error
    |achieved - target| / target is below `max_error` (half the target by default). Runs evaluated before forward
    speeds were recorded raise: the rule cannot be judged from returns, which a good posture earns without walking.
    {"slope", "relative_error", "tracks"}."""
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
    return {"slope": slope, "relative_error": error, "tracks": slope > 0 and error < max_error}


def generalization_claims(rows: list[dict], check: dict, scale: str, reps: int = 2000,
                          hierarchy: str = "director") -> list[dict]:
    """Claim (b) on a speed task, as retention: each run's return at held-out speeds over its own return at the
    training speeds, one row for the held-out speeds inside the training range (interpolation) and one for those
    outside (extrapolation); higher is better. `hierarchy` (director or director+wr) is compared with dreamer. The
    gate is `check`, judged on the training speeds before the held-out ones (for walker_speed the speed-tracking rule,
    `tracking_from_rows`), for these two agents (`pair_check`)."""
    from hrl_core.analysis import stats

    missing = {hierarchy, "dreamer"} - {r["agent"] for r in rows}
    if missing:
        raise ValueError(f"agents={sorted({r['agent'] for r in rows})} is not valid for the claim; it compares "
                         f"{hierarchy} with dreamer (missing: {', '.join(sorted(missing))})")
    check = pair_check(check, hierarchy)
    train = [r["speed"] for r in rows if r["split"] == "train"]
    claims = []
    for inside, kind in ((True, "interpolation"), (False, "extrapolation")):
        if not any(r["split"] == "ood" and (min(train) < r["speed"] < max(train)) == inside for r in rows):
            continue
        claims.append(stats.claim_row(f"(b) hierarchy generalizes to held-out speeds ({kind})",
                                      "held-out return / own training-speed return",
                                      retention_scores(rows, hierarchy, inside),
                                      retention_scores(rows, "dreamer", inside), True, check["learned"], scale, reps,
                                      gate=gate_text(check), hierarchy=hierarchy))
    return claims


def run_scale(runs, task, agents, seeds) -> str:
    """What the evidence is: preset, policy steps per run (per agent when they differ) and seeds, read from the
    runs themselves."""
    from hrl_core.rundir import read_spec, trained_steps

    steps = {}
    for agent in agents:
        path = require_run(runs, task, agent, seeds[0])
        preset = read_spec(path).preset
        reached = trained_steps(path)
        steps[agent] = "?" if reached is None else reached
    counts = (f"{next(iter(steps.values()))} steps per run" if len(set(steps.values())) == 1
              else ", ".join(f"{agent} {n}" for agent, n in steps.items()) + " steps")
    return f"{preset} preset, {counts}, {len(seeds)} seed{'s' if len(seeds) != 1 else ''}"


def generalization_summary(rows: list[dict]) -> dict:
    """Per agent: mean return over training speeds, over held-out speeds, and their ratio."""
    summary = {}
    for agent in sorted({r["agent"] for r in rows}):
        means = {split: float(np.mean([r["mean_return"] for r in rows if r["agent"] == agent and r["split"] == split]))
                 for split in ("train", "ood")}
        means["ood_over_train"] = means["ood"] / means["train"] if means["train"] else float("nan")
        summary[agent] = means
    return summary


def finetune_path(runs, target_task: str, variant: str, seed: int, novelty: str | None = None) -> Path:
    slug = variant.split(" (")[0].replace(": ", "-").replace("+", "").replace(" ", "_")
    return Path(runs) / f"finetune-{target_task}{'' if novelty is None else '-' + novelty}-{slug}-s{seed}"


def finished_as(logdir: Path, spec, steps: int) -> bool:
    """Whether `logdir` holds this run, finished at `steps` or beyond: the same spec, its source run compared by
    folder name (a run made from another copy of reference/ is the same run). Such a run is not trained again. A run
    stored without its learned state (`export_run(learned=False)`, the reference fine-tuning runs) that is not this
    finished run cannot be continued: ValueError."""
    from dataclasses import replace

    from hrl_core.rundir import has_spec, is_finished, is_record, read_spec

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


def finetune_grid(runs, source_task: str, target_task: str, seeds, steps: int, variants=None, novelties=(None,),
                  preset: str = "tiny", time_limit: float | None = None, progress: bool = True,
                  out_runs=None, executor: str = "local", address: str | None = None,
                  max_parallel: int | None = None, vectorize: bool | None = None) -> dict:
    """Fine-tunes the `source_task` runs of each seed on `target_task`, one run per variant and novelty grade
    (maze_novel's `novelty` option; None keeps the task's default); {(variant, novelty, seed): logdir}. Each run
    inherits the source run's body, maze size and other INHERITED_OPTIONS. The fine-tuning runs are written under
    `out_runs` (default: `runs`), so read-only source runs (the repository's reference/) stay untouched.
    `executor`, `address` and `max_parallel` say where the runs execute (hrl_core/executor.py); `vectorize` as in
    `train_grid`."""
    from hrl_core.executor import run_jobs
    from hrl_core.rundir import RunSpec, read_spec
    from hrl_core.validation import check_choice

    variants = list(variants or FINETUNE_VARIANTS)
    for name in variants:
        check_choice("variants", name, FINETUNE_VARIANTS)
    prefill = finetune_prefill(preset)
    if steps <= prefill:
        raise ValueError(f"steps={steps} is not valid for fine-tuning at the {preset} preset: updates start after a "
                         f"{prefill}-step prefill, so steps must be > {prefill} (and well above it for curves)")
    seeds = [seeds] if isinstance(seeds, int) else list(seeds)
    starts = {agent for agent, _, start in (FINETUNE_VARIANTS[v] for v in variants) if start}
    sources = {(agent, seed): require_run(runs, source_task, agent, seed) for agent in starts for seed in seeds}
    source_options = {}  # every run of a seed inherits its options from that seed's source run
    for seed in seeds:
        saved = read_spec(require_run(runs, source_task, FINETUNE_VARIANTS[variants[0]][0], seed)).env_options
        source_options[seed] = {k: v for k, v in saved.items() if k in INHERITED_OPTIONS}
    paths, jobs = {}, []
    for name, novelty in [(v, n) for n in novelties for v in variants]:
        agent, parts, start = FINETUNE_VARIANTS[name]
        logdirs = {seed: finetune_path(out_runs or runs, target_task, name, seed, novelty) for seed in seeds}
        paths.update({(name, novelty, seed): logdir for seed, logdir in logdirs.items()})
        apart = lambda seed: json.dumps(source_options[seed], sort_keys=True)  # noqa: E731
        for group in _groups(logdirs, steps, vectorized(vectorize), apart):
            options, schedule = _run_settings(steps, time_limit, {**source_options[group[0]], **(
                {} if novelty is None else {"novelty": novelty})}, FINETUNE_LOGS, 10, prefill)
            config = {**(update_options(sources[agent, group[0]]) if start else {}),
                      **({"train_parts": parts} if parts else {})}
            specs = {logdirs[seed]: RunSpec.create(target_task, agent, seed, preset, options, config,
                                                   sources[agent, seed] if start else None) for seed in group}
            specs = {logdir: spec for logdir, spec in specs.items() if not finished_as(logdir, spec, steps)}
            if specs:
                jobs.append(_training_job(specs, schedule, progress and executor == "local"))
    run_jobs(jobs, executor, address, max_parallel, progress, desc="fine-tune variants", folders=[out_runs or runs],
             files=list(sources.values()))
    return paths


def update_options(source) -> dict:
    """The update options a fine-tuning run inherits from its source run, so that the state it carries over fits:
    Director's normaliser, entropy, code mix, optimiser and critic choices (a run trained before Director's own
    update keeps the earlier one)."""
    from hrl_core.config import DIRECTOR_UPDATE_FIELDS
    from hrl_core.rundir import read_spec

    cfg = read_spec(source).config
    return {k: getattr(cfg, k) for k in DIRECTOR_UPDATE_FIELDS} if cfg.agent in DIRECTORS else {}


def finetune_prefill(preset: str) -> int:
    """Policy steps a fine-tuning run collects before its first update: one replayed sequence per environment. The
    trained source needs no long prefill; the default (batch x length, 256 at the cpu preset) would leave a short
    fine-tuning budget without a single update."""
    from hrl_core.config import make_config

    cfg = make_config(preset)
    return cfg.batch_length * cfg.num_envs


def steps_to_threshold(records: list[dict], threshold: float, metric: str = "episode/return", smooth: int = 3):
    """First logged step at which the running mean of the last `smooth` values of `metric` reaches `threshold`;
    None when it never does within the run."""
    points = [(r["step"], r[metric]) for r in records if metric in r]
    for i in range(len(points)):
        window = [v for _, v in points[max(0, i - smooth + 1):i + 1]]
        if np.mean(window) >= threshold:
            return int(points[i][0])
    return None


def composition_grid(runs, task: str, agents, seeds, episodes: int, schedule=None, time_limit: float | None = None,
                     policy: str = "eval", progress: bool = True, store: bool = False) -> list[dict]:
    """Runs each trained run of `task` zero-shot on its composed task (`envs.composed_task`: the target speed
    switches within the episode, see envs/locomotion.py), and the uniform random policy on the same episodes (agent
    "random", one per seed). Each trained run also runs `episodes` episodes at each speed the schedule switches to,
    held for the whole episode: its fixed-speed error over the same steps (analysis/composition.fixed_speed_error).

    Environment seeds are the run's seed + 20000, as in every evaluation. One row per (agent, seed): its summary
    (analysis/composition.summarize, plus "fixed_error" for trained runs; Director's code change window is 2K steps
    after each switch), each episode's return, and the first episode's target and velocity for plotting.

    A row stored in its run with the same parameters and step (`rundir.stored_analysis`; the random policy's in the
    run of agents[0]) is read instead of computed; store=True writes each computed row into its run."""
    from tqdm.auto import tqdm

    from hrl_core.rundir import analysis

    rows = []
    grid = [(a, s) for s in seeds for a in [*agents, "random"]]
    for agent, seed in tqdm(grid, desc="composed task", disable=not progress):
        source = require_run(runs, task, agents[0] if agent == "random" else agent, seed)
        name = "composition_random" if agent == "random" else "composition"
        params = {"schedule": schedule, "time_limit": time_limit, "episodes": episodes,
                  "policy": "random" if agent == "random" else policy}
        rows.append(analysis(source, name, params, lambda: _composition_row(source, agent, seed, params), store))
    return rows


def _composition_row(source: Path, agent: str, seed: int, params: dict) -> dict:
    """One row of `composition_grid`: `agent` ("random" for the uniform random policy) with the spec of `source`."""
    from hrl_core.analysis import composition
    from hrl_core.envs import composed_task, make_env
    from hrl_core.rundir import load_agent, read_spec

    spec = read_spec(source)
    ag, state = (None, None) if agent == "random" else load_agent(source)[:2]
    options = {k: v for k, v in spec.env_options.items() if k in ("action_repeat", "size", "conditioning")}

    def rollouts(speeds):
        env = make_env(composed_task(spec.task), seed=seed + 20_000, schedule=speeds, time_limit=params["time_limit"],
                       **options)
        out = composition.switch_rollouts(ag, state, env, params["episodes"], seed + 20_000, params["policy"])
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


def decision_responses(runs, task: str, agents, seeds, perturbations: int, window: int, progress: bool = True,
                       store: bool = False) -> dict:
    """Notebook 02's measurement, {agent: [per-seed `analysis.horizon.decision_response`]}: each run's reward
    response to a K-step perturbation at `perturbations` decision times, over `window` steps, in an episode with
    environment seed = the run's seed + 30000. A result stored in the run with the same parameters and step
    (`rundir.stored_analysis`) is read instead of computed; store=True writes each computed one into its run."""
    from hrl_core.analysis.horizon import decision_response
    from hrl_core.envs import make_env
    from hrl_core.rundir import analysis, load_agent

    def measure(path, seed):
        agent, state, run = load_agent(path)
        make = functools.partial(make_env, task, seed=seed + 30_000, **run.spec.env_options)
        return decision_response(agent, state, make, perturbations, window, seed=seed, progress=progress)

    measured = {agent: [] for agent in agents}
    for agent_name in agents:
        for seed in seeds:
            path = require_run(runs, task, agent_name, seed)
            params = {"perturbations": perturbations, "window": window, "env_seed": seed + 30_000}
            measured[agent_name].append(analysis(path, "decision_response", params, lambda: measure(path, seed),
                                                 store))
    return measured


def composition_claims(rows: list[dict], check: dict, scale: str, reps: int = 2000,
                       hierarchy: str = "director") -> list[dict]:
    """The composition claim, two rows on the speed tracking error after switches (m/s, lower is better), one value
    per seed: relative to the same run's error at fixed speeds over the same steps (what switching costs it), and
    relative to the random policy's on the same episodes; `hierarchy` (director or director+wr) against dreamer. The
    gate is `check`, the walker runs' skill at the training speeds (`tracking_check`) for these two agents, judged
    before the composed task: gating on the composed task itself would turn "Director does not compose" into no
    answer."""
    from hrl_core.analysis import stats

    random = {r["seed"]: r["summary"]["error"] for r in rows if r["agent"] == "random"}

    def scores(agent, relative_to):
        mine = sorted((r for r in rows if r["agent"] == agent), key=lambda r: r["seed"])
        if not mine:
            raise ValueError(f"no {agent} rows: the composition claims compare {hierarchy} with dreamer")
        return np.array([r["summary"]["error"] / max(r["summary"]["fixed_error"] if relative_to == "fixed"
                                                      else random[r["seed"]], 1e-6) for r in mine])

    check = pair_check(check, hierarchy)
    learned, gate = check["learned"], gate_text(check)
    return [stats.claim_row("(b) hierarchy composes skills zero-shot", f"error after switches / {relative}",
                            scores(hierarchy, kind), scores("dreamer", kind), False, learned, scale, reps, gate=gate,
                            hierarchy=hierarchy)
            for kind, relative in (("fixed", "own error at fixed speeds"), ("random", "random policy's"))]


def final_return_intervals(rows: list[dict], tasks, agents, reps: int = 2000) -> dict:
    """{task: {agent: {"iqm", "low", "high"}}}: IQM over seeds of the runs' final training returns, 95% CIs
    (runs without a finished episode are left out; an agent with none gets NaN)."""
    from hrl_core.analysis import stats

    out = {}
    for task in tasks:
        scores = {a: np.array([r["final_return"] for r in rows if r["task"] == task and r["agent"] == a
                               and np.isfinite(r["final_return"])]) for a in agents}
        present = {a: s for a, s in scores.items() if len(s)}
        estimates = stats.interval_estimates(present, reps=reps) if present else {}
        out[task] = {a: estimates.get(a, {"iqm": float("nan"), "low": float("nan"), "high": float("nan")})
                     for a in agents}
    return out


def finetune_results(paths: dict, episodes: int, threshold_factor: float, progress: bool = True) -> list[dict]:
    """One row per fine-tuning run of `finetune_grid`'s {(variant, novelty, seed): logdir}: final training return,
    evaluation return and, on the same episodes, the uniform random policy's success (computed once per novelty
    and seed), and the steps it needed to reach the grade's threshold, fixed before any run:
    `threshold_factor` x the random policy's mean success on that grade (floored at MIN_RANDOM_SUCCESS, capped at
    1). A run that never reaches it within its budget is censored: "steps_to_threshold" None and "reached" False.
    A run that made no update is an error: it would be its source, unchanged, scored as fine-tuned."""
    from tqdm.auto import tqdm

    from hrl_core.evaluate import evaluate_run
    from hrl_core.rundir import read_metrics, read_summary

    if not threshold_factor > 0:
        raise ValueError(f"threshold_factor={threshold_factor!r} is not valid; it must be a positive multiple of the "
                         "random policy's success")
    rows, random = [], {}
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
        evaluation = evaluate_run(path, "train", episodes, reuse=True)["results"][0]["mean_return"]
        rows.append({"variant": variant, "novelty": novelty, "seed": seed, "records": records, "updates": updates,
                     "budget": summary["step"], "final_training_return": final_return(records),
                     "evaluation_return": evaluation,
                     "random_return": random[novelty, seed]})
    for novelty in dict.fromkeys(r["novelty"] for r in rows):
        grade = [r for r in rows if r["novelty"] == novelty]
        chance = np.mean([random[novelty, seed] for seed in {r["seed"] for r in grade}])
        threshold = float(min(1.0, threshold_factor * max(chance, MIN_RANDOM_SUCCESS)))
        for r in grade:
            reached = steps_to_threshold(r["records"], threshold)
            r.update({"threshold": threshold, "reached": reached is not None, "steps_to_threshold": reached})
    for r in rows:
        del r["records"]
    return rows


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
    from hrl_core.analysis import stats

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
    most grades, so the test is on ranks: `stats.claim_row(censored=True)`) and the evaluation return after
    fine-tuning (higher is better; its mean over grades). The gate is `check`, the source runs' skill on the source
    maze (`learned_check` on it), judged before fine-tuning: gating on the fine-tuned return would turn "Director
    fails to adapt" into no answer."""
    from hrl_core.analysis import stats

    novelties = list(dict.fromkeys(r["novelty"] for r in rows))
    seeds = sorted({r["seed"] for r in rows})

    def matrix(variant, measure):
        table = {(r["seed"], r["novelty"]): r[measure] for r in rows if r["variant"] == variant}
        missing = [(s, n) for s in seeds for n in novelties if (s, n) not in table]
        if missing:
            raise ValueError(f"variant {variant!r} has no fine-tuning run for (seed, novelty) {missing}")
        return np.array([[np.inf if table[s, n] is None else table[s, n] for n in novelties] for s in seeds],
                        dtype=np.float64)

    def steps(variant):
        return np.median(matrix(variant, "steps_to_threshold"), axis=1)

    hierarchy = FINETUNE_VARIANTS[director_variant][0]
    check = pair_check(check, hierarchy)
    learned, gate = check["learned"], gate_text(check)
    label = f"{director_variant} vs {dreamer_variant}"
    return [stats.claim_row("(c) hierarchy adapts with less fine-tuning", f"steps to threshold ({label})",
                            steps(director_variant), steps(dreamer_variant), False, learned, scale, reps, gate=gate,
                            censored=True, hierarchy=hierarchy),
            stats.claim_row("(c) hierarchy adapts with less fine-tuning", f"return after fine-tuning ({label})",
                            matrix(director_variant, "evaluation_return"), matrix(dreamer_variant, "evaluation_return"),
                            True, learned, scale, reps, gate=gate, hierarchy=hierarchy)]


def learned_check(runs, task, agents, seeds, episodes: int, learned_factor: float, policy: str = "eval",
                  where: str = "at the training speeds") -> dict:
    """The gate of a claim that starts from a learned `task` (the source maze): `learned_from_rows` on training-split
    evaluations of the runs and the uniform random policy on the same episodes."""
    rows = evaluate_grid(runs, task, agents, seeds, episodes, policy, splits=("train",))
    baseline = random_baseline(runs, task, agents[0], seeds, episodes, splits=("train",))
    return learned_from_rows(rows, baseline, agents, learned_factor, where)


def learned_from_rows(rows: list[dict], baseline: list[dict], agents, learned_factor: float,
                      where: str = "at the training speeds", reps: int = 2000) -> dict:
    """Every agent learned: its per-seed return / random return (each run's mean over the training speeds or
    mazes) passes `learned_factor` with its interval over seeds, not only with its mean.
    {"learned", "rule", "agents": {agent: interval with "per_seed"}, "failed": {agent: how it failed, in words}}."""
    from hrl_core.analysis import stats

    agents_out, failed = {}, {}
    for agent in agents:
        per_seed = stats.per_seed(normalised_scores(rows, baseline, agent, "train"))
        iv = {**stats.mean_interval(per_seed, reps), "per_seed": per_seed.tolist()}
        agents_out[agent] = iv
        if iv["low"] < learned_factor:
            failed[agent] = (f"{agent} reached {iv['point']:.2g}x random {where} [{iv['low']:.2g}, {iv['high']:.2g}], "
                             f"below {learned_factor:g}x")
    return {"learned": not failed, "rule": f"return >= {learned_factor:g}x random {where}, interval over seeds",
            "agents": agents_out, "failed": failed}


def tracking_check(runs, task, agents, seeds, episodes: int, max_error: float = 0.5, policy: str = "eval") -> dict:
    """The gate of the speed claims (a), (b) and composition: `tracking_from_rows` on training-speed evaluations."""
    return tracking_from_rows(evaluate_grid(runs, task, agents, seeds, episodes, policy, splits=("train",)),
                              agents, max_error)


def tracking_from_rows(rows: list[dict], agents, max_error: float = 0.5, reps: int = 2000) -> dict:
    """Every agent tracks the commanded speed at the training speeds, the skill the speed claims are about (a good
    posture earns a walker 3x the random return without walking): each run's `speed_tracking` slope and relative
    error, and the agent passes when the interval over seeds of its slope lies above 0 and that of its error below
    `max_error`. Same result shape as `learned_from_rows`."""
    from hrl_core.analysis import stats

    agents_out, failed = {}, {}
    for agent in agents:
        mine = [r for r in rows if r["agent"] == agent and r["split"] == "train"]
        runs = [speed_tracking([r for r in mine if r["seed"] == seed], max_error)
                for seed in sorted({r["seed"] for r in mine})]
        slope = stats.mean_interval([r["slope"] for r in runs], reps)
        error = stats.mean_interval([r["relative_error"] for r in runs], reps)
        agents_out[agent] = {"slope": slope, "relative_error": error, "per_seed": runs}
        if not (slope["low"] > 0 and error["high"] < max_error):
            failed[agent] = (f"{agent} did not track the target speed: error {error['point']:.2g} of it "
                             f"[{error['low']:.2g}, {error['high']:.2g}], slope {slope['point']:.2g} "
                             f"[{slope['low']:.2g}, {slope['high']:.2g}]")
    return {"learned": not failed, "rule": f"tracks the target speed: slope > 0, relative error < {max_error:g}, "
            "interval over seeds", "agents": agents_out, "failed": failed}


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
    the window, is censored at the window: the window was too short to see its reach, which is at least that. The
    gate is `check` (`tracking_check`) for these two agents."""
    from hrl_core.analysis import stats

    def reach(result):
        window = len(result["lags"])
        value = result["l90_steps"]
        return window if value is None or not result.get("decayed", True) else value

    scores = {a: np.array([reach(r) for r in measured[a]], dtype=float) for a in (hierarchy, "dreamer")}
    check = pair_check(check, hierarchy)
    return stats.claim_row("(a) hierarchy shortens the effective horizon",
                           "L90 of a K-step perturbation (environment steps)",
                           scores[hierarchy], scores["dreamer"], False, check["learned"], scale, reps,
                           gate=gate_text(check), hierarchy=hierarchy)
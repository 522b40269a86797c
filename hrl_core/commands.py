"""Sub-commands for training, evaluation, benchmarks and the notebook series."""

from __future__ import annotations

import argparse
import json
import sys


def parse_option(text: str):
    """KEY=VALUE with VALUE read as JSON when it parses (numbers, true/false, null), else as a string."""
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"--option expects KEY=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    try:
        return key, json.loads(value)
    except json.JSONDecodeError:
        return key, value


def _options(pairs) -> dict:
    return dict(pairs or [])


def cmd_train(args) -> int:
    """Prints the run's summary (JSON; a list with --seeds) and exits 0, also when SIGINT/SIGTERM stopped it early:
    the runs are then checkpointed at the step reached, which one line on stderr names, and --resume continues."""
    from hrl_core.rundir import RunSpec
    from hrl_core.train import Schedule, seed_logdirs, train_seeds

    seeds = [args.seed] if args.seeds is None else _int_list(args.seeds, 0, "0,1,2,3")
    specs = [RunSpec.create(args.task, args.agent, seed, args.preset, _options(args.option), _options(args.config),
                            args.init_from) for seed in seeds]
    schedule = Schedule(args.steps, args.checkpoint_every, args.log_every, args.evaluate_every,
                        evaluate_policy=args.evaluate_policy)
    summaries = train_seeds(dict(zip(seed_logdirs(args.logdir, seeds), specs)), schedule, resume=args.resume,
                            env_workers=args.env_workers, progress=not args.no_progress)
    print(json.dumps(summaries[0] if args.seeds is None else summaries, indent=1))
    step = summaries[0]["step"]
    if summaries[0]["interrupted"]:
        print(f"hrl train: interrupted at step {step}; checkpoint saved in {args.logdir}/ckpt; continue with --resume"
              if step else "hrl train: interrupted before the first step; nothing saved", file=sys.stderr)
    return 0


def _int_list(text: str, smallest: int, example: str) -> list[int]:
    """--seeds's comma-separated integers, each at least `smallest` (0 for seeds, 1 for seed counts)."""
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        values = []
    if not values or min(values) < smallest:
        kind = "non-negative" if smallest == 0 else "positive"
        raise ValueError(f"--seeds={text!r} is not valid; give comma-separated {kind} integers, e.g. {example}")
    return values


def cmd_eval(args) -> int:
    from hrl_core.evaluate import evaluate_run

    result = evaluate_run(args.logdir, args.split, args.episodes, out=args.out, env_options=_options(args.option),
                          policy=args.policy, frames=args.frames)
    for row in result["results"]:
        speed = "" if row["speed"] is None else f" speed {row['speed']:g}"
        print(f"{result['task']}{speed}: mean return {row['mean_return']:.1f} over {len(row['returns'])} episodes")
    return 0


def cmd_export(args) -> int:
    from hrl_core.learned import export_run

    out = export_run(args.logdir, args.out, learned=not args.record_only, precision=args.precision)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    print(f"exported {args.logdir} to {out} ({size / 1e6:.1f} MB)")
    return 0


def cmd_bench(args) -> int:
    from hrl_core import bench

    # One JSON line per measurement, printed as soon as it is measured: a run killed at a time limit keeps every row
    # it reached (scripts/gpu_check.sh).
    if args.what == "envs":
        for task in args.tasks or ["walker_walk", "cheetah_run", "quadruped_walk", "maze_train"]:
            print(json.dumps(bench.bench_envs([task], seconds=args.seconds, num_envs=args.num_envs)[0]), flush=True)
        print(json.dumps({"render_mean_abs_diff_walker": round(bench.render_difference(), 3)}), flush=True)
    else:
        sizes = [None] if args.image_sizes is None else _int_list(args.image_sizes, 1, "32,64")
        for size in sizes:  # back to back in one process: the sizes compared under the same conditions
            for n in _int_list(args.seeds, 1, "1,2,4,8"):
                print(json.dumps(bench.bench_train(args.preset, args.agent, updates=args.updates, seeds=n,
                                                   count_flops=not args.no_flops, image_size=size)), flush=True)
    return 0


def register(sub) -> None:
    from hrl_core.agents.common import POLICY_MODES
    from hrl_core.evaluate import EVAL_POLICIES, EVALUATION_SPLITS
    from hrl_core.config import AGENTS, PRESETS
    from hrl_core.rundir import EXPORT_PRECISIONS

    p = sub.add_parser("train", help="train an agent; checkpoints under LOGDIR/ckpt, metrics in LOGDIR/metrics.jsonl")
    p.add_argument("--agent", choices=AGENTS, default="dreamer")
    p.add_argument("--task", required=True)
    p.add_argument("--preset", choices=list(PRESETS), default="tiny")
    p.add_argument("--steps", type=int, required=True, help="policy steps, summed over environments")
    p.add_argument("--logdir", required=True)
    seed = p.add_mutually_exclusive_group()
    seed.add_argument("--seed", type=int, default=0)
    seed.add_argument("--seeds", metavar="S,S,...",
                      help="train one run per seed in this one process (vectorized over seeds, sharded over the "
                           "local devices); LOGDIR must contain {seed}, e.g. runs/walker_speed-dreamer-s{seed}")
    p.add_argument("--env-workers", type=int, metavar="N",
                   help="environment worker processes for all the runs together (default: the core count)")
    p.add_argument("--resume", action="store_true", help="continue from LOGDIR's last checkpoint")
    p.add_argument("--init-from", help="start from a trained run's parameters (fine-tuning)")
    p.add_argument("--train-parts", help="comma-separated parts that learn, e.g. WM,M (see hrl_core/config.py)")
    p.add_argument("--checkpoint-every", type=int, default=1000)
    p.add_argument("--log-every", type=int, default=250)
    p.add_argument("--eval-every", dest="evaluate_every", type=int, default=0,
                   help="policy steps between evaluation returns in the metrics (0: none)")
    p.add_argument("--eval-policy", dest="evaluate_policy", choices=POLICY_MODES, default="eval",
                   help="how the policy acts in those evaluations (the CPU study's training curves: eval)")
    p.add_argument("--option", type=parse_option, action="append", metavar="KEY=VALUE", help="task option")
    p.add_argument("--config", type=parse_option, action="append", metavar="KEY=VALUE", help="config override")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=_with_parts(cmd_train))

    p = sub.add_parser("eval", help="evaluate a run's last checkpoint; writes LOGDIR/eval_SPLIT.json")
    p.add_argument("--logdir", required=True)
    p.add_argument("--split", choices=EVALUATION_SPLITS, default="train",
                   help="gate: the training speeds on episodes of their own, for a claim's skill-learned check")
    p.add_argument("--episodes", type=int, default=2)
    p.add_argument("--policy", choices=EVAL_POLICIES, default="eval",
                   help="eval: each agent's reference evaluation behaviour; mode: deterministic; train: as in "
                        "training; random: uniform random actions on the same episodes (the baseline)")
    p.add_argument("--out")
    p.add_argument("--frames", help="save the first evaluation episode's frames: a .png strip or a .gif")
    p.add_argument("--option", type=parse_option, action="append", metavar="KEY=VALUE")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("export", help="copy a run's config, metrics, evaluations and learned state (no optimiser "
                                      "state, no replay) into a small folder that loads like the run")
    p.add_argument("--logdir", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--record-only", action="store_true",
                   help="copy only config, metrics, summary and evaluations, without the learned state")
    p.add_argument("--precision", choices=EXPORT_PRECISIONS, default="float32",
                   help="float16: weights rounded to half the bytes; only the random policy's evaluations are "
                        "copied, so evaluate the export itself afterwards")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("bench", help="measure throughput: envs (agent steps/s) or train (updates/s, FLOPs)")
    p.add_argument("what", choices=["envs", "train"])
    p.add_argument("--tasks", nargs="*")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--num-envs", type=int, default=2)
    p.add_argument("--preset", choices=list(PRESETS), default="tiny")
    p.add_argument("--agent", choices=AGENTS, default="dreamer")
    p.add_argument("--updates", type=int, default=5)
    p.add_argument("--seeds", default="1", metavar="N[,N...]",
                   help="train: seeds per vectorized update, e.g. 1,2,4,8 for one row per count")
    p.add_argument("--no-flops", action="store_true", help="train: skip counting FLOPs (a second, larger compile)")
    p.add_argument("--image-sizes", metavar="N[,N...]", help="train: one row per image size (32, 48, 64), e.g. 32,64")
    p.set_defaults(func=cmd_bench)
    register_notebooks(sub)


def _with_parts(func):
    def run(args):
        if args.train_parts:
            args.config = list(args.config or []) + [("train_parts", tuple(args.train_parts.split(",")))]
        return func(args)
    return run


def cmd_notebooks(args) -> int:
    from hrl_core.series import NotebookFailed, run_series

    try:
        executed = run_series(args.preset, args.only, args.out, _options(args.param), progress=not args.no_progress,
                              runs=args.runs, placement=_placement(args, keep_own=True))
    except NotebookFailed as err:
        print(f"hrl notebooks: error: {err}", file=sys.stderr)
        return 1
    import nbformat

    for path in executed:
        seconds = nbformat.read(path, as_version=4).metadata.papermill.duration
        print(f"{path.stem}: {seconds:.0f} s -> {path} and {path.with_suffix('')}/")
    return 0


def register_notebooks(sub) -> None:

    p = sub.add_parser("notebooks", help="run the notebook series through papermill, in order (the main job)")
    p.add_argument("--preset", default="tiny", help="tiny (CPU, the default) or a GPU scale: size1m, S, M")
    p.add_argument("--only", nargs="*", metavar="NN", help="run only these notebooks, e.g. --only 03 04")
    p.add_argument("--out", help="output folder (default outputs/notebooks/PRESET, or .../RUNS' folder name)")
    p.add_argument("--runs", help="analyse these trained runs (e.g. reference: the repository's trained agents) "
                                  "instead of training the tiny ones; notebooks 02-07")
    p.add_argument("--param", type=parse_option, action="append", metavar="KEY=VALUE",
                   help="a notebook parameter for every notebook that declares it, e.g. steps=1000 seeds=[0,1,2]")
    add_executor_flags(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_notebooks)
    register_grid(sub)


def _placement(args, keep_own: bool = False):
    """The Placement that --executor, --address, --max-parallel and (hrl grid's) --vectorize name (validated here,
    before anything starts); with `keep_own` and none of them given, None (each notebook keeps its own)."""
    from hrl_core.executor import Placement

    if keep_own and (args.executor, args.address, args.max_parallel) == (None, None, None):
        return None
    vectorize = {"auto": None, "on": True, "off": False}[getattr(args, "vectorize", "auto")]
    return Placement(args.executor or "local", args.address, args.max_parallel, vectorize)


def add_executor_flags(p) -> None:
    from hrl_core.executor import EXECUTORS

    p.add_argument("--executor", choices=EXECUTORS, default=None,
                   help="where runs execute: local (one after another in this process, the default) or ray (each "
                        "run a Ray task)")
    p.add_argument("--address", help="with --executor ray: auto (the cluster this machine is a node of), "
                                     "ray://HOST:PORT (Ray Client) or HOST:PORT; default: start a Ray here")
    p.add_argument("--max-parallel", type=int, metavar="N", help="with --executor ray: at most N runs at once")


def _parse_task_option(text: str):
    """TASK:KEY=VALUE, VALUE read as in --option."""

    task, sep, rest = text.partition(":")
    if not sep or "=" not in rest:
        raise argparse.ArgumentTypeError(f"--task-option expects TASK:KEY=VALUE, got {text!r}")
    return (task, *parse_option(rest))


def cmd_grid(args) -> int:
    """Trains the grid; prints each run's folder and final step. A failed run makes the exit status 1 once the
    other runs have finished."""
    from hrl_core.executor import GridFailed
    from hrl_core.grid import Grid
    from hrl_core.study import train_grid

    task_options = {}
    for task, key, value in args.task_option or []:
        task_options.setdefault(task, {})[key] = value
    try:
        grid = Grid(args.runs, args.tasks, args.agents, args.seeds, args.preset)
        paths = train_grid(grid, args.steps, time_limits=_options(args.time_limit), task_options=task_options,
                           progress=not args.no_progress, checkpoint_every=args.checkpoint_every,
                           placement=_placement(args))
    except GridFailed as err:
        print(f"hrl grid: error: {err}", file=sys.stderr)
        return 1
    from hrl_core.rundir import read_summary

    for path in paths:
        summary = read_summary(path)
        print(f"{path}: {summary['step']} steps, {summary['updates']} updates")
    return 0


def register_grid(sub) -> None:
    from hrl_core.config import AGENTS, PRESETS

    p = sub.add_parser("grid", help="train every (task, agent, seed) run under RUNS/TASK-AGENT-sSEED without the "
                                    "notebooks (a cluster job); finished runs are kept, unfinished ones resume")
    p.add_argument("--tasks", nargs="+", required=True)
    p.add_argument("--agents", nargs="+", choices=AGENTS, default=list(AGENTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--steps", type=int, required=True, help="policy steps per run, summed over environments")
    p.add_argument("--preset", choices=list(PRESETS), default="tiny")
    p.add_argument("--runs", required=True, help="the runs folder (with --executor ray: on a file system every "
                                                 "node mounts at the same path)")
    p.add_argument("--time-limit", type=parse_option, action="append", metavar="TASK=SECONDS",
                   help="episode seconds for a task (null: the task's own)")
    p.add_argument("--task-option", type=_parse_task_option, action="append", metavar="TASK:KEY=VALUE",
                   help="a task option, e.g. maze_train:body=ball")
    p.add_argument("--checkpoint-every", type=int, metavar="N",
                   help="policy steps between checkpoints (default: about 20 a run); a lost worker costs at most this")
    p.add_argument("--vectorize", choices=["auto", "on", "off"], default="auto",
                   help="train the seeds of each task and agent in one process (auto: where JAX has an accelerator; "
                        "on a CPU that is slower than one process per run)")
    add_executor_flags(p)
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(func=cmd_grid)

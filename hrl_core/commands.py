"""Sub-commands beyond the environment tools: benchmarks (and, as the package grows, training)."""

from __future__ import annotations

import json


def cmd_bench(args) -> int:
    from hrl_core import bench

    if args.what == "envs":
        rows = bench.bench_envs(args.tasks or ["walker_walk", "cheetah_run", "quadruped_walk", "maze_train"],
                                seconds=args.seconds, num_envs=args.num_envs)
        result = {"envs": rows, "render_mean_abs_diff_walker": round(bench.render_difference(), 3)}
    print(json.dumps(result, indent=1))
    return 0


def register(sub) -> None:
    p = sub.add_parser("bench", help="measure throughput: envs (agent steps/s)")
    p.add_argument("what", choices=["envs"])
    p.add_argument("--tasks", nargs="*")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--num-envs", type=int, default=2)
    p.set_defaults(func=cmd_bench)

"""The `hrl` command: environments, training, evaluation, benchmarks and the notebook series."""

from __future__ import annotations

import argparse
import json
import sys

from hrl_core import commands


def cmd_envs(args) -> int:
    from hrl_core.envs import list_envs

    rows = list_envs()
    if args.json:
        print(json.dumps(rows, indent=1, default=str))
        return 0
    for row in rows:
        obs = ", ".join(f"{k} {tuple(v['shape'])} {v['dtype']}" for k, v in row["observation"].items())
        act = row["action"]
        print(f"{row['name']}\n  {row['description']}\n  action {tuple(act['shape'])} in [{act['low']}, {act['high']}]"
              f"\n  observation {obs}\n  options {', '.join(row['options'])}")
    return 0


def cmd_render(args) -> int:
    import numpy as np

    from hrl_core.envs import make_env
    from hrl_core.envs.frames import save_frames

    env = make_env(args.task, seed=args.seed, **dict(args.option))
    rng = np.random.default_rng(args.seed)
    frames = [env.reset()["image"]]
    for _ in range(args.steps - 1):
        frames.append(env.step(rng.uniform(env.act_space.low, env.act_space.high, env.act_space.shape))["image"])
    path = save_frames(frames, args.out)
    print(f"wrote {len(frames)} frames of {args.task} to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hrl", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("envs", help="list every task with its description, action and observation spaces")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_envs)

    p = sub.add_parser("render", help="write a strip (.png) or GIF (.gif) of frames from a random policy")
    p.add_argument("task")
    p.add_argument("--steps", type=int, default=16)
    p.add_argument("--out", required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--option", type=commands.parse_option, action="append", default=[], metavar="KEY=VALUE",
                   help="task option, e.g. --option split=ood --option conditioning=visual")
    p.set_defaults(func=cmd_render)

    commands.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
        from hrl_core.gpu import warn_if_cpu_only

        warn_if_cpu_only()  # a GPU that JAX does not see: say so once, before anything runs slowly on the CPU
        if args.command not in ("envs", "render"):  # the commands that compile
            import hrl_core

            hrl_core.enable_compilation_cache()
        try:
            return args.func(args)
        except (ValueError, FileNotFoundError) as err:
            print(f"hrl {args.command}: error: {err}", file=sys.stderr)
            return 2
    except KeyboardInterrupt:  # Ctrl-C outside a training loop (which checkpoints and returns instead)
        print("hrl: interrupted", file=sys.stderr)
        return 130

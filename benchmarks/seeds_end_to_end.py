"""End-to-end policy steps/s of one seed-vectorized `hrl train --seeds` run against the same seeds trained one
after another, back to back on this machine (compilation, environment workers and checkpoints included).

    python benchmarks/seeds_end_to_end.py --preset tiny --agent dreamer --task walker_speed --seeds 4 --steps 400

Prints a markdown table: wall-clock seconds, total policy steps/s, and the ratio.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from hrl_core import rundir


def timed(cmd: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", default="tiny")
    parser.add_argument("--agent", default="dreamer")
    parser.add_argument("--task", default="walker_speed")
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--steps", type=int, default=400, help="policy steps per seed")
    parser.add_argument("--option", action="append", default=["time_limit=5.0"], help="task option KEY=VALUE")
    args = parser.parse_args()
    seeds = list(range(args.seeds))
    with tempfile.TemporaryDirectory() as tmp:
        base = [sys.executable, "-m", "hrl_core", "train", "--preset", args.preset, "--agent", args.agent,
                "--task", args.task, "--steps", str(args.steps), "--no-progress"]
        base += [arg for option in args.option for arg in ("--option", option)]
        group = timed(base + ["--seeds", ",".join(map(str, seeds)), "--logdir", f"{tmp}/group-s{{seed}}"])
        alone = sum(timed(base + ["--seed", str(s), "--logdir", f"{tmp}/alone-s{s}"]) for s in seeds)
        assert all(rundir.is_finished(Path(tmp) / f"group-s{s}", args.steps) for s in seeds)
    total = args.steps * args.seeds
    print(f"| {args.preset} {args.agent} {args.task}, {args.seeds} seeds x {args.steps} steps | wall s | "
          "policy steps/s (all seeds) |\n|---|---|---|")
    print(f"| one process, `--seeds {','.join(map(str, seeds))}` | {group:.1f} | {total / group:.2f} |")
    print(f"| {args.seeds} processes, one after another | {alone:.1f} | {total / alone:.2f} |")
    print(f"| ratio | | {alone / group:.2f}x |")


if __name__ == "__main__":
    main()

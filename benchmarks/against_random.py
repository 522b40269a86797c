"""Each run against the uniform random policy on the same evaluation episodes, one markdown row per run and split:
the issue's bars ("3x the random return at the training speeds"; "beats the random policy in the maze, sign test
on the same episodes") read off the runs' stored evaluations (`hrl eval` and `hrl eval --policy random`, which
scripts/reference_run.sh writes).

    python benchmarks/against_random.py outputs/runs/reference/walker_speed-director-s0 [RUN ...] [--policies eval,train]

Speed tasks: the mean over target speeds of the mean return, the random policy's, their ratio, and whether the run
tracks the commanded speed (`claims.speed_tracking`: slope of achieved against target speed, mean relative error).
The maze: successes of both policies on the same episodes, and the one-sided sign test on the episodes where they
differ (`scipy.stats.binomtest`). One row per evaluation policy that the run has stored (`--policies`, default both:
"eval", each agent's reference behaviour, and "train", sampled actions and codes, which decides the study's claims).
"""

import argparse

import numpy as np
from scipy.stats import binomtest

from hrl_core.claims import speed_tracking
from hrl_core.rundir import read_evaluation


def speed_row(run: str, split: str, learned: dict, random: dict) -> str:
    mean, base = (float(np.mean([r["mean_return"] for r in e["results"]])) for e in (learned, random))
    head = f"| {run} | {learned.get('policy', 'eval')} | {split} | {mean:.1f} | {base:.1f} | {mean / base:.2f}x |"
    if learned["results"][0]["speed"] is None or any("mean_forward_speed" not in r for r in learned["results"]):
        return head + " - | - | - |"
    track = speed_tracking(learned["results"])
    achieved = ", ".join(f"{r['mean_forward_speed']:.2f}" for r in learned["results"])
    return head + f" {achieved} | {track['slope']:.3f} | {track['relative_error']:.2f} |"


def maze_row(run: str, learned: dict, random: dict) -> str:
    won, base = (np.array(e["results"][0]["returns"]) > 0 for e in (learned, random))
    better, worse = int(np.sum(won & ~base)), int(np.sum(base & ~won))
    p = binomtest(better, better + worse, 0.5, alternative="greater").pvalue if better + worse else 1.0
    return (f"| {run} | {learned.get('policy', 'eval')} | {int(won.sum())}/{won.size} | {int(base.sum())}/{base.size} | "
            f"{better} vs {worse} | {p:.2g} |")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--policies", default="eval,train", help="evaluation policies to show, comma-separated")
    args = parser.parse_args()
    speed, maze = [], []
    for run in args.runs:
        name = run.rstrip("/").split("/")[-1]
        for split in ("train", "ood", "gate"):  # gate: the training speeds on episodes of their own
            random = read_evaluation(run, split, "random")
            for policy in args.policies.split(","):
                learned = read_evaluation(run, split, policy)
                if learned is None or random is None:
                    continue
                if learned["task"].startswith("maze"):
                    maze.append(maze_row(name, learned, random))
                else:  # speed tasks per target speed; a suite task (cheetah_run) as one return
                    speed.append(speed_row(name, split, learned, random))
    if speed:
        print("| run | policy | speeds | return | random | ratio | forward speed per target (m/s) | slope | "
              "relative error |")
        print("|---|---|---|---|---|---|---|---|---|")
        print("\n".join(speed))
    if maze:
        print("| run | policy | successes | random, same episodes | episodes won vs lost | sign test p (one-sided) |")
        print("|---|---|---|---|---|---|")
        print("\n".join(maze))


if __name__ == "__main__":
    main()

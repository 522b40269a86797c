"""Director's diagnostics of one or more runs as a markdown table, one row per logged step.

    python benchmarks/director_diagnostics.py outputs/runs/reference/walker_speed-director-s0 [RUN ...] [--every 1000]

Columns: training-episode return, the manager's code entropy (nats; the maximum is codes x log(classes)) and its
entropy scale (mean over slots), the spread of its advantage before normalisation, the extrinsic return scale,
goal reach against a random goal's, and the worker's goal reward. Runs logged before these diagnostics existed show
"-" where a metric is missing (and their values are the last update's, not interval means).
"""

import argparse
import math

from hrl_core.rundir import read_metrics

COLUMNS = (("episode/return", "return"), ("manager/entropy", "code entropy"),
           ("manager/entropy_scale", "entropy scale"), ("manager/advantage_std", "advantage std"),
           ("manager/return_scale_ext", "ext. return scale"), ("goal/reach", "goal reach"),
           ("goal/reach_random", "random goal reach"), ("worker/goal_reward", "goal reward"))


def fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.3g}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+")
    parser.add_argument("--every", type=int, default=1000, help="show the rows at multiples of this step")
    args = parser.parse_args()
    print("| run | step | " + " | ".join(name for _, name in COLUMNS) + " |")
    print("|---|---|" + "---|" * len(COLUMNS))
    for run in args.runs:
        rows = read_metrics(run)
        for i, row in enumerate(rows):
            if row["step"] % args.every and i != len(rows) - 1:
                continue
            print(f"| {run.rstrip('/')} | {row['step']} | "
                  + " | ".join(fmt(row.get(key)) for key, _ in COLUMNS) + " |")


if __name__ == "__main__":
    main()

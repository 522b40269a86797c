"""Calibration of the claim tests by simulation: how often each rule declares a difference when there is none.

    python benchmarks/stats_calibration.py --studies 400

Each simulated study has two agents with no true difference, n seeds each, every seed evaluated at 4 speeds with a
run effect (one network fills a row, so its speeds are correlated). Two rules:

    earlier rule   the 95% stratified-bootstrap CI of the IQM difference (speeds as strata) excludes 0;
    current rule   the exact permutation test on per-seed means, p < 0.05 (one row, so Holm changes nothing),
                   "untestable" where n cannot reach 0.05.

Prints the fraction of studies each rule calls "supported" or "contradicted", with its Monte Carlo standard error.
"""

import argparse

import numpy as np

from hrl_core.analysis import stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=400)
    parser.add_argument("--seeds", default="2,3,5,10", help="comma-separated seeds per agent")
    parser.add_argument("--reps", type=int, default=500, help="bootstrap resamples of the earlier rule")
    args = parser.parse_args()
    print("| seeds per agent | earlier rule: false 'supported'/'contradicted' | current rule | smallest p |")
    print("|---|---|---|---|")
    for n in (int(v) for v in args.seeds.split(",")):
        rng = np.random.default_rng(n)
        old = new = 0
        for i in range(args.studies):
            runs = rng.normal(size=(2, n, 1)) + 0.5 * rng.normal(size=(2, n, 4))
            diff = stats.iqm_difference(runs[0], runs[1], reps=args.reps, seed=i)
            old += diff["low"] > 0 or diff["high"] < 0
            row = stats.claim_row("c", "m", runs[0], runs[1], True, True, "sim", reps=200, seed=i)
            new += row["verdict"] in (stats.SUPPORTED, stats.CONTRADICTED)

        def rate(k):
            p = k / args.studies
            return f"{p:.3f} +- {np.sqrt(p * (1 - p) / args.studies):.3f}"

        print(f"| {n} | {rate(old)} | {rate(new)} | {stats.smallest_p(n, n):.3g} |")


if __name__ == "__main__":
    main()

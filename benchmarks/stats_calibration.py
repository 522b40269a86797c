"""The decision rule's calibration and power, through the study's own code path (hrl_core/calibration.py: the claim
builders, per_seed, the gates, the families and Holm):

    python benchmarks/stats_calibration.py --studies 400

For each number of seeds per agent and each standardised effect (Director's advantage in run-effect standard
deviations on every measure; 0 is no difference), the fraction of simulated studies in which the primary family has
a decided row ("supported" or "contradicted"), and per primary row the fraction "supported": with effect 0 a false-
verdict rate, otherwise power. Prints a markdown table with the Monte Carlo standard error of each rate.
"""

import argparse

import numpy as np

from hrl_core import calibration, claims
from hrl_core.analysis import stats


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=400)
    parser.add_argument("--seeds", default="5,6,8", help="comma-separated seeds per agent")
    parser.add_argument("--effects", default="0,1,2,3", help="comma-separated standardised effects")
    args = parser.parse_args()
    rows = [measure for _, measure in claims.PRIMARY_ROWS.values()]
    print("| seeds per agent | effect | primary family: a decided row | " + " | ".join(rows) + " |")
    print("|---|---|---|" + "---|" * len(rows))

    def rate(p):
        return f"{p:.3f} +- {np.sqrt(p * (1 - p) / args.studies):.3f}"

    for n in (int(v) for v in args.seeds.split(",")):
        for effect in (float(v) for v in args.effects.split(",")):
            result = calibration.verdict_rates(n, effect, args.studies, seed=n)
            per_row = [next((v for m, v in result["rows"].items() if m.startswith(measure)), 0.0) for measure in rows]
            print(f"| {n} | {effect:g} | {rate(result[stats.PRIMARY])} | " + " | ".join(rate(p) for p in per_row) + " |")


if __name__ == "__main__":
    main()

"""Environment worker start-up: how long a fresh process takes to import the package's environments (what each
spawned worker does first), and how long BatchedEnv takes to start its workers and build the tasks, for two source
trees back to back (alternating, so that both see the same machine load).

    python benchmarks/worker_startup.py BEFORE_TREE AFTER_TREE [--repeats 5] [--task walker_speed]

Each tree is a checkout of this repository (e.g. `git worktree add /tmp/before REV`); its `hrl_core` is imported
from there with this interpreter. Prints one JSON row per tree: median seconds and whether importing loaded JAX.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

IMPORT = ("import sys, time; t = time.perf_counter(); import hrl_core, hrl_core.envs; "
          "print(time.perf_counter() - t, 'jax' in sys.modules)")
START = ("import time\n"
         "if __name__ == '__main__':\n"
         "    from hrl_core.envs import BatchedEnv\n"
         "    t = time.perf_counter()\n"
         "    env = BatchedEnv({task!r}, 2, parallel=True, workers=2)\n"
         "    env.reset()\n"
         "    print(time.perf_counter() - t)\n"
         "    env.close()\n")


def timed(tree: str, code: str) -> list[str]:
    env = {**os.environ, "PYTHONPATH": tree, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tree, check=True)
    return out.stdout.split()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--task", default="walker_speed")
    args = parser.parse_args()
    rows = {tree: {"import_s": [], "start_s": [], "imports_jax": None} for tree in args.trees}
    for _ in range(args.repeats):
        for tree in args.trees:
            seconds, jax_loaded = timed(tree, IMPORT)
            rows[tree]["import_s"].append(float(seconds))
            rows[tree]["imports_jax"] = jax_loaded == "True"
            rows[tree]["start_s"].append(float(timed(tree, START.format(task=args.task))[0]))
    for tree, row in rows.items():
        print(json.dumps({"tree": tree, "imports_jax": row["imports_jax"],
                          "import_s_median": round(statistics.median(row["import_s"]), 3),
                          "batched_start_s_median": round(statistics.median(row["start_s"]), 3),
                          "repeats": args.repeats}))


if __name__ == "__main__":
    main()

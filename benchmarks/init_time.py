"""Seconds to the first initial agent state in a fresh process: op-by-op (`agent.init`, what every run and every
`load_agent` did before) against one jitted init (`jax.jit(agent.init)`), with an empty and then a warm persistent
compilation cache. Each measurement is its own Python process, as a run, an evaluation or a notebook kernel is.

    python benchmarks/init_time.py --preset cpu --repeats 3
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = """
import json, sys, time
import jax, hrl_core
from hrl_core.agents import make_agent
from hrl_core.config import make_config
from hrl_core.envs import spaces
hrl_core.enable_compilation_cache()
preset, agent_name, jitted = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
agent = make_agent(make_config(preset, agent=agent_name), *spaces("walker_speed", {}))
start = time.perf_counter()
init = jax.jit(agent.init) if jitted else agent.init
jax.block_until_ready(init(jax.random.PRNGKey(0)))
print(json.dumps(time.perf_counter() - start))
"""


def measure(preset: str, agent: str, jitted: bool, cache: str) -> float:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "HRL_JAX_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", CHILD, preset, agent, str(int(jitted))], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print("| agent | op by op (s) | jitted, empty cache (s) | jitted, warm cache (s) |")
    print("|---|---|---|---|")
    for agent in ("dreamer", "director"):
        eager, cold, warm = [], [], []
        for _ in range(args.repeats):
            eager.append(measure(args.preset, agent, False, ""))
            with tempfile.TemporaryDirectory() as cache:
                cold.append(measure(args.preset, agent, True, cache))
                warm.append(measure(args.preset, agent, True, cache))
        print(f"| {agent} | {statistics.median(eager):.1f} | {statistics.median(cold):.1f} | "
              f"{statistics.median(warm):.1f} |")


if __name__ == "__main__":
    main()

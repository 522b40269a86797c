"""Milliseconds per cpu-preset update of one agent, in this process, under the JAX and XLA settings of its
environment: the PRNG implementation from PRNG (e.g. rbg), XLA flags from XLA_FLAGS.

    PRNG=rbg python benchmarks/update_time.py dreamer [updates]

Prints one JSON line; benchmarks/update_levers.sh runs it once per setting.
"""

import json
import os
import statistics
import sys
import time

import jax

if os.environ.get("PRNG"):
    jax.config.update("jax_default_prng_impl", os.environ["PRNG"])

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))  # run as a script from anywhere
from benchmarks.update_profile import setup  # noqa: E402

agent_name = sys.argv[1]
updates = int(sys.argv[2]) if len(sys.argv) > 2 else 10
agent, state, batch = setup(agent_name)
start = time.perf_counter()
step = jax.jit(agent.train_step).lower(state, batch, jax.random.PRNGKey(0)).compile()
compile_s = time.perf_counter() - start
state, metrics = step(state, batch, jax.random.PRNGKey(1))
jax.block_until_ready(metrics)
times = []
for i in range(updates):
    start = time.perf_counter()
    state, metrics = step(state, batch, jax.random.PRNGKey(i))
    jax.block_until_ready(metrics)
    times.append(time.perf_counter() - start)
print(json.dumps({"agent": agent_name, "prng": os.environ.get("PRNG"), "xla_flags": os.environ.get("XLA_FLAGS"),
                  "compile_s": round(compile_s, 1), "median_ms": round(1000 * statistics.median(times), 1),
                  "min_ms": round(1000 * min(times), 1)}))

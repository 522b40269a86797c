#!/usr/bin/env bash
# One process per setting, one after another (nothing else should run): the cpu-preset update's ms under each
# PRNG implementation and XLA:CPU flag tried, with the baseline first and last.
#   benchmarks/update_levers.sh [dreamer|director]
agent=${1:-dreamer}
python=${PYTHON:-.venv/bin/python}
run() { env HRL_JAX_CACHE= "$@" "$python" benchmarks/update_time.py "$agent" 10 2>&1 | tail -1; }
run BASELINE=1
run PRNG=rbg
run PRNG=unsafe_rbg
for flag in --xla_cpu_use_thunk_runtime=false --xla_cpu_use_xnnpack=true --xla_cpu_use_onednn=true \
    --xla_cpu_multi_thread_eigen=false --xla_cpu_enable_fast_math=true; do
    run XLA_FLAGS=$flag
done
run BASELINE=1

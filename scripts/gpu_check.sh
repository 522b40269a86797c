#!/usr/bin/env bash
# The GPU check: everything worth measuring on a briefly lent accelerator, in one call of under 9 minutes.
#
#   scripts/gpu_check.sh OUT [--small]
#
# Writes under OUT:
#   device.txt             what ran it (nvidia-smi, or the CPU), the JAX backend and devices
#   train_PRESET_AGENT.json  `hrl bench train` rows: updates/s (per seed and total) for 1, 4 and 8 seeds vectorized,
#                          peak memory
#   flops_PRESET_AGENT.json  one seed's row with FLOPs per update and the fraction of the device's matmul peak
#   envs.json              environment steps/s with 16 worker processes (`hrl bench envs`)
#   run/                   a DreamerV3 walker_walk run at preset S for the minutes left (metrics.jsonl, summary.json)
#   summary.md             the rows for benchmarks/RESULTS.md: one table of update rates, env rate, the run's steps
#                          reached and its return curve
#   log.txt                every command with its wall clock
#
# --small runs the same stages at the tiny preset, 1 and 2 seeds, without the FLOP count, with 2 env workers and a
# short run: a few minutes on a CPU (budget 360 s). The tests run it that way (tests/test_gpu_check.py).
# GPU_CHECK_SECONDS (default 530) is the whole
# budget; each stage gets a timeout from what is left, so a slow compile cannot push the check past it.
set -uo pipefail
out=${1:?usage: scripts/gpu_check.sh OUT [--small]}
small=${2:-}
if [[ -n $small && $small != --small ]]; then
    echo "gpu_check.sh: second argument must be --small, got '$small'" >&2
    exit 2
fi
hrl=${HRL:-.venv/bin/hrl}
python=${PYTHON:-.venv/bin/python}
export MUJOCO_GL=${MUJOCO_GL:-egl}
mkdir -p "$out"
start=$(date +%s)
if [[ -n $small ]]; then
    budget=${GPU_CHECK_SECONDS:-360} presets=(tiny) seeds=1,2 updates=2 workers=2 run_preset=tiny reserve=100 flops= env_seconds=3 run_cap=60
else
    budget=${GPU_CHECK_SECONDS:-530} presets=(size1m S) seeds=1,4,8 updates=10 workers=16 run_preset=S reserve=150 flops=1 env_seconds=10 run_cap=100000
fi

left() { echo $((budget - ($(date +%s) - start))); }

stage() {  # stage NAME SECONDS OUTFILE COMMAND...: runs COMMAND under a timeout, stdout to OUTFILE
    local name=$1 limit=$2 file=$3
    shift 3
    if ((limit < 5)); then
        echo "$name: skipped, no time left" | tee -a "$out/log.txt"
        return 0
    fi
    local t0=$(date +%s)
    echo "$name: $* (limit ${limit}s)" >> "$out/log.txt"
    timeout --signal=TERM --kill-after=20 "$limit" "$@" > "$file" 2>> "$out/log.txt"
    local rc=$?
    echo "$name: exit $rc after $(($(date +%s) - t0))s" | tee -a "$out/log.txt"
}

{ nvidia-smi 2>/dev/null || lscpu | head -20; "$python" -c "import jax; print(jax.default_backend(), jax.devices())"; } \
    > "$out/device.txt" 2>&1

benches=$(( ${#presets[@]} * 2 * (${flops:-0} + 1) ))  # bench stages still to run; each gets an equal share
share() { echo $(( ($(left) - reserve) / benches )); }
for preset in "${presets[@]}"; do
    for agent in dreamer director; do
        # FLOPs and the fraction of peak for one seed (a second, larger compile; not --small); rates alone for the
        # vectorized rows.
        if [[ -n $flops ]]; then
            stage "train $preset $agent 1 seed, FLOPs" "$(share)" "$out/flops_${preset}_${agent}.json" \
                "$hrl" bench train --preset "$preset" --agent "$agent" --updates "$updates" --seeds 1
            benches=$((benches - 1))
        fi
        stage "train $preset $agent seeds $seeds" "$(share)" "$out/train_${preset}_${agent}.json" \
            "$hrl" bench train --preset "$preset" --agent "$agent" --updates "$updates" --seeds "$seeds" --no-flops
        benches=$((benches - 1))
    done
done

stage "envs, $workers workers" $(($(left) - reserve + 20)) "$out/envs.json" \
    "$hrl" bench envs --tasks walker_walk --num-envs "$workers" --seconds "$env_seconds"

# The learning run gets what is left, less a margin for its checkpoint and the summary; SIGTERM checkpoints it.
run_limit=$(($(left) - 25))
stage "walker_walk $run_preset run" $((run_limit < run_cap ? run_limit : run_cap)) "$out/run_summary.json" \
    "$hrl" train --agent dreamer --task walker_walk --preset "$run_preset" --steps 10000000 --logdir "$out/run" \
    --log-every 500 --checkpoint-every 5000 --no-progress

"$python" benchmarks/gpu_report.py "$out" > "$out/summary.md" 2>> "$out/log.txt"
echo "gpu_check: $(($(date +%s) - start))s in all; see $out/summary.md" | tee -a "$out/log.txt"

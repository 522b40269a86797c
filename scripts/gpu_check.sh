#!/usr/bin/env bash
# The GPU check: what a briefly lent accelerator should measure, most important first, each figure kept the moment
# it exists, ending within its budget.
#
#   scripts/gpu_check.sh OUT [--budget SECONDS] [--wheelhouse DIR] [--small]
#
# Stages, in this order, each under a timeout from the time left (less a reserve for the environment figure):
#   1. DreamerV3 update rate at preset S, 1 seed, then 8 seeds vmapped in one process (`hrl bench train`)
#   2. Director update rate at S, 1 seed
#   3. environment steps/s, walker_walk, 16 worker processes (`hrl bench envs`)
#   4. a DreamerV3 walker_walk run at S for the time left (its return curve in OUT/run/metrics.jsonl); SIGTERM at the
#      end checkpoints it
#   5. only if time is left: FLOPs per update and the fraction of the matmul peak (S, DreamerV3, 1 seed), then a seed
#      trained in a 2-seed group against the seed alone at float32 matmul precision (TF32, the GPU default for
#      float32, would differ at 1e-3; tests/test_seeds.py needs JAX_DEFAULT_MATMUL_PRECISION=float32 on a GPU)
#
# Writes under OUT:
#   figures.jsonl  one JSON line per measurement, appended by the measuring process as soon as it is measured (a kill
#                  at any point keeps every figure reached): the device, `hrl bench train` rows, `hrl bench envs`
#                  rows, the FLOP row, the group check
#   run/           the learning run (metrics.jsonl, one flushed line per log; summary.json once it stops)
#   log.txt        each stage's command, limit, exit status and wall clock, and everything printed on stderr
#   summary.md     benchmarks/gpu_report.py's table of all of the above (rerun it on a killed check's OUT)
#
# --budget: whole seconds for everything (default 480), the wheelhouse install included. --wheelhouse DIR (from
# scripts/wheelhouse.sh) first installs DIR offline into a venv that sees this machine's own JAX
# (--system-site-packages; $GPU_CHECK_VENV, default /tmp/hrl-gpu-check-venv) and runs from there. --small: the same
# stages at the tiny preset with 1 and 2 seeds and 2 env workers, for a CPU (the tests run it so).
# $PYTHON (default .venv/bin/python, else python3) runs everything; $HRL overrides the hrl command.
set -uo pipefail
usage="usage: scripts/gpu_check.sh OUT [--budget SECONDS] [--wheelhouse DIR] [--small]"
start=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?$usage}
shift
budget=480 small= wheelhouse=
while (($#)); do
    case $1 in
        --budget) budget=${2:-}; shift 2 || shift ;;
        --small) small=1; shift ;;
        --wheelhouse) wheelhouse=${2:-}; shift 2 || shift ;;
        *) echo "gpu_check.sh: unknown argument '$1'; $usage" >&2; exit 2 ;;
    esac
done
if ! [[ $budget =~ ^[0-9]+$ ]] || ((budget < 30)); then
    echo "gpu_check.sh: --budget '$budget' is not valid; give whole seconds, at least 30" >&2
    exit 2
fi
if [[ -n $wheelhouse && ! -f $wheelhouse/requirements.txt ]]; then
    echo "gpu_check.sh: --wheelhouse '$wheelhouse' is not valid; it must be a folder from scripts/wheelhouse.sh" >&2
    exit 2
fi
mkdir -p "$out"
out=$(cd "$out" && pwd)
export MUJOCO_GL=${MUJOCO_GL:-egl} PYTHONUNBUFFERED=1
if [[ -n $small ]]; then
    preset=tiny seeds=1,2 updates=2 workers=2 env_seconds=3 env_reserve=25 log_every=50
else
    preset=S seeds=1,8 updates=10 workers=16 env_seconds=10 env_reserve=45 log_every=250
fi
figures=$out/figures.jsonl
touch "$figures"

left() { echo $((budget - ($(date +%s) - start))); }
log() { echo "[$(($(date +%s) - start))s] $*" >> "$out/log.txt"; }

stage() {  # stage NAME LIMIT COMMAND...: COMMAND's stdout appended to figures.jsonl; it ends within LIMIT s
    local name=$1 limit=$(($2 - 10))  # TERM at limit (training checkpoints on it), KILL 10 s later if still there
    shift 2
    if ((limit < 5)); then
        log "$name: skipped, $((limit + 10))s left"
        return 0
    fi
    local t0=$(date +%s)
    log "$name: $* (limit ${limit}s)"
    timeout --signal=TERM --kill-after=10 "$limit" "$@" >> "$figures" 2>> "$out/log.txt"
    log "$name: exit $? after $(($(date +%s) - t0))s"
}

python=${PYTHON:-$([[ -x $root/.venv/bin/python ]] && echo "$root/.venv/bin/python" || command -v python3)}
if [[ -n $wheelhouse ]]; then  # offline, on this machine's own JAX
    venv=${GPU_CHECK_VENV:-/tmp/hrl-gpu-check-venv}
    links=(--find-links "$wheelhouse")
    [[ -d $wheelhouse/jax-libs ]] && links+=(--find-links "$wheelhouse/jax-libs")
    log "install: $wheelhouse into $venv"
    { [[ -x $venv/bin/python ]] || "$python" -m venv --system-site-packages "$venv"; } >> "$out/log.txt" 2>&1 &&
        timeout "$(left)" "$venv/bin/python" -m pip install -q --no-index "${links[@]}" \
            -r "$wheelhouse/requirements.txt" >> "$out/log.txt" 2>&1 ||
        { log "install: failed"; exit 1; }
    python=$venv/bin/python
fi
export PYTHONPATH=$root${PYTHONPATH:+:$PYTHONPATH}  # hrl_core from this checkout, installed or not
if [[ -n ${HRL:-} ]]; then
    hrl=("$HRL")
else
    hrl=("$python" -m hrl_core)
fi

stage device 60 "$python" -c '
import json, platform, subprocess, jax
smi = subprocess.run("nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader", shell=True,
                     capture_output=True, text=True).stdout.strip()
print(json.dumps({"device": smi or platform.processor() or platform.machine(), "backend": jax.default_backend(),
                  "devices": [str(d) for d in jax.devices()], "jax": jax.__version__,
                  "host": platform.node()}), flush=True)'

stage "train $preset dreamer seeds $seeds" $(($(left) - env_reserve)) \
    "${hrl[@]}" bench train --preset "$preset" --agent dreamer --updates "$updates" --seeds "$seeds" --no-flops
stage "train $preset director seeds 1" $(($(left) - env_reserve)) \
    "${hrl[@]}" bench train --preset "$preset" --agent director --updates "$updates" --seeds 1 --no-flops
stage "envs walker_walk, $workers workers" $(($(left) - 5)) \
    "${hrl[@]}" bench envs --tasks walker_walk --num-envs "$workers" --seconds "$env_seconds"

# The run takes the time left but for its checkpoint on SIGTERM and the report; $GPU_CHECK_RUN_SECONDS caps it to
# leave time for stage 5.
run_limit=$(($(left) - 5))
cap=${GPU_CHECK_RUN_SECONDS:-$run_limit}
stage "walker_walk $preset run" $((cap < run_limit ? cap : run_limit)) \
    "${hrl[@]}" train --agent dreamer --task walker_walk --preset "$preset" --steps 10000000 --logdir "$out/run" \
    --log-every "$log_every" --checkpoint-every 100000 --no-progress

if [[ -z $small ]]; then
    stage "FLOPs $preset dreamer" $(($(left) - 5)) \
        "${hrl[@]}" bench train --preset "$preset" --agent dreamer --updates 2 --seeds 1
fi
stage "group vs alone, float32 matmuls" $(($(left) - 5)) env JAX_DEFAULT_MATMUL_PRECISION=float32 \
    "$python" -c 'import json; from hrl_core.bench import group_matches_alone; print(json.dumps(group_matches_alone()))'

"$python" "$root/benchmarks/gpu_report.py" "$out" > "$out/summary.md" 2>> "$out/log.txt"
log "gpu_check: done, $(($(date +%s) - start))s of ${budget}s"
echo "gpu_check: $(($(date +%s) - start))s of ${budget}s; see $out/summary.md"

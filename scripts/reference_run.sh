#!/usr/bin/env bash
# Trains one reference run at the cpu preset, exports its learned state into reference/TASK-AGENT-sSEED (the layout
# the notebook series reads), and evaluates the export and the uniform random policy on the same episodes.
#
#   scripts/reference_run.sh TASK AGENT SEED STEPS [--option KEY=VALUE | --config KEY=VALUE ...]
#
# EVAL_EPISODES (default 4) sets the evaluation episodes per target speed, or per task for the maze, whose 0/1
# returns need more episodes to tell success rates apart. CORES (e.g. 0, or 1) pins the training and its
# environment workers to those CPU cores (taskset): two runs at once, each on a core of its own, train faster
# together than two runs sharing both cores (benchmarks/RESULTS.md).
#
# VARIANT (e.g. k8h16) names an ablation run: it trains in outputs/runs/reference/TASK-AGENT-VARIANT-sSEED and exports
# into outputs/exports/ instead of reference/, so the committed reference series never mixes in an ablation.
#
# Resumable: rerun the same command after an interruption and training continues from the last checkpoint. The
# training run itself (with optimiser state and replay) stays under outputs/runs/reference/.
set -euo pipefail
task=$1 agent=$2 seed=$3 steps=$4
shift 4
hrl=${HRL:-.venv/bin/hrl}
name=$task-$agent-s$seed
export_root=reference frames_root=docs/reference
if [[ -n ${VARIANT:-} ]]; then
    name=$task-$agent-$VARIANT-s$seed
    export_root=outputs/exports frames_root=outputs/exports
fi
run=outputs/runs/reference/$name
export MUJOCO_GL=${MUJOCO_GL:-egl}

resume=()
[[ -f $run/config.json ]] && resume=(--resume)
pin=()
[[ -n ${CORES:-} ]] && pin=(taskset -c "$CORES")
start=$(date -u +%FT%TZ)
"${pin[@]}" "$hrl" train --agent "$agent" --task "$task" --preset cpu --steps "$steps" --seed "$seed" --logdir "$run" \
    --checkpoint-every 1000 --log-every 500 --no-progress "${resume[@]}" "$@"
end=$(date -u +%FT%TZ)
echo "$name: trained $start -> $end" >> outputs/runs/reference/times.log
# A run stopped by a signal is checkpointed, not finished: evaluating and exporting it would put a partial run into
# reference/. Rerun the same command to continue it.
python3 -c "import json, sys; sys.exit(json.load(open(sys.argv[1]))['interrupted'])" "$run/summary.json" || {
    echo "$run was interrupted before $steps steps; rerun this command to continue it" >&2
    exit 3
}

# The export stores the weights at PRECISION (default float16: half the bytes, so more runs fit reference/'s 30 MB);
# the evaluations are then made of the export itself, so they reproduce from its stored files.
export=$export_root/$name
rm -rf "${export:?}"
"$hrl" export --logdir "$run" --out "$export" --precision "${PRECISION:-float16}"
splits=(train)
[[ $task == *_speed ]] && splits=(train ood)
# Both evaluation policies: "eval" (each agent's reference behaviour) and "train" (sampled actions, and codes, for
# both agents: the policy that decides the study's claims, claims.STUDY_POLICY), and the random policy on the same
# episodes.
for split in "${splits[@]}"; do
    for policy in eval train random; do
        "$hrl" eval --logdir "$export" --split "$split" --episodes "${EVAL_EPISODES:-4}" --policy "$policy"
    done
done
# The gate's own episodes (the training speeds, or the maze, on environment seeds no measure plays): the study's
# policy and the random one, for the claims' skill-learned checks.
for policy in train random; do
    "$hrl" eval --logdir "$export" --split gate --episodes "${EVAL_EPISODES:-4}" --policy "$policy"
done
mkdir -p "$frames_root"
"$hrl" eval --logdir "$export" --split train --episodes 1 --frames "$frames_root/$name.png" --out "$run/frames.json"

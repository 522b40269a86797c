#!/usr/bin/env bash
# Rebuilds what reference/ stores beside its trained runs after some of them were retrained with
# scripts/reference_run.sh: notebook 05's fine-tuning records of the changed maze runs (reference/finetune/) and
# the stored measurements of the changed runs (analysis_*.json: 02's and 06's of the speed runs, 05's zero-shot
# evaluations of the maze runs); then runs the whole series on reference/ into outputs/notebooks/reference, whose
# findings.md is the README's findings table.
#
#   scripts/refresh_reference.sh RUN...     # the retrained runs, e.g. maze_train-director-s0 walker_speed-director-s1
#   WEIGHTS=DIR scripts/refresh_reference.sh RUN...
#
# Runs that reference/ keeps as records (no learned state) are measured from their exports with it: WEIGHTS names
# the folder that holds them (reference_run.sh's reference/ on the machine that trained them). The measuring pass
# then reads a copy of reference/ in which those runs are the full exports, and only the measurements it stores
# (analysis_*.json) are copied back into the records.
#
# The stored evaluations need nothing: reference_run.sh evaluates each export itself.
set -euo pipefail
hrl=${HRL:-.venv/bin/hrl}
out=outputs/notebooks/reference
weights=${WEIGHTS:-}
export MUJOCO_GL=${MUJOCO_GL:-egl}
if [[ $# -eq 0 ]]; then
    echo "usage: [WEIGHTS=DIR] $0 RUN... (the folders of reference/ that scripts/reference_run.sh retrained)" >&2
    exit 2
fi
for run in "$@"; do  # every name checked before anything is dropped
    if [[ ! -f reference/$run/config.json ]]; then
        echo "RUN must be a run folder of reference/; there is no reference/$run/config.json" >&2
        exit 2
    fi
    if [[ -n $weights && ! -d $weights/$run/ckpt ]]; then
        echo "WEIGHTS=$weights must hold each RUN's export with its learned state; there is no $weights/$run/ckpt" >&2
        exit 2
    fi
done
for run in "$@"; do
    # A record fine-tuned the run before it was retrained: drop it, so that 05 fine-tunes the new run.
    for record in reference/finetune/*/; do
        if grep -qF "\"init_from\": \"reference/$run\"" "$record/config.json"; then
            echo "dropping $record (fine-tuned the earlier $run)"
            rm -rf "$record"
        fi
    done
done

rm -rf "$out"
measured=reference
if [[ -n $weights ]]; then  # a copy of reference/ whose named runs carry their learned state
    measured=outputs/reference_weighted
    rm -rf "$measured"
    cp -r reference "$measured"
    for run in "$@"; do rm -rf "${measured:?}/$run"; cp -r "$weights/$run" "$measured/$run"; done
fi
# Measurements already stored for their run's step and parameters are read, the missing ones computed and stored.
"$hrl" notebooks --runs "$measured" --out "$out" --only 02 05 06 --param store=True
if [[ -n $weights ]]; then
    for run in "$@"; do cp "$measured/$run"/analysis_*.json "reference/$run/" 2>/dev/null || true; done
    rm -rf "$measured"
fi
"$hrl" notebooks --runs reference --out "$out"
# 05 trained the fine-tuning runs it found no record of: keep them as records, with the paths they name (source
# run, run folder) made relative to the repository, as the series resolves them from any clone.
for run in "$out"/runs/finetune-*/; do
    name=$(basename "$run")
    if [[ ! -d reference/finetune/$name ]]; then
        "$hrl" export --logdir "$run" --out "reference/finetune/$name" --record-only
        sed -i -e "s|\"$PWD/|\"|g" -e "s|\"outputs/reference_weighted/|\"reference/|g" "reference/finetune/$name"/*.json
    fi
done
find "$out" -name findings.md -printf "findings: %p\n"

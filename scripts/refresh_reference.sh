#!/usr/bin/env bash
# Rebuilds what reference/ stores beside its trained runs after some of them were retrained with
# scripts/reference_run.sh: notebook 05's fine-tuning records of the changed maze runs (reference/finetune/) and
# the stored measurements of the changed runs (analysis_*.json: 02's and 06's of the speed runs, 05's zero-shot
# evaluations of the maze runs); then runs the whole series on reference/ into outputs/notebooks/reference, whose
# findings.md is the README's findings table.
#
#   scripts/refresh_reference.sh RUN...     # the retrained runs, e.g. maze_train-director-s0 walker_speed-director-s1
#
# The stored evaluations need nothing: reference_run.sh evaluates each export itself.
set -euo pipefail
hrl=${HRL:-.venv/bin/hrl}
out=outputs/notebooks/reference
export MUJOCO_GL=${MUJOCO_GL:-egl}
if [[ $# -eq 0 ]]; then
    echo "usage: $0 RUN... (the folders of reference/ that scripts/reference_run.sh retrained)" >&2
    exit 2
fi
for run in "$@"; do  # every name checked before anything is dropped
    if [[ ! -f reference/$run/config.json ]]; then
        echo "RUN must be a run folder of reference/; there is no reference/$run/config.json" >&2
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
# Measurements already stored for their run's step and parameters are read, the missing ones computed and stored.
"$hrl" notebooks --runs reference --out "$out" --only 02 05 06 --param store=True
"$hrl" notebooks --runs reference --out "$out"
# 05 trained the fine-tuning runs it found no record of: keep them as records, with the paths they name (source
# run, run folder) made relative to the repository, as the series resolves them from any clone.
for run in "$out"/runs/finetune-*/; do
    name=$(basename "$run")
    if [[ ! -d reference/finetune/$name ]]; then
        "$hrl" export --logdir "$run" --out "reference/finetune/$name" --record-only
        sed -i "s|\"$PWD/|\"|g" "reference/finetune/$name"/*.json
    fi
done
find "$out" -name findings.md -printf "findings: %p\n"

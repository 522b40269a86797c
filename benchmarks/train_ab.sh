#!/usr/bin/env bash
# End-to-end policy steps/s of `hrl train --preset cpu` (environment workers, replay, update, logging and
# checkpoints together), DreamerV3 on walker_speed (action repeat 4) and on the ball in the small maze (the
# reference runs' settings), with an earlier source tree and with this one, back to back. Run it alone:
#
#   git worktree add /tmp/before REV && benchmarks/train_ab.sh /tmp/before [STEPS]
#
# Each run logs every STEPS/3 steps (default 900); the first interval holds the prefill and the compile, so the
# steady rate is the mean of the later intervals' fps. Prints one line per run; logs under outputs/bench/train_ab/.
set -euo pipefail
before=$(cd "$1" && pwd) here=$PWD steps=${2:-900}
python=${PYTHON:-$here/.venv/bin/python}
out=$here/outputs/bench/train_ab
mkdir -p "$out"
for task in walker_speed maze_train; do
    args=(--task "$task" --option action_repeat=4)
    [[ $task == maze_train ]] && args+=(--option body=ball --option maze_size=small --option time_limit=20
                                        --config train_ratio=64)
    for label in before after; do
        tree=$before name=$task-$label
        [[ $label == after ]] && tree=$here
        rm -rf "${out:?}/$name"
        start=$(date +%s)
        (cd "$tree" && MUJOCO_GL=${MUJOCO_GL:-egl} HRL_JAX_CACHE= "$python" -m hrl_core train --agent dreamer \
            --preset cpu --steps "$steps" --seed 0 --logdir "$out/$name" --log-every $((steps / 3)) \
            --checkpoint-every "$steps" --no-progress "${args[@]}") > "$out/$name.log" 2>&1
        "$python" -c "
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if '\"fps\"' in line]
steady = [r['fps'] for r in rows[1:]] or sys.exit('too few logged intervals: use STEPS of 600 or more')
print(f'{sys.argv[2]}: {sum(steady) / len(steady):.2f} policy steps/s over steps {rows[0][\"step\"]}-{rows[-1][\"step\"]}'
      f' ({len(steady)} intervals), {int(sys.argv[3])} s in all')" "$out/$name/metrics.jsonl" "$name" $(($(date +%s) - start))
    done
done

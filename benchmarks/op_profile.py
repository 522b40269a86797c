"""Where one whole update's CPU time goes, op by op: the compiled cpu-preset update traced with the JAX profiler, each
XLA op's time summed over the threads that ran it, then grouped by the model part its HLO metadata names.

    python benchmarks/op_profile.py [--agent dreamer|director] [--updates 3] [--top 15]

Prints the wall time of an update, the CPU time of its ops (both threads), a table by model part, and the costliest
ops with their HLO. Unlike benchmarks/update_profile.py, which times pieces jitted apart, this sees the update as XLA
compiled it: fusions, layout copies and the kernel gradients that belong to no flax module. Run it alone.
"""

from __future__ import annotations

import argparse
import collections
import re
import sys
import tempfile
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from benchmarks.update_profile import setup  # noqa: E402

PARTS = ("image_encoder", "image_decoder", "reward_head", "cont_head", "rssm", "goal_ae", "manager", "worker", "actor",
         "critic")


def op_times(compiled, args, updates: int) -> tuple[dict, float]:
    """({op name: CPU ms per update, summed over threads}, wall ms per update) from a profiler trace."""
    jax.block_until_ready(compiled(*args))
    with tempfile.TemporaryDirectory() as folder:
        with jax.profiler.trace(folder):
            start = time.perf_counter()
            for _ in range(updates):
                jax.block_until_ready(compiled(*args))
            wall = (time.perf_counter() - start) / updates
        profile = jax.profiler.ProfileData.from_file(str(next(Path(folder).rglob("*.xplane.pb"))))
    ms = collections.Counter()
    for plane in profile.planes:
        for line in plane.lines:
            if line.name.startswith("tf_XLAEigen"):  # XLA:CPU's worker threads; one event per executed op
                for event in line.events:
                    if not event.name.startswith("ThunkExecutor"):
                        ms[event.name] += event.duration_ns / 1e6 / updates
    return dict(ms), 1000 * wall


def op_parts(hlo: str) -> dict:
    """{op name: model part} from the op_name metadata of each instruction (or of the computation a fusion calls)."""
    calls, names, inside, computation = {}, {}, collections.defaultdict(list), None
    for line in hlo.splitlines():
        header = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if header and " = " not in line.split("{")[0]:
            computation = header.group(1)
            continue
        op = re.match(r"^\s*(?:ROOT )?%?([\w.\-]+) = ", line)
        if not op:
            continue
        called = re.search(r"calls=%?([\w.\-]+)", line)
        meta = re.search(r'op_name="([^"]+)"', line)
        names[op.group(1)], calls[op.group(1)] = meta and meta.group(1), called and called.group(1)
        if meta and computation:
            inside[computation].append(meta.group(1))

    def part(name):
        meta = names.get(name) or next(iter(collections.Counter(inside.get(calls.get(name), [])).most_common(1)),
                                       (None,))[0]
        if not meta:
            return "no metadata (layout copies, kernel gradients)"
        found = [p for p in PARTS if p in meta.lower()]
        return found[0] if found else "other (losses, returns, optimiser)"
    return {name: part(name) for name in names}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="dreamer", choices=("dreamer", "director", "director+wr"))
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--updates", type=int, default=3)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    agent, state, batch = setup(args.agent, args.preset)
    key = jax.random.PRNGKey(1)
    compiled = jax.jit(agent.train_step).lower(state, batch, key).compile()
    ms, wall = op_times(compiled, (state, batch, key), args.updates)
    hlo = compiled.as_text()
    parts = op_parts(hlo)
    by_part = collections.Counter()
    for name, t in ms.items():
        by_part[parts.get(name, "no metadata (layout copies, kernel gradients)")] += t
    total = sum(ms.values())
    print(f"{args.preset} preset, {args.agent}: {wall:.0f} ms wall per update, {total:.0f} ms of op time on the "
          f"threads ({total / wall:.2f} cores busy on average)\n")
    print("| model part | CPU ms per update | share |\n|---|---|---|")
    for part, t in by_part.most_common():
        print(f"| {part} | {t:.1f} | {t / total:.0%} |")
    print(f"\n| op | CPU ms per update | HLO |\n|---|---|---|")
    lines = {m.group(1): line.strip() for line in hlo.splitlines()
             if (m := re.match(r"^\s*(?:ROOT )?%?([\w.\-]+) = ", line))}
    for name, t in collections.Counter(ms).most_common(args.top):
        text = re.sub(r", (metadata|backend_config)=.*", "", lines.get(name, "?"))
        print(f"| {name} | {t:.1f} | `{text[:140]}` |")


if __name__ == "__main__":
    main()

"""Replay checkpoint cost: the whole filled buffer through orbax (the older format) vs incremental chunk files.

    python benchmarks/replay_checkpoint.py [--capacity 1000000] [--interval 10000] [--dir /tmp/replay_ckpt_bench]

A size1m-shaped replay (4 streams; 64x64x3 uint8 image, float32 proprio, action, reward and flags) is filled with
random bytes, then timed: (a) orbax save of the full buffer, as train.py's save() did before chunks, (b) the first chunk
save, which writes the whole buffer (once per run, on migrating from an older checkpoint), (c) an incremental save
of one checkpoint interval of new steps into the full ring, and (d) restoring from the chunks. --capacity and
--interval count steps over all streams, like Config.replay_capacity. Needs about capacity x 12.4 KB of memory
(12 GiB at 1M) and twice that of disk.
"""

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from hrl_core.replay import Replay

NUM_ENVS = 4
SPACES = {"image": ((64, 64, 3), np.uint8), "proprio": ((24,), np.float32), "action": ((6,), np.float32),
          "reward": ((), np.float32), "is_first": ((), bool), "is_last": ((), bool), "is_terminal": ((), bool)}


def disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def random_fill(replay: Replay, rng: np.random.Generator) -> None:
    """Fills every ring position with random bytes, block by block (no full-size temporaries)."""
    for k, v in replay.data.items():
        flat = v.reshape(-1).view(np.uint8)
        for i in range(0, flat.size, 1 << 27):
            part = flat[i:i + (1 << 27)]
            words = rng.bit_generator.random_raw(-(-part.size // 8))  # raw uint64s: the fastest source of bytes
            part[:] = words.view(np.uint8)[:part.size]
        if v.dtype == bool:
            v[:] = v.view(np.uint8) & 1  # valid bools
        elif v.dtype == np.float32:
            v[~np.isfinite(v)] = 0.0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--capacity", type=int, default=1_000_000)
    p.add_argument("--interval", type=int, default=10_000, help="new steps (over all streams) per checkpoint")
    p.add_argument("--dir", default=None, help="scratch directory (default: a new one under /tmp), removed after")
    p.add_argument("--skip-orbax", action="store_true", help="leave out (a), the slowest part at full size")
    args = p.parse_args()

    replay = Replay(args.capacity, NUM_ENVS, SPACES, seed=0)
    rng = np.random.default_rng(0)
    t = time.perf_counter()
    random_fill(replay, rng)
    # A full ring that has gone round about once: as if per_env steps were added, the last save being one interval
    # before the steps added below.
    replay.added = replay.per_env
    replay.pos[:], replay.size[:] = 0, replay.per_env
    filled = len(replay)
    print(f"filled {filled} steps ({filled * replay.bytes_per_step / 2**30:.2f} GiB) in {time.perf_counter() - t:.1f} s")

    root = Path(args.dir) if args.dir else Path(tempfile.mkdtemp(prefix="replay_ckpt_bench_"))
    root.mkdir(parents=True, exist_ok=True)
    rows = []
    try:
        from hrl_core.checkpoint import Checkpointer

        ckpt = None if args.skip_orbax else Checkpointer(root / "orbax", keep=1)
        # The older save() passed replay.state_dict(), which first copies the filled buffer; views of it are passed
        # here so a full-size run fits in memory, so the real cost is this plus one copy of the buffer.
        state = {"data": {k: v[:, :filled // NUM_ENVS] for k, v in replay.data.items()},
                 "pos": replay.pos.copy(), "size": replay.size.copy()}
        if ckpt is not None:
            t = time.perf_counter()
            ckpt.save(1, {"w": np.zeros(4, np.float32)}, state, {"replay": replay.meta()})
            rows.append(("orbax, whole buffer (before chunks)", filled, disk_bytes(root / "orbax"),
                         time.perf_counter() - t))
            ckpt.close()
            shutil.rmtree(root / "orbax")

        chunks = root / "chunks"
        t = time.perf_counter()
        replay.save(chunks)
        rows.append(("chunks, first save (whole buffer)", filled, disk_bytes(chunks), time.perf_counter() - t))

        steps = args.interval // NUM_ENVS
        pool = {k: rng.integers(0, 2, (64, NUM_ENVS, *shape)).astype(dtype) for k, (shape, dtype) in SPACES.items()}
        for i in range(steps):
            replay.add({k: v[i % 64] for k, v in pool.items()})
        before = disk_bytes(chunks)
        t = time.perf_counter()
        meta = replay.save(chunks)
        seconds = time.perf_counter() - t
        kept = disk_bytes(chunks)
        rows.append((f"chunks, incremental ({steps * NUM_ENVS} new steps)", steps * NUM_ENVS,
                     disk_bytes(chunks) - before, seconds))

        draws = replay.sample(16, 64)
        t = time.perf_counter()
        replay.restore(chunks, meta)  # into the same buffers: a second full-size replay may not fit in memory
        rows.append(("chunks, restore (bytes read)", filled, filled * replay.bytes_per_step, time.perf_counter() - t))
        again = replay.sample(16, 64)
        assert all(np.array_equal(draws[k], again[k]) for k in draws), "restore changed the data or the sampler"
    finally:
        shutil.rmtree(root, ignore_errors=True)

    print(f"chunk files kept after the incremental save (keep=2): {kept / 2**20:.1f} MiB")
    print(f"\n| method | capacity | steps | MiB | seconds | MiB/s |\n|---|---|---|---|---|---|")
    for name, steps, size, seconds in rows:
        print(f"| {name} | {args.capacity} | {steps} | {size / 2**20:.1f} | {seconds:.2f} | "
              f"{size / 2**20 / seconds:.0f} |")


if __name__ == "__main__":
    main()

"""Uniform sequence replay: one ring buffer per environment stream, images kept as uint8.

A sampled sequence is `length` consecutive steps of one stream; it may cross an episode boundary, where the
stored is_first flag resets the world model's state.

Checkpoints. `save(directory)` writes only the steps added since the previous save, as one chunk file, and
`restore(directory, meta)` rebuilds the buffers from the chunks, so a checkpoint costs one interval of data rather
than the whole buffer. `state_dict()`/`meta()`/`load_state_dict()` are the older format (the filled buffers as one
pytree for orbax), kept so checkpoints written that way still restore.

Chunk format: `{start:012d}-{end:012d}.npz` holds the global steps [start, end) (every stream advances in
lockstep, so step t is the t-th add() and lives at ring position t % per_env of every stream); an uncompressed
.npz with one array per stored key, shape [num_envs, end - start, ...], readable with np.load.
"""

from __future__ import annotations

import os
import re
import zipfile
from pathlib import Path

import numpy as np

_CHUNK = re.compile(r"^(\d+)-(\d+)\.npz$")
_TEMP = re.compile(r"^\.\d+-\d+\.npz\.tmp$")
_BLOCK = 1 << 24  # bytes per read when filling the ring from a chunk: bounds the temporary copies


def _runs(start: int, end: int, per_env: int):
    """(t0, t1, ring position of t0) for the pieces of steps [start, end) that are contiguous in the ring."""
    t = start
    while t < end:
        p = t % per_env
        t1 = min(end, t + per_env - p)
        yield t, t1, p
        t = t1


def _chunks(directory: Path) -> list[tuple[int, int, Path]]:
    """(start, end, path) of the chunk files in `directory`, by start."""
    if not directory.is_dir():
        return []
    found = [(int(m[1]), int(m[2]), directory / m[0]) for m in map(_CHUNK.match, os.listdir(directory)) if m]
    return sorted(found)


def _remove_temps(directory: Path) -> None:
    """Drops half-written chunks left by a save that was killed before its os.replace."""
    if directory.is_dir():
        for name in os.listdir(directory):
            if _TEMP.match(name):
                (directory / name).unlink(missing_ok=True)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read_exactly(f, out: np.ndarray, path: Path) -> None:
    view = memoryview(out).cast("B")
    done = 0
    while done < len(view):
        n = f.readinto(view[done:done + _BLOCK])
        if not n:
            raise ValueError(f"replay chunk {path} is truncated")
        done += n


class Replay:
    def __init__(self, capacity: int, num_envs: int, spaces: dict, seed: int = 0):
        """`spaces` maps each stored key to (shape, dtype) of one step."""
        self.num_envs = num_envs
        self.per_env = capacity // num_envs
        self.spaces = {k: (tuple(shape), np.dtype(dtype)) for k, (shape, dtype) in spaces.items()}
        self.data = {k: np.zeros((num_envs, self.per_env, *shape), dtype) for k, (shape, dtype) in self.spaces.items()}
        self.pos = np.zeros(num_envs, np.int64)
        self.size = np.zeros(num_envs, np.int64)
        self.rng = np.random.default_rng(seed)
        self.added = 0  # add() calls so far: the global index of the next step
        self._saved = 0  # steps [.., _saved) are already in chunk files
        self._recent: list[int] = []  # `added` at the last few saves (or the restore), whose chunks must stay

    def __len__(self) -> int:
        return int(self.size.sum())

    @property
    def bytes_per_step(self) -> int:
        return sum(int(np.prod(shape)) * dtype.itemsize for shape, dtype in self.spaces.values())

    def add(self, step: dict) -> None:
        """Adds one step for every stream; each value has a leading [num_envs] axis."""
        for key in self.data:
            self.data[key][np.arange(self.num_envs), self.pos] = step[key]
        self.pos = (self.pos + 1) % self.per_env
        self.size = np.minimum(self.size + 1, self.per_env)
        self.added += 1

    def can_sample(self, length: int) -> bool:
        return bool((self.size >= length).any())

    def sample(self, batch: int, length: int) -> dict:
        """`batch` sequences of `length` steps, streams weighted by how many start positions they offer."""
        starts_per_env = np.maximum(self.size - length + 1, 0)
        if starts_per_env.sum() == 0:
            raise ValueError(f"replay holds no sequence of length {length} yet ({len(self)} steps stored)")
        env = self.rng.choice(self.num_envs, size=batch, p=starts_per_env / starts_per_env.sum())
        offset = self.rng.integers(0, starts_per_env[env])
        oldest = np.where(self.size[env] == self.per_env, self.pos[env], 0)
        idx = (oldest[:, None] + offset[:, None] + np.arange(length)) % self.per_env
        return {k: v[env[:, None], idx] for k, v in self.data.items()}

    # Incremental checkpoints (chunk files).

    def save(self, directory: str | Path, keep: int = 2) -> dict:
        """Writes the steps added since the last save (or restore) to one chunk in `directory`; returns the meta
        that `restore` needs (JSON-able: store it in the checkpoint).

        Steps older than the last per_env are gone from memory, so the chunk starts no earlier than that. The
        chunk is written under a temporary name and renamed, so a kill leaves no chunk or a whole one. Chunks are
        then pruned down to those needed by the last `keep` saves: keep=2 (the Checkpointer's default) means that
        if the process dies after this chunk but before the checkpoint holding this meta commits, the previous
        checkpoint still finds all its chunks.
        """
        if keep < 1:
            raise ValueError(f"keep={keep} is not valid; it must be at least 1")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        _remove_temps(directory)
        for _, end, path in _chunks(directory):
            if end > self._saved:  # not written by this replay's history: a save whose checkpoint never committed
                path.unlink()
        start = max(self._saved, self.added - self.per_env)
        if self.added > start:
            name = f"{start:012d}-{self.added:012d}.npz"
            temp = directory / f".{name}.tmp"
            self._write_chunk(temp, start, self.added)
            os.replace(temp, directory / name)
            _fsync_dir(directory)
            self._saved = self.added
        if not self._recent or self._recent[-1] != self.added:
            self._recent.append(self.added)
        del self._recent[:-keep]
        horizon = min(self._recent) - self.per_env  # steps before this are needed by none of the kept saves
        for _, end, path in _chunks(directory):
            if end <= horizon:
                path.unlink()
        return {"format": "chunks", "added": self.added, "num_envs": self.num_envs, "per_env": self.per_env,
                "rng": self.rng.bit_generator.state}

    def restore(self, directory: str | Path, meta: dict) -> None:
        """Rebuilds the buffers, counters and sampler state as they were at the `save` that returned `meta`.

        Meant for a freshly built Replay of the same shape: ring positions not yet filled are left as they are
        (they are never sampled). Chunks ending after meta["added"] come from a later save whose checkpoint never
        committed; they are deleted, so the next save continues this history from meta["added"].
        """
        directory = Path(directory)
        if meta.get("format") != "chunks":
            raise ValueError(f"replay meta has format {meta.get('format')!r}, not 'chunks'; an older checkpoint "
                             "restores with template() and load_state_dict()")
        if (meta["num_envs"], meta["per_env"]) != (self.num_envs, self.per_env):
            raise ValueError(f"replay checkpoint in {directory} has {meta['num_envs']} streams of {meta['per_env']} "
                             f"steps; this replay has {self.num_envs} of {self.per_env}")
        added = int(meta["added"])
        low = max(0, added - self.per_env)
        _remove_temps(directory)
        chunks = []
        for start, end, path in _chunks(directory):
            if end > added:
                path.unlink()
            else:
                chunks.append((start, end, path))
        plan, covered = [], low
        for start, end, path in chunks:
            if end <= covered:
                continue
            if start > covered:
                raise FileNotFoundError(f"replay chunks in {directory} miss steps [{covered}, {start}) needed to "
                                        f"restore the replay at step {added} (it needs [{low}, {added}))")
            plan.append((covered, start, end, path))
            covered = end
        if covered < added:
            raise FileNotFoundError(f"replay chunks in {directory} miss steps [{covered}, {added}) needed to "
                                    f"restore the replay at step {added} (it needs [{low}, {added}))")
        for first, start, end, path in plan:  # checked first, so a gap leaves the buffers untouched
            self._read_chunk(path, start, end, first)
        self.added = self._saved = added
        self._recent = [added]
        self.pos = np.full(self.num_envs, added % self.per_env, np.int64)
        self.size = np.full(self.num_envs, min(added, self.per_env), np.int64)
        self.rng.bit_generator.state = meta["rng"]

    def _write_chunk(self, path: Path, start: int, end: int) -> None:
        """np.savez-compatible, but streamed from the ring's contiguous pieces: no copy of the data, which matters
        when a chunk is the whole buffer (the first save after resuming an older-format checkpoint)."""
        runs = list(_runs(start, end, self.per_env))
        with open(path, "wb") as raw:
            with zipfile.ZipFile(raw, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
                for key, (shape, dtype) in self.spaces.items():
                    with zf.open(f"{key}.npy", "w", force_zip64=True) as f:
                        np.lib.format.write_array_header_1_0(f, {"descr": np.lib.format.dtype_to_descr(dtype),
                                                                  "fortran_order": False,
                                                                  "shape": (self.num_envs, end - start, *shape)})
                        for i in range(self.num_envs):
                            for t0, t1, p in runs:
                                f.write(memoryview(self.data[key][i, p:p + t1 - t0]).cast("B"))
            raw.flush()
            os.fsync(raw.fileno())

    def _read_chunk(self, path: Path, start: int, end: int, first: int) -> None:
        """Reads steps [first, end) of the chunk [start, end) straight into their ring positions."""
        runs = list(_runs(first, end, self.per_env))
        with zipfile.ZipFile(path) as zf:
            for key, (shape, dtype) in self.spaces.items():
                if f"{key}.npy" not in zf.namelist():
                    raise ValueError(f"replay chunk {path} has no {key!r}; it was written for other spaces")
                with zf.open(f"{key}.npy") as f:
                    version = np.lib.format.read_magic(f)
                    read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else \
                        np.lib.format.read_array_header_2_0
                    got = read_header(f)
                    want = ((self.num_envs, end - start, *shape), False, dtype)
                    if got != want:
                        raise ValueError(f"replay chunk {path} holds {key!r} as (shape, fortran, dtype) {got}, "
                                         f"expected {want}")
                    step_bytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
                    for i in range(self.num_envs):
                        f.seek((first - start) * step_bytes, os.SEEK_CUR)  # steps older than needed
                        for t0, t1, p in runs:
                            _read_exactly(f, self.data[key][i, p:p + t1 - t0], path)

    # Older format: the whole filled buffer as one pytree.

    def state_dict(self) -> dict:
        filled = int(self.size.max())
        return {"data": {k: v[:, :filled].copy() for k, v in self.data.items()},
                "pos": self.pos.copy(), "size": self.size.copy()}

    def meta(self) -> dict:
        return {"filled": int(self.size.max()), "rng": self.rng.bit_generator.state}

    def template(self, filled: int) -> dict:
        return {"data": {k: np.zeros((self.num_envs, filled, *shape), dtype) for k, (shape, dtype) in self.spaces.items()},
                "pos": np.zeros(self.num_envs, np.int64), "size": np.zeros(self.num_envs, np.int64)}

    def load_state_dict(self, state: dict, meta: dict) -> None:
        filled = meta["filled"]
        for k, v in state["data"].items():
            self.data[k][:, :filled] = np.asarray(v)
        self.pos, self.size = np.asarray(state["pos"]).copy(), np.asarray(state["size"]).copy()
        self.rng.bit_generator.state = meta["rng"]
        # The true add() count is not in this format; any count with the same ring position will do. Nothing is in
        # chunk files yet, so the next save() writes everything held.
        size, pos = int(self.size.max()), int(self.pos.max())
        self.added = size if size < self.per_env else self.per_env + pos
        self._saved = self.added - size
        self._recent = []

"""Uniform sequence replay: one ring buffer per environment stream, images kept as uint8.

A sampled sequence is `length` consecutive steps of one stream; it may cross an episode boundary, where the
stored is_first flag resets the world model's state. `state_dict()` holds the filled part of the buffers and the
sampler's RNG state, so a resumed run continues with the same data and the same draws.
"""

from __future__ import annotations

import numpy as np


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

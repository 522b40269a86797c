"""Shapes shared by training and the benchmarks: replay-shaped batches, and the leading seed axis along which a
group of runs is stacked (and sharded over the local devices) to train as one vectorized update."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np

from hrl_core.config import Config


def replay_spaces(obs_space: dict, act_space) -> dict:
    """{key: (shape, dtype)} of one replayed step: the observation, the action that led to it, and step flags."""
    spaces = {k: (v.shape, v.dtype) for k, v in obs_space.items()}
    spaces.update(action=(act_space.shape, np.float32), reward=((), np.float32), is_first=((), bool),
                  is_last=((), bool), is_terminal=((), bool))
    return spaces


def random_batch(obs_space: dict, act_space, cfg: Config, seed: int = 0) -> dict:
    """A replay-shaped batch [B, T, ...] of random data (benchmarks and tests)."""
    rng = np.random.default_rng(seed)
    batch = {}
    for k, (shape, dtype) in replay_spaces(obs_space, act_space).items():
        if k == "is_last":
            continue
        full = (cfg.batch_size, cfg.batch_length, *shape)
        batch[k] = (rng.integers(0, 255, full).astype(np.uint8) if dtype == np.uint8
                    else np.zeros(full, bool) if dtype == bool else rng.uniform(-1, 1, full).astype(np.float32))
    return batch


def seed_sharding(num_seeds: int):
    """A sharding of the leading seed axis over the most local devices that divide it; None on one device.

    When that leaves devices idle that an even split would use (5 seeds on 2 GPUs run on one; 6 on 4 use 3), it
    warns, naming the seed counts that would use every device: the group still trains, each seed as it would alone,
    only slower than it could."""
    devices = jax.local_devices()
    count = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
    usable = min(num_seeds, len(devices))
    if count < usable:
        warnings.warn(f"seeds: {num_seeds} seeds do not split evenly over the {len(devices)} local devices, so the "
                      f"group runs on {count} of them; a multiple of {len(devices)} seeds (or fewer devices, e.g. "
                      f"CUDA_VISIBLE_DEVICES) uses every device", RuntimeWarning, stacklevel=2)
    if count == 1:
        return None
    mesh = jax.sharding.Mesh(np.array(devices[:count]), ("seed",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))


def stack(trees: list):
    """Trees of equal structure stacked on a new leading (seed) axis."""
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree, index: int):
    """Entry `index` of a tree stacked by `stack`."""
    return jax.tree.map(lambda x: x[index], tree)

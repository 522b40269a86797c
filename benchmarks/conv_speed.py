"""The update with the encoder and decoder on each convolution path, alternating in one process so that all see the
same machine: hrl_core/conv.py's sub-pixel path (the CPU's), its plain lax path (every other backend's), and flax's
Conv/ConvTranspose layers (the earlier code).

    python benchmarks/conv_speed.py [--preset cpu|S|...] [--agent dreamer|director] [--paths subpixel,lax,flax]
                                    [--rounds 3] [--updates 5]

Prints the median ms per update of each path, per round and overall, and each path's time relative to the one that
`conv.current_path()` picks on this backend. On a GPU, `--preset S` is the comparison that chose "lax" there.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import flax.linen as nn
import jax
import jax.numpy as jnp


class FlaxEncoder(nn.Module):
    """The image encoder as it was written with flax's Conv (tests/test_conv.py checks hrl_core's against it)."""

    channels: tuple
    size: int = 64  # the image side, as nets.ImageEncoder's (positional there too)

    @nn.compact
    def __call__(self, image):
        x = image.astype(jnp.float32) / 255.0 - 0.5
        for ch in self.channels:
            x = nn.silu(nn.LayerNorm()(nn.Conv(ch, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)(x)))
        return x.reshape(*x.shape[:-3], -1)


class FlaxDecoder(nn.Module):
    """The image decoder as it was written with flax's ConvTranspose."""

    channels: tuple
    minres: int = 4

    @nn.compact
    def __call__(self, feat):
        chans, r = list(self.channels)[::-1], self.minres
        x = nn.Dense(r * r * chans[0])(feat).reshape(*feat.shape[:-1], r, r, chans[0])
        for ch in chans[1:]:
            x = nn.silu(nn.LayerNorm()(nn.ConvTranspose(ch, (4, 4), strides=(2, 2), padding="SAME",
                                                        use_bias=False)(x)))
        return nn.ConvTranspose(3, (4, 4), strides=(2, 2), padding="SAME")(x) + 0.5


PATHS = ("subpixel", "lax", "flax")


def setup(agent_name: str, preset: str):
    """(agent, initial state, replay-shaped random batch) of a walker_speed agent at `preset` and its image size."""
    from hrl_core.agents import make_agent
    from hrl_core.batches import random_batch
    from hrl_core.config import make_config
    from hrl_core.envs import make_env

    cfg = make_config(preset, agent=agent_name)
    env = make_env("walker_speed", action_repeat=4, size=cfg.image_size)
    agent = make_agent(cfg, env.obs_space, env.act_space)
    batch = jax.device_put(random_batch(env.obs_space, env.act_space, cfg))
    env.close()
    return agent, agent.init(jax.random.PRNGKey(0)), batch


def build(agent_name: str, path: str, preset: str = "cpu"):
    """A compiled update, its state and batch, with the world model's convolutions on `path`: "subpixel" or "lax"
    (hrl_core/conv.py, forced while tracing), or "flax" (the earlier encoder and decoder; same parameters)."""
    from hrl_core import conv, nets

    saved = nets.ImageEncoder, nets.ImageDecoder
    if path == "flax":
        nets.ImageEncoder, nets.ImageDecoder = FlaxEncoder, FlaxDecoder
    try:
        with conv.use_path("auto" if path == "flax" else path):
            agent, state, batch = setup(agent_name, preset)
            step = jax.jit(agent.train_step).lower(state, batch, jax.random.PRNGKey(0)).compile()
    finally:
        nets.ImageEncoder, nets.ImageDecoder = saved
    return step, state, batch


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # hrl_core from this checkout, run as a script
    from hrl_core import conv
    from hrl_core.config import PRESETS

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="dreamer", choices=("dreamer", "director"))
    parser.add_argument("--preset", default="cpu", choices=list(PRESETS))
    parser.add_argument("--paths", default="subpixel,lax,flax", help="comma-separated, among: " + ", ".join(PATHS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=5)
    args = parser.parse_args()
    paths = [p.strip() for p in args.paths.split(",")]
    for p in paths:
        if p not in PATHS:
            parser.error(f"--paths: {p!r} is not valid; allowed values: {', '.join(PATHS)}")
    auto = conv.current_path()
    print(f"{jax.default_backend()} backend, {jax.devices()[0].device_kind}: conv path 'auto' is {auto!r}")
    variants = {p: build(args.agent, p, args.preset) for p in paths}
    times = {p: [] for p in variants}
    for r in range(args.rounds):
        for p, (step, state, batch) in variants.items():
            jax.block_until_ready(step(state, batch, jax.random.PRNGKey(1)))
            for i in range(args.updates):
                start = time.perf_counter()
                jax.block_until_ready(step(state, batch, jax.random.PRNGKey(i)))
                times[p].append(1000 * (time.perf_counter() - start))
            print(f"round {r + 1}, {p}: median {statistics.median(times[p][-args.updates:]):.1f} ms", flush=True)
    medians = {p: statistics.median(t) for p, t in times.items()}
    base = medians.get(auto)
    for p, t in times.items():
        ratio = f", {medians[p] / base:.2f}x the '{auto}' path" if base else ""
        print(f"{args.agent} at {args.preset}, {p}: median {medians[p]:.1f} ms per update over {len(t)} "
              f"(min {min(t):.1f}, max {max(t):.1f}){ratio}")


if __name__ == "__main__":
    main()

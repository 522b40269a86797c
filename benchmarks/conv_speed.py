"""The cpu-preset update with the encoder and decoder through hrl_core/conv.py against flax's Conv/ConvTranspose
layers (the earlier code), alternating in one process so that both see the same machine.

    python benchmarks/conv_speed.py [--agent dreamer|director] [--rounds 3] [--updates 5]

Prints the median ms per update of each, per round and overall, and the ratio.
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

    @nn.compact
    def __call__(self, image):
        x = image.astype(jnp.float32) / 255.0 - 0.5
        for ch in self.channels:
            x = nn.silu(nn.LayerNorm()(nn.Conv(ch, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)(x)))
        return x.reshape(*x.shape[:-3], -1)


class FlaxDecoder(nn.Module):
    """The image decoder as it was written with flax's ConvTranspose."""

    channels: tuple

    @nn.compact
    def __call__(self, feat):
        chans = list(self.channels)[::-1]
        x = nn.Dense(4 * 4 * chans[0])(feat).reshape(*feat.shape[:-1], 4, 4, chans[0])
        for ch in chans[1:]:
            x = nn.silu(nn.LayerNorm()(nn.ConvTranspose(ch, (4, 4), strides=(2, 2), padding="SAME",
                                                        use_bias=False)(x)))
        return nn.ConvTranspose(3, (4, 4), strides=(2, 2), padding="SAME")(x) + 0.5


def build(agent_name: str, flax_layers: bool):
    """A compiled cpu-preset update, its state and batch; with `flax_layers` the world model uses the earlier
    encoder and decoder (same parameters)."""
    from benchmarks.update_profile import setup
    from hrl_core import nets

    saved = nets.ImageEncoder, nets.ImageDecoder
    if flax_layers:
        nets.ImageEncoder, nets.ImageDecoder = FlaxEncoder, FlaxDecoder
    try:
        agent, state, batch = setup(agent_name)
        step = jax.jit(agent.train_step).lower(state, batch, jax.random.PRNGKey(0)).compile()
    finally:
        nets.ImageEncoder, nets.ImageDecoder = saved
    return step, state, batch


def main() -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks.update_profile, run as a script
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agent", default="dreamer", choices=("dreamer", "director"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--updates", type=int, default=5)
    args = parser.parse_args()
    variants = {"flax layers (before)": build(args.agent, True), "hrl_core.conv (after)": build(args.agent, False)}
    times = {name: [] for name in variants}
    for _ in range(args.rounds):
        for name, (step, state, batch) in variants.items():
            jax.block_until_ready(step(state, batch, jax.random.PRNGKey(1)))
            for i in range(args.updates):
                start = time.perf_counter()
                jax.block_until_ready(step(state, batch, jax.random.PRNGKey(i)))
                times[name].append(1000 * (time.perf_counter() - start))
    medians = {name: statistics.median(t) for name, t in times.items()}
    for name, t in times.items():
        print(f"{args.agent}, {name}: median {medians[name]:.1f} ms per update over {len(t)} "
              f"(min {min(t):.1f}, max {max(t):.1f})")
    before, after = medians.values()
    print(f"speed-up: {before / after:.2f}x")


if __name__ == "__main__":
    main()

"""The encoder's and decoder's convolution kernel gradients, computed four ways on the cpu preset's shapes (256
images, channels 3-8-16-24-32), in milliseconds: XLA's own (what `hrl_core/conv.py` uses except on small inputs), 16
matmuls over shifted views (conv.py's form for the transposed convolution on 8x8 inputs or less), and each layer
rewritten as a stride-1 convolution whose kernel gradient XLA takes (space-to-depth for the strided one, the
sub-pixel form for the transposed one). Every form is checked against XLA's to float rounding.

    python benchmarks/kernel_grads.py [--repeats 7]

Run it alone: it times single calls of a few milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run as a script from anywhere
from hrl_core import conv  # noqa: E402

DN = ("NHWC", "HWIO", "NHWC")
IMAGES = 256
ENCODER = [(64, 3, 8), (32, 8, 16), (16, 16, 24), (8, 24, 32)]  # (input size, cin, cout) of the stride-2 layers
DECODER = [(4, 32, 24), (8, 24, 16), (16, 16, 8), (32, 8, 3)]  # ... of the transposed ones


def grad_of(layer, x, dy, shape):
    return jax.vjp(lambda k: layer(x, k), jnp.zeros(shape, x.dtype))[1](dy)[0]


def down_xla(x, dy):
    return grad_of(conv._strided, x, dy, (4, 4, x.shape[-1], dy.shape[-1]))


def down_shifted(x, dy):
    h, w = dy.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return jnp.stack([jnp.stack([jnp.einsum("nhwc,nhwo->co", padded[:, i:i + 2 * h:2, j:j + 2 * w:2], dy)
                                 for j in range(4)]) for i in range(4)])


def down_space_to_depth(x, dy):
    """The 4x4 stride-2 convolution is a 2x2 stride-1 one on the padded input in 2x2 space-to-depth."""
    n, height, width, c = x.shape
    o = dy.shape[-1]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    s2d = padded.reshape(n, height // 2 + 1, 2, width // 2 + 1, 2, c).transpose(0, 1, 3, 2, 4, 5)
    s2d = s2d.reshape(n, height // 2 + 1, width // 2 + 1, 4 * c)
    stride1 = lambda inp, k: jax.lax.conv_general_dilated(inp, k, (1, 1), "VALID", dimension_numbers=DN)  # noqa
    g = grad_of(stride1, s2d, dy, (2, 2, 4 * c, o))
    return g.reshape(2, 2, 2, 2, c, o).transpose(0, 2, 1, 3, 4, 5).reshape(4, 4, c, o)


def up_xla(x, dy):
    return grad_of(conv._transposed, x, dy, (4, 4, x.shape[-1], dy.shape[-1]))


def up_sub_pixel(x, dy):
    """Through conv.py's own form: a 3x3 stride-1 convolution to 4 x cout channels, then depth-to-space."""
    n, h, w, c = x.shape
    o = dy.shape[-1]
    phases = dy.reshape(n, h, 2, w, 2, o).transpose(0, 1, 3, 2, 4, 5).reshape(n, h, w, 4 * o)
    stride1 = lambda inp, k: jax.lax.conv_general_dilated(inp, k, (1, 1), "SAME", dimension_numbers=DN)  # noqa
    g = grad_of(stride1, x, phases, (3, 3, c, 4 * o))
    return jax.vjp(lambda k: conv._phase_kernel(k, conv._UP), jnp.zeros((4, 4, c, o), x.dtype))[1](g)[0]


def timed(fn, *args, repeats: int) -> float:
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    key = jax.random.PRNGKey(0)
    cases = [("stride 2", size, cin, cout, size // 2, [down_xla, down_shifted, down_space_to_depth])
             for size, cin, cout in ENCODER]
    cases += [("transposed", size, cin, cout, size * 2, [up_xla, conv._up_kernel_grad_matmuls, up_sub_pixel])
              for size, cin, cout in DECODER]
    print("| layer | input | XLA's | 16 shifted matmuls | as a stride-1 convolution | largest relative difference |")
    print("|---|---|---|---|---|---|")
    for kind, size, cin, cout, out, forms in cases:
        x = jax.random.normal(key, (IMAGES, size, size, cin))
        dy = jax.random.normal(jax.random.fold_in(key, 1), (IMAGES, out, out, cout))
        reference = forms[0](x, dy)
        error = max(float(jnp.max(jnp.abs(f(x, dy) - reference)) / jnp.max(jnp.abs(reference))) for f in forms[1:])
        ms = [timed(f, x, dy, repeats=args.repeats) for f in forms]
        print(f"| {kind} {cin}->{cout} | {size}x{size} | " + " | ".join(f"{t:.1f}" for t in ms) + f" | {error:.0e} |")


if __name__ == "__main__":
    main()

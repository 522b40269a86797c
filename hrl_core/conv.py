"""The image encoder's and decoder's 4x4 stride-2 convolutions, with the same results as `flax.linen.Conv` and
`ConvTranspose` (padding "SAME") and gradients computed the fast way on XLA's CPU backend.

Why: at the `cpu` preset the encoder and decoder take about 80% of an update (benchmarks/update_profile.py), and
most of that is in XLA:CPU's input-dilated convolutions, which are slow at these small channel counts: the
transposed convolution's forward pass, and the input gradient of the strided one. Both are rewritten as ordinary
stride-1 convolutions:

    conv_up(x, k)    a stride-2 transposed convolution is, for each of the 4 output phases (even/odd row and
                     column), a 2x2 convolution of the input: one 3x3 stride-1 convolution to 4 x cout channels,
                     with each phase's taps in its place and zeros elsewhere, then depth-to-space (sub-pixel).
    conv_down(x, k)  the strided convolution itself is fast; its input gradient is the transposed one, computed as
                     `conv_up` of the output gradient with the adjoint taps. conv_up's input gradient is the strided
                     convolution of the output gradient with the kernel flipped and transposed.

Kernel gradients are XLA's own, except for the transposed convolution on small inputs (8x8 or less), where the 16
taps' gradients as matmuls over shifted views are faster. Forward values equal the flax layers' to float rounding,
and both gradients equal those of `jax.grad` through the flax layers (tests/test_conv.py).

The rewrite is for XLA:CPU only: on a GPU, cuDNN runs strided and transposed convolutions natively, and the sub-pixel
form costs 2.25x the multiply-adds (a 3x3 kernel to 4 x cout channels instead of 4x4 to cout). So each call picks its
path when it is traced: "subpixel" (the forms above) where `jax.default_backend()` is the CPU, "lax" (plain
`jax.lax.conv_general_dilated` / `conv_transpose` with JAX's own gradients) elsewhere. `use_path("subpixel" | "lax")`
forces one for the calls traced inside it (tests, benchmarks); so does $HRL_CONV_PATH. Both paths take the same
kernels, so parameters and checkpoints are the same whichever path trained them. A function jitted already keeps the
path it was traced with.
"""

from __future__ import annotations

import contextlib
import contextvars
import os

import flax.linen as nn
import jax
import jax.numpy as jnp

from hrl_core.validation import check_choice

_DN = ("NHWC", "HWIO", "NHWC")
# Transposed convolution: output phase p (0: even, 1: odd) reads the input at offset d through kernel tap UP[p, d].
_UP = {(0, -1): 0, (0, 0): 2, (1, 0): 1, (1, 1): 3}
# The strided convolution's adjoint: input phase p receives the output gradient at offset d through tap ADJOINT[p, d].
_ADJOINT = {(0, 0): 1, (0, -1): 3, (1, 1): 0, (1, 0): 2}
_SMALL = 64  # input pixels (8x8) up to which conv_up's kernel gradient is taken as matmuls
PATHS = ("auto", "subpixel", "lax")
_PATH = contextvars.ContextVar("conv_path", default=None)  # None: $HRL_CONV_PATH, else "auto"


@contextlib.contextmanager
def use_path(path: str):
    """Trace the convolutions inside this block on `path` ("subpixel", "lax", or "auto": by backend)."""
    token = _PATH.set(check_choice("path", path, PATHS))
    try:
        yield
    finally:
        _PATH.reset(token)


def current_path() -> str:
    """The path a convolution traced now takes: "subpixel" or "lax"."""
    path = _PATH.get()
    if path is None:
        path = check_choice("HRL_CONV_PATH", os.environ.get("HRL_CONV_PATH") or "auto", PATHS)
    if path == "auto":
        return "subpixel" if jax.default_backend() == "cpu" else "lax"
    return path


def _phase_kernel(k, taps: dict):
    """(4, 4, cin, cout) -> (3, 3, cin, 4 cout): each output phase's taps at its input offsets, zeros elsewhere."""
    zero = jnp.zeros(k.shape[2:], k.dtype)

    def tap(py, dy, px, dx):
        return k[taps[py, dy], taps[px, dx]] if (py, dy) in taps and (px, dx) in taps else zero

    return jnp.stack([jnp.stack([jnp.concatenate([tap(py, dy, px, dx) for py in (0, 1) for px in (0, 1)], -1)
                                 for dx in (-1, 0, 1)]) for dy in (-1, 0, 1)])


def _upsample(x, k, taps: dict):
    """Sub-pixel form of a 4x4 stride-2 transposed convolution: [N, H, W, cin] -> [N, 2H, 2W, cout]."""
    n, h, w, _ = x.shape
    cout = k.shape[-1]
    y = jax.lax.conv_general_dilated(x, _phase_kernel(k, taps), (1, 1), "SAME", dimension_numbers=_DN)
    return y.reshape(n, h, w, 2, 2, cout).transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * h, 2 * w, cout)


def _strided(x, k):
    return jax.lax.conv_general_dilated(x, k, (2, 2), "SAME", dimension_numbers=_DN)


def _transposed(x, k):
    return jax.lax.conv_transpose(x, k, (2, 2), "SAME", dimension_numbers=_DN)


def _up_kernel_grad_matmuls(x, dy):
    """conv_up's kernel gradient as 16 matmuls: tap k = UP[p, d] pairs the input at offset d with output phase p."""
    n, h, w, _ = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    phases = dy.reshape(n, h, 2, w, 2, dy.shape[-1])
    where = {tap: pd for pd, tap in _UP.items()}

    def grad(ky, kx):
        (py, oy), (px, ox) = where[ky], where[kx]
        return jnp.einsum("nhwc,nhwo->co", padded[:, 1 + oy:1 + oy + h, 1 + ox:1 + ox + w], phases[:, :, py, :, px])

    return jnp.stack([jnp.stack([grad(ky, kx) for kx in range(4)]) for ky in range(4)])


def conv_down(x, k):
    """`flax.linen.Conv(cout, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)` with kernel k (4, 4, cin,
    cout) on NHWC input, on the path `current_path()` names."""
    return _conv_down_subpixel(x, k) if current_path() == "subpixel" else _strided(x, k)


@jax.custom_vjp
def _conv_down_subpixel(x, k):
    return _strided(x, k)


def _down_fwd(x, k):
    return _strided(x, k), (x, k)


def _down_bwd(saved, dy):
    x, k = saved
    dk = jax.vjp(lambda kernel: _strided(x, kernel), k)[1](dy)[0]
    return _upsample(dy, jnp.swapaxes(k, 2, 3), _ADJOINT), dk


_conv_down_subpixel.defvjp(_down_fwd, _down_bwd)


def conv_up(x, k):
    """`flax.linen.ConvTranspose(cout, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)` with kernel k (4, 4,
    cin, cout) on NHWC input, on the path `current_path()` names."""
    return _conv_up_subpixel(x, k) if current_path() == "subpixel" else _transposed(x, k)


@jax.custom_vjp
def _conv_up_subpixel(x, k):
    return _upsample(x, k, _UP)


def _up_fwd(x, k):
    return _upsample(x, k, _UP), (x, k)


def _up_bwd(saved, dy):
    x, k = saved
    if x.shape[1] * x.shape[2] <= _SMALL:
        dk = _up_kernel_grad_matmuls(x, dy)
    else:
        dk = jax.vjp(lambda kernel: _transposed(x, kernel), k)[1](dy)[0]
    return _strided(dy, jnp.swapaxes(k[::-1, ::-1], 2, 3)), dk


_conv_up_subpixel.defvjp(_up_fwd, _up_bwd)


class Down(nn.Module):
    """nn.Conv(features, (4, 4), strides 2, "SAME", no bias) through `conv_down`; same parameter name and init on
    either path."""

    features: int

    @nn.compact
    def __call__(self, x):
        k = self.param("kernel", nn.initializers.lecun_normal(), (4, 4, x.shape[-1], self.features))
        return conv_down(x, k)


class Up(nn.Module):
    """nn.ConvTranspose(features, (4, 4), strides 2, "SAME") through `conv_up`; same parameter names and init."""

    features: int
    use_bias: bool = False

    @nn.compact
    def __call__(self, x):
        k = self.param("kernel", nn.initializers.lecun_normal(), (4, 4, x.shape[-1], self.features))
        y = conv_up(x, k)
        return y + self.param("bias", nn.initializers.zeros, (self.features,)) if self.use_bias else y


def flat(layer, x):
    """Apply a conv layer to images with any leading batch dims: [..., H, W, C]."""
    lead = x.shape[:-3]
    y = layer(x.reshape(-1, *x.shape[-3:]))
    return y.reshape(*lead, *y.shape[1:])


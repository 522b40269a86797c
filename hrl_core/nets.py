"""Layers and the small numerical pieces of DreamerV3: symlog, two-hot, unimix categoricals, KL, returns."""

from __future__ import annotations

import contextlib
import contextvars
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from hrl_core import conv

sg = jax.lax.stop_gradient


def symlog(x):
    return jnp.sign(x) * jnp.log1p(jnp.abs(x))


def symexp(x):
    return jnp.sign(x) * jnp.expm1(jnp.abs(x))


# 255 bins evenly spaced in symlog space on [-20, 20].
BINS = jnp.linspace(-20.0, 20.0, 255)


def two_hot(x, bins=BINS):
    """Two-hot encoding of scalars `x` (already in bin space): weight split between the two nearest bins."""
    x = jnp.clip(x, bins[0], bins[-1])
    below = jnp.clip(jnp.sum(bins <= x[..., None], -1) - 1, 0, len(bins) - 2)
    above = below + 1
    w_above = (x - bins[below]) / (bins[above] - bins[below])
    return (jax.nn.one_hot(below, len(bins)) * (1 - w_above)[..., None]
            + jax.nn.one_hot(above, len(bins)) * w_above[..., None])


def two_hot_loss(logits, target):
    """Cross-entropy of the two-hot encoding of symlog(target): the reward and critic loss."""
    return -jnp.sum(sg(two_hot(symlog(target))) * jax.nn.log_softmax(logits), -1)


def two_hot_mean(logits):
    return symexp(jnp.sum(jax.nn.softmax(logits) * BINS, -1))


def unimix_logits(logits, mix: float):
    """Mix `mix` of the uniform distribution into a categorical's probabilities (DreamerV3's unimix)."""
    probs = jax.nn.softmax(logits)
    return jnp.log((1 - mix) * probs + mix / logits.shape[-1])


def sample_onehot(key, logits):
    """One-hot sample with straight-through gradients to the probabilities."""
    probs = jax.nn.softmax(logits)
    onehot = jax.nn.one_hot(jax.random.categorical(key, logits), logits.shape[-1])
    return onehot + probs - sg(probs)


def mode_onehot(logits):
    probs = jax.nn.softmax(logits)
    return jax.nn.one_hot(jnp.argmax(logits, -1), logits.shape[-1]) + probs - sg(probs)


def categorical_kl(lhs_logits, rhs_logits):
    """KL(lhs || rhs) of factored categoricals [..., groups, classes], summed over groups."""
    lhs_logp, rhs_logp = jax.nn.log_softmax(lhs_logits), jax.nn.log_softmax(rhs_logits)
    return jnp.sum(jnp.exp(lhs_logp) * (lhs_logp - rhs_logp), (-2, -1))


def categorical_entropy(logits):
    logp = jax.nn.log_softmax(logits)
    return -jnp.sum(jnp.exp(logp) * logp, (-2, -1))


def kl_losses(post_logits, prior_logits, free_nats: float = 1.0):
    """DreamerV3's KL balancing: dynamics max(1, KL[sg(post)||prior]), representation max(1, KL[post||sg(prior)])."""
    dyn = jnp.maximum(free_nats, categorical_kl(sg(post_logits), prior_logits))
    rep = jnp.maximum(free_nats, categorical_kl(post_logits, sg(prior_logits)))
    return dyn, rep


_UNROLL_SCANS = contextvars.ContextVar("hrl_unroll_scans", default=False)


@contextlib.contextmanager
def unrolled_scans():
    """While active, `scan` traces fully unrolled loops. For FLOP counting only: XLA's cost_analysis() counts a
    while-loop body once, whatever its trip count, so `hrl bench train` compiles a second, unrolled copy to count."""
    token = _UNROLL_SCANS.set(True)
    try:
        yield
    finally:
        _UNROLL_SCANS.reset(token)


def scan(f, init, xs, reverse: bool = False):
    """jax.lax.scan, fully unrolled inside `unrolled_scans()` (read at trace time), rolled (unroll=1) otherwise."""
    return jax.lax.scan(f, init, xs, reverse=reverse, unroll=True if _UNROLL_SCANS.get() else 1)


def adapt_log_scale(log_scale, value, target: float, rate: float, band: float, low: float, high: float,
                    raise_above: bool = True):
    """Director's multiplicative auto-adaptation of a loss scale, kept in log space.

    The scale is multiplied by (1 + rate) when `value` leaves the band [target / (1 + band), (1 + band) target] on
    the side that calls for a larger scale (above it when `raise_above`, below it otherwise), divided by (1 + rate)
    when it leaves on the other side, left alone inside the band, and clipped to [low, high].
    """
    above = (value > (1 + band) * target).astype(jnp.float32)
    below = (value < target / (1 + band)).astype(jnp.float32)
    direction = above - below if raise_above else below - above
    return jnp.clip(log_scale + direction * jnp.log1p(rate), jnp.log(low), jnp.log(high)).astype(jnp.float32)


def lambda_returns(reward, value, cont, discount: float, lam: float):
    """Lambda-returns over time-major [H+1, ...] value and [H, ...] reward/continue (reward[t] follows state t).

    R_t = r_t + gamma c_t ((1 - lam) v_{t+1} + lam R_{t+1}), bootstrapped with R_H = v_H.
    """
    def step(ret_next, inputs):
        r, c, v_next = inputs
        ret = r + discount * c * ((1 - lam) * v_next + lam * ret_next)
        return ret, ret

    _, returns = scan(step, value[-1], (reward, cont, value[1:]), reverse=True)
    return returns


def update_return_scale(scale_state, returns, decay: float = 0.99):
    """EMA of the 5th and 95th return percentiles; the normaliser is max(1, hi - lo)."""
    lo, hi = jnp.percentile(returns, 5), jnp.percentile(returns, 95)
    new = {"lo": decay * scale_state["lo"] + (1 - decay) * lo, "hi": decay * scale_state["hi"] + (1 - decay) * hi}
    return new, jnp.maximum(1.0, new["hi"] - new["lo"])


def init_moments() -> dict:
    """State of a running mean / std normaliser (Director's `Normalize`): EMAs of x and x^2 and an update count."""
    return {"mean": jnp.zeros((), jnp.float32), "sqrs": jnp.zeros((), jnp.float32),
            "count": jnp.zeros((), jnp.float32)}


def update_moments(moments: dict, x, decay: float) -> dict:
    """One EMA step towards the batch mean of x and x^2."""
    return {"mean": decay * moments["mean"] + (1 - decay) * jnp.mean(x),
            "sqrs": decay * moments["sqrs"] + (1 - decay) * jnp.mean(jnp.square(x)),
            "count": moments["count"] + 1}


def moments_stats(moments: dict, decay: float, max_scale: float):
    """(mean, 1 / std) from the bias-corrected EMAs; the std is floored at 1 / max_scale, so a small spread is
    amplified at most max_scale times (Director: 1e2 for returns, 1e8 for advantages)."""
    correction = 1 - decay ** jnp.maximum(moments["count"], 1.0)
    mean = moments["mean"] / correction
    var = moments["sqrs"] / correction - jnp.square(mean)
    return mean, jax.lax.rsqrt(jnp.maximum(var, 1.0 / max_scale ** 2))


class MLP(nn.Module):
    """Dense -> LayerNorm -> SiLU blocks, then an optional linear output (zero-initialised when `zero_out`)."""

    units: int
    layers: int
    out: int | None = None
    zero_out: bool = False

    @nn.compact
    def __call__(self, x):
        for _ in range(self.layers):
            x = nn.silu(nn.LayerNorm()(nn.Dense(self.units, use_bias=False)(x)))
        if self.out is not None:
            init = nn.initializers.zeros if self.zero_out else nn.initializers.lecun_normal()
            x = nn.Dense(self.out, kernel_init=init)(x)
        return x


def check_image_size(image, size: int) -> None:
    """A clear error (at trace time) for images of another size than the model's."""
    if tuple(image.shape[-3:-1]) != (size, size):
        raise ValueError(f"image_size={size} is the model's, but the images are {image.shape[-3]}x{image.shape[-2]}: "
                         f"render the task at size={size} (the run's own task options), or use an agent of that size")


class ImageEncoder(nn.Module):
    """Stride-2 convolutions from `size` x `size` (64, 48 or 32) down to 4x4 (6x6 at 48), LayerNorm + SiLU, flattened
    (hrl_core/conv.py: nn.Conv's results, with faster gradients on a CPU). One stage per channel count."""

    channels: Sequence[int]
    size: int = 64

    @nn.compact
    def __call__(self, image):
        check_image_size(image, self.size)
        x = image.astype(jnp.float32) / 255.0 - 0.5
        for i, ch in enumerate(self.channels):  # named as nn.Conv's, so earlier runs' parameters load
            x = nn.silu(nn.LayerNorm()(conv.flat(conv.Down(ch, name=f"Conv_{i}"), x)))
        return x.reshape(*x.shape[:-3], -1)


class ImageDecoder(nn.Module):
    """Mirror of the encoder: a linear map to `minres` x `minres` features, then stride-2 transposed convolutions to
    the image (hrl_core/conv.py: nn.ConvTranspose's results, computed as sub-pixel convolutions)."""

    channels: Sequence[int]
    minres: int = 4

    @nn.compact
    def __call__(self, feat):
        chans, r = list(self.channels)[::-1], self.minres
        x = nn.Dense(r * r * chans[0])(feat).reshape(*feat.shape[:-1], r, r, chans[0])
        for i, ch in enumerate(chans[1:]):  # named as nn.ConvTranspose's, so earlier runs' parameters load
            x = nn.silu(nn.LayerNorm()(conv.flat(conv.Up(ch, name=f"ConvTranspose_{i}"), x)))
        out = conv.Up(3, use_bias=True, name=f"ConvTranspose_{len(chans) - 1}")
        return conv.flat(out, x) + 0.5  # image in [0, 1]


class BlockLinear(nn.Module):
    """Block-diagonal linear map: `blocks` independent groups (DreamerV3's blocked GRU)."""

    units: int
    blocks: int

    @nn.compact
    def __call__(self, x):
        x = x.reshape(*x.shape[:-1], self.blocks, x.shape[-1] // self.blocks)
        kernel = self.param("kernel", nn.initializers.lecun_normal(batch_axis=(0,)),
                            (self.blocks, x.shape[-1], self.units // self.blocks))
        bias = self.param("bias", nn.initializers.zeros, (self.units,))
        return jnp.einsum("...gi,gio->...go", x, kernel).reshape(*x.shape[:-2], self.units) + bias

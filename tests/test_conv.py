"""hrl_core/conv.py: the encoder's and decoder's convolutions give flax's results and jax.grad's gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.conv_speed import FlaxDecoder, FlaxEncoder  # the encoder and decoder as written with flax's layers
from hrl_core import conv, nets


@pytest.mark.parametrize("cin,cout,size", [(3, 8, 16), (8, 5, 8), (6, 4, 2)])
def test_conv_down_and_up_match_flax_values_and_gradients(cin, cout, size):
    """Values, and the gradients of a nonlinear loss w.r.t. input and kernel, against nn.Conv / nn.ConvTranspose
    (padding SAME, stride 2) with the same kernel; conv_up covers both of its kernel-gradient paths (inputs of 2x2
    and 8x8 use matmuls, 16x16 XLA's gradient)."""
    key = jax.random.PRNGKey(cin)
    x = jax.random.normal(key, (3, size, size, cin))
    for fast, layer in ((conv.conv_down, nn.Conv(cout, (4, 4), strides=(2, 2), padding="SAME", use_bias=False)),
                        (conv.conv_up, nn.ConvTranspose(cout, (4, 4), strides=(2, 2), padding="SAME",
                                                        use_bias=False))):
        k = layer.init(jax.random.fold_in(key, 1), x)["params"]["kernel"]
        reference = lambda x, k: layer.apply({"params": {"kernel": k}}, x)  # noqa: E731
        np.testing.assert_allclose(fast(x, k), reference(x, k), rtol=1e-5, atol=1e-5)
        loss = lambda f: lambda x, k: jnp.sum(jnp.sin(f(x, k)))  # noqa: E731
        for mine, theirs in zip(jax.grad(loss(fast), (0, 1))(x, k), jax.grad(loss(reference), (0, 1))(x, k)):
            np.testing.assert_allclose(mine, theirs, rtol=1e-4, atol=1e-4)


def test_encoder_and_decoder_are_the_flax_layers_they_replace():
    """Same parameter tree and the same initial values from the same key (so earlier runs load, and seeds give the
    same start), and the same outputs, with time-major leading dims."""
    key = jax.random.PRNGKey(0)
    images = jax.random.randint(key, (2, 5, 64, 64, 3), 0, 255).astype(jnp.uint8)
    feat = jax.random.normal(key, (2, 5, 7))
    for mine, theirs, x in ((nets.ImageEncoder((8, 16, 24, 32)), FlaxEncoder((8, 16, 24, 32)), images),
                            (nets.ImageDecoder((8, 16, 24, 32)), FlaxDecoder((8, 16, 24, 32)), feat)):
        p_mine, p_theirs = mine.init(key, x), theirs.init(key, x)
        assert jax.tree.structure(p_mine) == jax.tree.structure(p_theirs)
        for a, b in zip(jax.tree.leaves(p_mine), jax.tree.leaves(p_theirs)):
            np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(mine.apply(p_mine, x), theirs.apply(p_theirs, x), rtol=1e-4, atol=1e-4)

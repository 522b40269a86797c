"""hrl_core/conv.py: the encoder's and decoder's convolutions give flax's results and jax.grad's gradients."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks.conv_speed import FlaxDecoder, FlaxEncoder  # the encoder and decoder as written with flax's layers
from hrl_core import conv, nets


PATHS = ("subpixel", "lax")  # the CPU's path and every other backend's, both run here on the CPU


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("cin,cout,size", [(3, 8, 16), (8, 5, 8), (6, 4, 2)])
def test_conv_down_and_up_match_flax_values_and_gradients(cin, cout, size, path):
    """Values, and the gradients of a nonlinear loss w.r.t. input and kernel, against nn.Conv / nn.ConvTranspose
    (padding SAME, stride 2) with the same kernel, on both paths; on the sub-pixel path conv_up covers both of its
    kernel-gradient forms (inputs of 2x2 and 8x8 use matmuls, 16x16 XLA's gradient)."""
    with conv.use_path(path):
        _check_against_flax(cin, cout, size)


def _check_against_flax(cin, cout, size):
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


@pytest.mark.parametrize("path", PATHS)
def test_encoder_and_decoder_are_the_flax_layers_they_replace(path):
    """Same parameter tree and the same initial values from the same key (so earlier runs load, and seeds give the
    same start), and the same outputs, with time-major leading dims, on both paths."""
    with conv.use_path(path):
        _check_encoder_and_decoder()


def _check_encoder_and_decoder():
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


def test_both_paths_give_equal_values_and_gradients_through_the_encoder_and_decoder():
    """One set of parameters (so a run trained on either backend loads on the other) through both paths: equal
    outputs and equal parameter gradients of a loss through decoder(encoder(images))."""
    key = jax.random.PRNGKey(3)
    images = jax.random.randint(key, (2, 3, 32, 32, 3), 0, 255).astype(jnp.uint8)
    enc, dec = nets.ImageEncoder((8, 16, 24), size=32), nets.ImageDecoder((8, 16, 24))
    with conv.use_path("subpixel"):
        p_enc = enc.init(key, images)
        p_dec = dec.init(key, enc.apply(p_enc, images))

    def loss(params):
        recon = dec.apply(params[1], enc.apply(params[0], images))
        return jnp.mean((recon - images.astype(jnp.float32) / 255) ** 2)

    results = {}
    for path in PATHS:
        with conv.use_path(path):
            results[path] = jax.value_and_grad(loss)((p_enc, p_dec))
    (v_sub, g_sub), (v_lax, g_lax) = results["subpixel"], results["lax"]
    np.testing.assert_allclose(v_sub, v_lax, rtol=1e-5)
    assert jax.tree.structure(g_sub) == jax.tree.structure(g_lax)
    for a, b in zip(jax.tree.leaves(g_sub), jax.tree.leaves(g_lax)):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)


def test_path_is_chosen_by_backend_at_trace_time(monkeypatch):
    """auto: sub-pixel on the CPU, lax on any other backend; use_path forces one inside its block only, and so does
    $HRL_CONV_PATH; only the lax path has XLA's input-dilated convolutions (the slow ones on a CPU) in its
    gradient; a bad name raises, naming it."""
    x, k = jnp.ones((1, 8, 8, 3)), jnp.ones((4, 4, 3, 5))
    monkeypatch.delenv("HRL_CONV_PATH", raising=False)
    assert conv.current_path() == "subpixel"
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    assert conv.current_path() == "lax"
    with conv.use_path("subpixel"):
        assert conv.current_path() == "subpixel"
    assert conv.current_path() == "lax"
    monkeypatch.setenv("HRL_CONV_PATH", "subpixel")
    assert conv.current_path() == "subpixel"
    monkeypatch.setenv("HRL_CONV_PATH", "cudnn")
    with pytest.raises(ValueError, match="HRL_CONV_PATH='cudnn' is not valid"):
        conv.current_path()
    with pytest.raises(ValueError, match="path='fast' is not valid"):
        with conv.use_path("fast"):
            pass
    monkeypatch.delenv("HRL_CONV_PATH")
    for path, dilated in (("subpixel", False), ("lax", True)):
        with conv.use_path(path):
            text = str(jax.make_jaxpr(jax.grad(lambda x, k: conv.conv_up(conv.conv_down(x, k), k.swapaxes(2, 3)
                                                                               ).sum(), (0, 1)))(x, k))
        assert ("lhs_dilation=(2, 2)" in text) == dilated, path

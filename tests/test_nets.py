import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrl_core import nets


def test_symlog_symexp_are_inverse_and_compress():
    x = jnp.array([-1000.0, -2.0, 0.0, 0.5, 1e4])
    assert np.allclose(nets.symexp(nets.symlog(x)), x, rtol=1e-5)
    assert float(nets.symlog(jnp.array(np.e - 1))) == pytest.approx(1.0)
    assert float(nets.symlog(jnp.array(-(np.e - 1)))) == pytest.approx(-1.0)


def test_two_hot_splits_weight_between_neighbours():
    bins = jnp.array([-1.0, 0.0, 1.0, 2.0])
    enc = nets.two_hot(jnp.array([0.25, 2.0, 5.0, -3.0]), bins)
    assert np.allclose(enc[0], [0, 0.75, 0.25, 0])
    assert np.allclose(enc[1], [0, 0, 0, 1])
    assert np.allclose(enc[2], [0, 0, 0, 1])  # clipped above
    assert np.allclose(enc[3], [1, 0, 0, 0])  # clipped below
    # The expectation over the encoding recovers the value on the standard 255 bins.
    x = jnp.array([0.3, -7.2, 12.0])
    assert np.allclose((nets.two_hot(x) * nets.BINS).sum(-1), x, atol=1e-5)


def test_two_hot_loss_and_mean_by_hand():
    target = jnp.array(np.e - 1)  # symlog(target) = 1.0, which sits between two bins
    enc = nets.two_hot(jnp.array(1.0))
    logits = jnp.log(enc + 1e-12)
    assert float(nets.two_hot_mean(logits)) == pytest.approx(np.e - 1, rel=1e-4)
    uniform = jnp.zeros(255)
    assert float(nets.two_hot_loss(uniform, target)) == pytest.approx(np.log(255), rel=1e-5)


def test_kl_free_bits_and_balance():
    p = jnp.log(jnp.array([[[0.5, 0.5]]]))
    q = jnp.log(jnp.array([[[0.9, 0.1]]]))
    kl = 0.5 * np.log(0.5 / 0.9) + 0.5 * np.log(0.5 / 0.1)
    assert float(nets.categorical_kl(p, q)[0]) == pytest.approx(kl, rel=1e-5)
    dyn, rep = nets.kl_losses(p, q, free_nats=1.0)
    assert float(dyn[0]) == pytest.approx(1.0) and float(rep[0]) == pytest.approx(1.0)  # KL < 1 nat -> clipped
    dyn, rep = nets.kl_losses(p, q, free_nats=0.1)
    assert float(dyn[0]) == pytest.approx(kl, rel=1e-5)
    # Dynamics loss trains only the prior, representation loss only the posterior.
    g_post = jax.grad(lambda a: nets.kl_losses(a, q, 0.0)[0].sum())(p)
    g_prior = jax.grad(lambda b: nets.kl_losses(p, b, 0.0)[1].sum())(q)
    assert not np.any(g_post) and not np.any(g_prior)


def test_unimix_puts_a_floor_under_every_class():
    logits = jnp.array([100.0, 0.0, -100.0, -100.0])
    probs = jax.nn.softmax(nets.unimix_logits(logits, 0.01))
    assert float(probs.min()) >= 0.01 / 4 - 1e-7 and float(probs.sum()) == pytest.approx(1.0)


def test_lambda_returns_by_hand():
    reward, cont = jnp.array([1.0, 1.0]), jnp.array([1.0, 1.0])
    value = jnp.array([0.0, 2.0, 4.0])
    # lam = 1: Monte-Carlo with bootstrap: R1 = 1 + .5 * 4 = 3, R0 = 1 + .5 * 3 = 2.5
    assert np.allclose(nets.lambda_returns(reward, value, cont, 0.5, 1.0), [2.5, 3.0])
    # lam = 0: one-step TD targets: R0 = 1 + .5 * 2, R1 = 1 + .5 * 4
    assert np.allclose(nets.lambda_returns(reward, value, cont, 0.5, 0.0), [2.0, 3.0])
    # A terminal transition (cont 0) cuts the bootstrap.
    assert np.allclose(nets.lambda_returns(reward, value, jnp.array([1.0, 0.0]), 0.5, 1.0), [1.5, 1.0])


def test_return_scale_uses_percentile_range_and_floor():
    returns = jnp.linspace(0, 100, 101)
    state, scale = nets.update_return_scale({"lo": 0.0, "hi": 0.0}, returns, decay=0.0)
    assert float(state["lo"]) == pytest.approx(5.0) and float(state["hi"]) == pytest.approx(95.0)
    assert float(scale) == pytest.approx(90.0)
    _, small = nets.update_return_scale({"lo": 0.0, "hi": 0.0}, returns * 0.001, decay=0.0)
    assert float(small) == 1.0  # small returns are not scaled up
    ema_state, _ = nets.update_return_scale({"lo": 0.0, "hi": 0.0}, returns, decay=0.99)
    assert float(ema_state["hi"]) == pytest.approx(0.95)


def test_straight_through_onehot_sample():
    logits = jnp.log(jnp.array([[0.2, 0.8]]))
    sample = nets.sample_onehot(jax.random.PRNGKey(0), logits)
    assert set(np.asarray(sample).ravel().round(6)) <= {0.0, 1.0}
    grad = jax.grad(lambda l: (nets.sample_onehot(jax.random.PRNGKey(0), l) * jnp.array([1.0, 2.0])).sum())(logits)
    assert np.any(grad != 0)  # gradients flow to the probabilities


def test_slow_critic_regulariser_and_ema():
    from hrl_core.agents.common import Critic, critic_loss, ema

    critic = Critic(8, 1)
    feat = jnp.ones((3, 2, 4))
    params = critic.init(jax.random.PRNGKey(0), feat)
    loss = critic_loss(critic, params, params, feat, jnp.zeros((2, 2)), jnp.ones((2, 2)))
    assert float(loss) == pytest.approx(2 * np.log(255), rel=1e-4)  # zero-initialised output: uniform over bins
    slow = ema(jax.tree.map(jnp.zeros_like, params), jax.tree.map(jnp.ones_like, params), 0.02)
    assert all(np.allclose(x, 0.02) for x in jax.tree.leaves(slow))

"""FLOP counting behind `hrl bench train`: scans are counted once per iteration, not once per loop."""

import jax
import jax.numpy as jnp
import numpy as np

from hrl_core import bench, nets
from hrl_core.agents import make_agent
from hrl_core.config import make_config
from hrl_core.envs import make_env
from tests.helpers import SMALL, random_batch

MATMUL_STEPS, ROWS, WIDTH = 16, 64, 256
MATMUL_FLOPS = MATMUL_STEPS * 2 * ROWS * WIDTH * WIDTH  # 1.34e8


def _matmul_chain(x, w):
    return nets.scan(lambda c, _: (jnp.tanh(c @ w), c.sum()), x, jnp.zeros(MATMUL_STEPS))


def test_unrolled_scan_same_result_as_rolled():
    """Pins `nets.scan` under `unrolled_scans()`: same values as the rolled scan (forward and reversed), so the
    counted copy computes what the timed update computes; the flag is read at trace time and reset on exit."""
    x = jax.random.normal(jax.random.PRNGKey(0), (4, 8))
    w = jax.random.normal(jax.random.PRNGKey(1), (8, 8)) / 3
    reward, cont = jnp.linspace(0, 1, 6)[:, None] * jnp.ones((6, 3)), jnp.full((6, 3), 0.9)
    value = jnp.linspace(1, 2, 7)[:, None] * jnp.ones((7, 3))
    rolled = (jax.jit(lambda x, w: _matmul_chain(x, w))(x, w), nets.lambda_returns(reward, value, cont, 0.99, 0.95))
    with nets.unrolled_scans():
        unrolled = (jax.jit(lambda x, w: _matmul_chain(x, w))(x, w),
                    nets.lambda_returns(reward, value, cont, 0.99, 0.95))
    assert not nets._UNROLL_SCANS.get()
    for a, b in zip(jax.tree.leaves(rolled), jax.tree.leaves(unrolled)):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-5, atol=1e-6)


def test_unrolled_count_is_per_iteration_and_rolled_is_once():
    """Pins the per-iteration term: a 16-step scan of a 64x256 @ 256x256 matmul counts 16 * 2*64*256*256 FLOPs
    (within 2%) when unrolled for counting, while XLA's count of the rolled loop is one body (about 1/16 of it):
    the XLA behaviour that made `hrl bench train` undercount."""
    x, w = jnp.ones((ROWS, WIDTH)), jnp.ones((WIDTH, WIDTH))
    rolled_compiled = jax.jit(_matmul_chain).lower(x, w).compile()
    rolled = bench.xla_flops(rolled_compiled)
    counted, _, left = bench.unrolled_flops(_matmul_chain, x, w)
    assert abs(counted / MATMUL_FLOPS - 1) < 0.02
    assert abs(rolled * MATMUL_STEPS / MATMUL_FLOPS - 1) < 0.02
    assert bench.loops_left(rolled_compiled.as_text()) == 1 and left == 0


def test_train_step_count_unrolls_every_scan_and_exceeds_rolled():
    """Pins the train-step count: the counted copy of a (SMALL) DreamerV3 update has no scan left (observe,
    imagine, lambda returns and their gradients all unrolled) and counts more FLOPs than XLA's rolled count (about
    5% more at SMALL sizes, where the CNN encoder and decoder outside the scans dominate; 20% at the tiny preset)."""
    env = make_env("walker_speed")
    cfg = make_config("tiny", **SMALL)
    agent = make_agent(cfg, env.obs_space, env.act_space)
    state, batch, key = agent.init(jax.random.PRNGKey(0)), random_batch(agent, cfg), jax.random.PRNGKey(1)
    rolled_compiled = jax.jit(agent.train_step).lower(state, batch, key).compile()
    counted, _, left = bench.unrolled_flops(agent.train_step, state, batch, key)
    assert bench.loops_left(rolled_compiled.as_text()) >= 3
    assert left == 0
    assert counted > 1.03 * bench.xla_flops(rolled_compiled)


def test_matmul_peak_times_the_products_themselves():
    """The peak is the rate of products that each wait on the one before (on a GPU, a loop that blocks only at the
    end times the dispatch): a positive, finite rate at any size, from a chain that stays finite."""
    rate = bench.matmul_peak_gflops(n=128, repeats=3)
    assert np.isfinite(rate) and rate > 0


def test_seed_count_that_leaves_devices_idle_warns():
    """On 2 devices: 4 seeds shard over both, 1 seed needs no warning, 3 seeds run on one device with a warning
    that names what would use both."""
    import os
    import subprocess
    import sys

    code = """
import warnings, jax
from hrl_core.batches import seed_sharding
assert jax.local_device_count() == 2
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    assert len(seed_sharding(4).device_set) == 2 and seed_sharding(1) is None
    assert not caught, [str(w.message) for w in caught]
    assert seed_sharding(3) is None
assert len(caught) == 1 and "3 seeds do not split evenly over the 2 local devices" in str(caught[0].message)
assert "a multiple of 2 seeds" in str(caught[0].message)
"""
    env = {**os.environ, "JAX_PLATFORMS": "cpu",
           "XLA_FLAGS": f"{os.environ.get('XLA_FLAGS', '')} --xla_force_host_platform_device_count=2".strip()}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr

import jax
import numpy as np
import pytest

from hrl_core.agents import make_agent
from hrl_core.config import make_config
from hrl_core.envs import make_env
from tests.helpers import SMALL, random_batch


@pytest.fixture(scope="module")
def setup():
    env = make_env("walker_speed")
    cfg = make_config("tiny", **SMALL)
    agent = make_agent(cfg, env.obs_space, env.act_space)
    return env, cfg, agent, jax.jit(agent.train_step)


def test_one_update_shapes_and_finite_metrics(setup):
    env, cfg, agent, step = setup
    state = agent.init(jax.random.PRNGKey(0))
    new, metrics = step(state, random_batch(agent, cfg), jax.random.PRNGKey(1))
    assert jax.tree.structure(new) == jax.tree.structure(state)
    for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(new)):
        assert a.shape == b.shape and a.dtype == b.dtype
    assert all(np.isfinite(float(v)) for v in metrics.values())
    for key in ("wm/image", "wm/reward", "wm/cont", "wm/dyn", "wm/rep", "loss/actor", "loss/critic"):
        assert key in metrics


def test_no_recompiles_after_first_step(setup):
    env, cfg, agent, _ = setup
    step = jax.jit(agent.train_step)
    state = agent.init(jax.random.PRNGKey(0))
    for i in range(3):
        state, _ = step(state, random_batch(agent, cfg, seed=i), jax.random.PRNGKey(i))
    assert step._cache_size() == 1


def test_same_seed_same_first_updates(setup):
    env, cfg, agent, step = setup
    runs = []
    for _ in range(2):
        state = agent.init(jax.random.PRNGKey(7))
        for i in range(2):
            state, metrics = step(state, random_batch(agent, cfg, seed=i), jax.random.PRNGKey(i))
        runs.append((state, metrics))
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1])):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_jitted_init_is_the_op_by_op_init(setup):
    """Runs start from `jax.jit(agent.init)` (one cached compile); it gives exactly the op-by-op initial state."""
    env, cfg, agent, _ = setup
    eager, jitted = agent.init(jax.random.PRNGKey(3)), jax.jit(agent.init)(jax.random.PRNGKey(3))
    assert jax.tree.structure(eager) == jax.tree.structure(jitted)
    for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted)):
        assert np.array_equal(np.asarray(a), np.asarray(b))


def test_world_model_losses_fall_on_real_frames():
    env = make_env("walker_walk", seed=0)
    cfg = make_config("tiny", **{**SMALL, "batch_size": 2, "batch_length": 16, "train_parts": ("WM",),
                                 "wm_lr": 1e-3})
    agent = make_agent(cfg, env.obs_space, env.act_space)
    rng = np.random.default_rng(0)
    frames, actions, rewards = [env.reset()["image"]], [np.zeros(6, np.float32)], [0.0]
    for _ in range(2 * 16 - 1):
        a = rng.uniform(-1, 1, 6).astype(np.float32)
        obs = env.step(a)
        frames.append(obs["image"]), actions.append(a), rewards.append(obs["reward"])
    batch = {"image": np.stack(frames).reshape(2, 16, 64, 64, 3),
             "action": np.stack(actions).reshape(2, 16, 6), "reward": np.array(rewards, np.float32).reshape(2, 16),
             "is_first": np.zeros((2, 16), bool), "is_terminal": np.zeros((2, 16), bool)}
    step = jax.jit(agent.train_step)
    state = agent.init(jax.random.PRNGKey(0))
    losses = []
    for i in range(40):
        state, metrics = step(state, batch, jax.random.PRNGKey(i))
        losses.append(float(metrics["wm/image"]))
    assert np.mean(losses[-5:]) < 0.6 * np.mean(losses[:5])


def test_frozen_parts_stay_bitwise_unchanged():
    env = make_env("walker_speed")
    cfg = make_config("tiny", **SMALL, train_parts=("A",))
    agent = make_agent(cfg, env.obs_space, env.act_space)
    state = agent.init(jax.random.PRNGKey(0))
    new, _ = jax.jit(agent.train_step)(state, random_batch(agent, cfg), jax.random.PRNGKey(1))
    for name in ("wm", "critic"):
        for a, b in zip(jax.tree.leaves((state["params"][name], state["opt"][name])),
                        jax.tree.leaves((new["params"][name], new["opt"][name]))):
            assert np.array_equal(np.asarray(a), np.asarray(b))
    assert any(not np.array_equal(a, b) for a, b in zip(jax.tree.leaves(state["params"]["actor"]),
                                                         jax.tree.leaves(new["params"]["actor"])))


@pytest.mark.parametrize("call,match", [
    (lambda: make_config("huge"), "tiny, cpu, size1m, S, M, L, XL"),
    (lambda: make_config("tiny", deter=0), "deter=0"),
    (lambda: make_config("tiny", agent="ppo"), "dreamer, director"),
    (lambda: make_config("tiny", horizon=8, manager_period=3), "manager_period=3"),
    (lambda: make_config("tiny", train_parts=("X",)), "WM, A, V"),
    (lambda: make_config("tiny", colour=1), "allowed options"),
])
def test_bad_config_names_the_option(call, match):
    with pytest.raises(ValueError, match=match):
        call()

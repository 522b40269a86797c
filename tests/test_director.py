import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrl_core.agents import make_agent
from hrl_core.agents.director import max_cosine
from hrl_core.config import make_config
from hrl_core.envs import make_env
from tests.helpers import SMALL, random_batch


@pytest.fixture(scope="module")
def setup():
    env = make_env("walker_speed")
    cfg = make_config("tiny", agent="director", **SMALL)
    agent = make_agent(cfg, env.obs_space, env.act_space)
    return env, cfg, agent, agent.init(jax.random.PRNGKey(0))


def test_max_cosine_by_hand():
    g, s = jnp.array([3.0, 4.0]), jnp.array([4.0, 3.0])
    assert float(max_cosine(g, s)) == pytest.approx(24 / 25)  # equal norms: the cosine
    assert float(max_cosine(g, g)) == pytest.approx(1.0)
    assert float(max_cosine(g, 0.5 * g)) == pytest.approx(0.5)  # same direction, half the norm
    assert float(max_cosine(g, 2 * g)) == pytest.approx(0.5)
    assert float(max_cosine(g, -g)) == pytest.approx(-1.0)


def _leaves_equal(a, b) -> bool:
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_a_frozen_part_keeps_all_its_state_bitwise():
    """Fine-tuning WM+M (worker frozen): one masked update (common.keep_frozen) keeps everything the frozen parts
    own exactly, their parameters and optimiser states and the state beside the gradients (the worker's slow critic,
    return normaliser, advantage normaliser, the goal autoencoder's adapted KL scale), while the manager's move."""
    env = make_env("walker_speed")
    cfg = make_config("tiny", agent="director", **SMALL, train_parts=("WM", "M"))
    agent = make_agent(cfg, env.obs_space, env.act_space)
    state = agent.init(jax.random.PRNGKey(0))
    new, _ = jax.jit(agent.train_step)(state, random_batch(agent, cfg), jax.random.PRNGKey(1))
    for group in ("worker", "goal_ae", "critic_goal"):
        assert _leaves_equal(state["params"][group], new["params"][group]), group
        assert _leaves_equal(state["opt"][group], new["opt"][group]), group
    assert _leaves_equal(state["slow_critic"]["goal"], new["slow_critic"]["goal"])
    assert _leaves_equal(state["retnorm"]["goal"], new["retnorm"]["goal"])
    assert _leaves_equal(state["adapt"]["goal_kl"], new["adapt"]["goal_kl"])
    if "advnorm" in state:
        assert _leaves_equal(state["advnorm"]["worker"], new["advnorm"]["worker"])
    moved = {"manager": lambda s: s["params"]["manager"], "wm": lambda s: s["params"]["wm"],
             "ext normaliser": lambda s: s["retnorm"]["ext"]}
    for name, part in moved.items():  # the trained parts move
        assert not _leaves_equal(part(state), part(new)), name


def test_goal_codes_are_one_hot_of_the_configured_shape(setup):
    env, cfg, agent, state = setup
    latent = {"deter": jax.random.normal(jax.random.PRNGKey(1), (5, cfg.deter)),
              "stoch": jnp.zeros((5, cfg.stoch, cfg.classes))}
    code, goal = agent.choose_goal(state["params"], latent, jnp.ones((5, 1)), jax.random.PRNGKey(2), True)
    assert code.shape == (5, cfg.goal_codes, cfg.goal_classes) and goal.shape == (5, cfg.deter)
    assert np.all(np.asarray(code).sum(-1) == 1) and set(np.unique(code)) == {0.0, 1.0}


def test_manager_acts_only_every_k_steps(setup):
    env, cfg, agent, state = setup
    policy = jax.jit(agent.policy)
    carry = agent.initial_carry(1)
    obs = {k: jnp.asarray(v)[None] for k, v in env.reset().items() if k not in ("is_last", "is_terminal")}
    decisions, goals = [], []
    for t in range(3 * cfg.manager_period + 1):
        _, carry, aux = policy(state, carry, obs, jax.random.PRNGKey(t))
        decisions.append(bool(aux["decision"][0]))
        goals.append(np.asarray(aux["goal"][0]))
        obs = {**obs, "is_first": jnp.zeros((1,), bool)}
    assert decisions == [t % cfg.manager_period == 0 for t in range(len(decisions))]
    for t in range(1, len(goals)):
        if not decisions[t]:
            assert np.array_equal(goals[t], goals[t - 1])  # the goal is held between decisions


def test_decoded_goals_have_the_image_shape(setup):
    from hrl_core.analysis.goals import decode_goals, rollout_trace

    env, cfg, agent, state = setup
    images = decode_goals(agent, state, np.zeros((3, cfg.deter)), task=np.ones(1))
    assert images.shape == (3, 64, 64, 3) and images.dtype == np.uint8
    trace = rollout_trace(agent, state, make_env("walker_speed", time_limit=0.5), steps=12)
    assert trace["goal_image"].shape == trace["image"].shape == (12, 64, 64, 3)
    assert {"code", "goal_reward", "goal_distance", "decision"} <= set(trace)
    assert trace["code"].shape == (12, cfg.goal_codes)


def test_no_recompiles_and_finite_metrics(setup):
    env, cfg, agent, state = setup
    step = jax.jit(agent.train_step)
    for i in range(3):
        state, metrics = step(state, random_batch(agent, cfg, seed=i), jax.random.PRNGKey(i))
    assert step._cache_size() == 1
    assert all(np.isfinite(float(v)) for v in metrics.values())
    for key in ("loss/manager", "loss/worker", "loss/goal_ae", "goal/kl", "worker/goal_reward",
                "manager/explore_reward", "loss/critic_ext", "loss/critic_expl", "loss/critic_goal"):
        assert key in metrics


def test_finetune_manager_only_leaves_everything_else_bitwise_unchanged(setup):
    env, _, _, _ = setup
    cfg = make_config("tiny", agent="director", **SMALL, train_parts=("M",))
    agent = make_agent(cfg, env.obs_space, env.act_space)
    state = agent.init(jax.random.PRNGKey(0))
    new, _ = jax.jit(agent.train_step)(state, random_batch(agent, cfg), jax.random.PRNGKey(1))
    for name in state["params"]:
        same = all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(
            jax.tree.leaves((state["params"][name], state["opt"][name])),
            jax.tree.leaves((new["params"][name], new["opt"][name]))))
        assert same == (name != "manager"), name
    for a, b in zip(jax.tree.leaves((state["slow_critic"], state["adapt"]["goal_kl"])),
                    jax.tree.leaves((new["slow_critic"], new["adapt"]["goal_kl"]))):
        assert np.array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.slow
def test_director_run_trains_checkpoints_resumes_and_finetunes(tmp_path):
    from hrl_core.learned import load_agent
    from hrl_core.rundir import RunSpec
    from hrl_core.train import Schedule, train

    src = tmp_path / "maze"
    opts = {"time_limit": 0.4}
    spec = RunSpec.create("maze_train", agent="director", config=SMALL, env_options=opts)
    first = train(src, spec, Schedule(24, checkpoint_every=12, prefill=16), parallel=False, progress=False)
    assert first["updates"] > 0
    resumed = train(src, spec, Schedule(32, prefill=16), resume=True, parallel=False, progress=False)
    assert resumed["step"] == 32 and resumed["replay_steps"] == 32
    _, src_state, _ = load_agent(src)
    tuned = tmp_path / "novel"
    train(tuned, RunSpec.create("maze_novel", agent="director", config={**SMALL, "train_parts": ["WM", "M"]},
                                env_options=opts, init_from=src),
          Schedule(24, prefill=16), parallel=False, progress=False)
    _, tuned_state, _ = load_agent(tuned)
    for name in ("worker", "goal_ae", "critic_goal"):  # frozen: exactly the source run's parameters
        for a, b in zip(jax.tree.leaves(src_state["params"][name]), jax.tree.leaves(tuned_state["params"][name])):
            assert np.array_equal(np.asarray(a), np.asarray(b))
    assert any(not np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(
        jax.tree.leaves(src_state["params"]["manager"]), jax.tree.leaves(tuned_state["params"]["manager"])))

"""Director's context-conditioned goals (`goal_context`): the goal autoencoder is trained on replay pairs
(s_t, s_t+K) and decodes a goal given the state it is set from, when acting, in imagination and in the explorer."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrl_core.agents import make_agent
from hrl_core.agents.director import GoalAutoencoder
from hrl_core.analysis.goals import GoalDreamer
from hrl_core.config import make_config
from hrl_core.envs import make_env
from tests.helpers import SMALL, random_batch

ENV = make_env("walker_speed")


def agent_for(**overrides):
    cfg = make_config("tiny", agent="director", **{**SMALL, "goal_context": True, **overrides})
    agent = make_agent(cfg, ENV.obs_space, ENV.act_space)
    return cfg, agent, agent.init(jax.random.PRNGKey(0))


def test_the_goal_autoencoder_trains_on_pairs_k_steps_apart():
    """The reconstruction loss is that of s_t+K decoded from its code given s_t, over every pair of the replayed
    sequences (T - K per sequence), computed here by hand with the same key."""
    cfg, agent, state = agent_for()
    k, key = cfg.manager_period, jax.random.PRNGKey(3)
    deter = jax.random.normal(jax.random.PRNGKey(1), (cfg.batch_length, 3, cfg.deter))
    _, (_, metrics) = agent.goal_ae_loss(state["params"]["goal_ae"], deter, jnp.float32(0.0), key)
    goal, context = deter[k:].reshape(-1, cfg.deter), deter[:-k].reshape(-1, cfg.deter)
    recon, _ = agent.goal_ae.apply(state["params"]["goal_ae"], goal, key, context)
    assert float(metrics["goal/recon"]) == pytest.approx(float(jnp.sum((recon - goal) ** 2, -1).mean()), rel=1e-5)
    recon_same, _ = agent.goal_ae.apply(state["params"]["goal_ae"], goal, key, goal)  # context = the goal itself
    assert float(jnp.sum((recon_same - goal) ** 2, -1).mean()) != pytest.approx(float(metrics["goal/recon"]))


def test_a_code_decodes_to_a_goal_that_depends_on_the_state_it_is_set_from():
    cfg, agent, state = agent_for()
    code = jax.nn.one_hot(jnp.zeros((1, cfg.goal_codes), int), cfg.goal_classes)
    a, b = jnp.zeros((1, cfg.deter)), jnp.ones((1, cfg.deter))
    assert not np.allclose(agent.decode_goal(state["params"], code, a), agent.decode_goal(state["params"], code, b))
    _, plain, plain_state = agent_for(goal_context=False)
    assert np.allclose(plain.decode_goal(plain_state["params"], code, a), plain.decode_goal(plain_state["params"], code, b))
    with pytest.raises(ValueError, match="goal_context=True is this goal autoencoder's, but a context was not given"):
        agent.goal_ae.apply(state["params"]["goal_ae"], code, method=GoalAutoencoder.decode)


def test_acting_decodes_the_goal_from_the_current_state():
    """At a decision (the first step) the held goal is the chosen code decoded given the step's posterior state."""
    cfg, agent, state = agent_for()
    obs = {k: np.asarray(v)[None] for k, v in ENV.reset().items()}
    obs = {k: obs[k] for k in ("image", "task", "is_first")}
    _, carry, aux = jax.jit(agent.policy, static_argnames="mode")(state, agent.initial_carry(1), obs,
                                                                  jax.random.PRNGKey(2), mode="mode")
    code = jax.nn.one_hot(aux["code"], cfg.goal_classes)
    expected = agent.decode_goal(state["params"], code, carry["state"]["deter"])
    np.testing.assert_allclose(carry["goal"], expected, rtol=1e-5, atol=1e-6)


def test_the_update_runs_and_the_explorer_decodes_with_the_context():
    cfg, agent, state = agent_for()
    new, metrics = jax.jit(agent.train_step)(state, random_batch(agent, cfg), jax.random.PRNGKey(1))
    assert all(np.isfinite(float(v)) for v in jax.tree.leaves(metrics))
    dreamer = GoalDreamer(agent, new, steps=3)
    image = dreamer.goal_image(np.zeros(cfg.goal_codes, int), np.ones(1), context=np.zeros(cfg.deter))
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    with pytest.raises(ValueError, match="context=None is not valid for this run"):
        dreamer.goal_image(np.zeros(cfg.goal_codes, int), np.ones(1))
    latent = {"deter": np.zeros(cfg.deter, np.float32), "stoch": np.eye(cfg.classes, dtype=np.float32)[
        np.zeros(cfg.stoch, int)]}
    assert dreamer.dream(latent, np.zeros(cfg.goal_codes, int), np.ones(1))["frames"].shape == (3, 64, 64, 3)


def test_context_goals_need_pairs_within_a_sequence():
    with pytest.raises(ValueError, match="goal_context=True is not valid with batch_length=4"):
        make_config("tiny", agent="director", goal_context=True, batch_length=4, manager_period=4, horizon=8)

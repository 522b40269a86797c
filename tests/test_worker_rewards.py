"""Director's worker rewards as Director weights them (`worker_rewards`, `worker_critics`): a critic and return
normaliser per reward, weights acting after normalisation; the earlier summed form for the runs trained with it."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrl_core import nets
from hrl_core.agents import make_agent
from hrl_core.agents.director import RETURN_NORM
from hrl_core.config import make_config
from hrl_core.envs import make_env
from hrl_core.rundir import read_spec
from tests.helpers import SMALL, random_batch

ENV = make_env("walker_speed")


def agent_for(**overrides):
    cfg = make_config("tiny", agent=overrides.pop("agent", "director+wr"), **{**SMALL, **overrides})
    agent = make_agent(cfg, ENV.obs_space, ENV.act_space)
    return cfg, agent, agent.init(jax.random.PRNGKey(0))


def _start(cfg, n=4):
    return {"deter": jax.random.normal(jax.random.PRNGKey(5), (n, cfg.deter)),
            "stoch": jax.nn.one_hot(jnp.zeros((n, cfg.stoch), int), cfg.classes)}


def test_each_worker_reward_has_its_own_critic_trained_on_its_own_reward():
    """goal=1,extr=1: two worker critics (critic_goal, critic_wextr), each with its own normaliser. With the
    zero-initialised critics (value 0), the extrinsic critic's lambda-returns are those of the imagined task reward
    alone, computed here by hand over the same goal segments; the goal critic's differ from them."""
    cfg, agent, state = agent_for()
    assert {"critic_goal", "critic_wextr"} <= set(state["params"]) and "critic_wexpl" not in state["params"]
    assert set(state["retnorm"]) == set(state["slow_critic"]) == {"ext", "expl", "goal", "wextr"}
    p = state["params"]
    _, (traj, norms, metrics) = agent.worker_loss(p["worker"], p, state, _start(cfg), jnp.full((4, 1), 0.5),
                                                   jax.random.PRNGKey(6))
    assert set(traj["w_returns"]) == {"goal", "wextr"} and set(norms["retnorm"]) == {"goal", "wextr"}
    seg = lambda x: agent._segments(jnp.concatenate([x, x[-1:]], 0))[:-1]  # noqa: E731
    value = jnp.zeros((cfg.manager_period + 1, traj["w_returns"]["wextr"].shape[1]))
    by_hand = nets.lambda_returns(seg(traj["r_ext"]), value, seg(traj["cont"]), cfg.discount, cfg.lam)
    np.testing.assert_allclose(traj["w_returns"]["wextr"], by_hand, rtol=1e-5, atol=1e-7)
    assert not np.allclose(traj["w_returns"]["goal"], by_hand, atol=1e-3)
    assert {"worker/return_scale_goal", "worker/return_scale_extr", "worker/advantage_std_extr"} <= set(metrics)


@pytest.mark.parametrize("overrides", [{}, {"director_norm": "percentile", "director_critic": "target"}])
def test_the_update_trains_every_worker_critic(overrides):
    """One jitted update moves each worker critic and its normaliser, and logs its critic loss and scales."""
    cfg, agent, state = agent_for(**overrides)
    new, metrics = jax.jit(agent.train_step)(state, random_batch(agent, cfg), jax.random.PRNGKey(1))
    for name in ("critic_goal", "critic_wextr"):
        moved = jax.tree.map(lambda a, b: bool(jnp.any(a != b)), state["params"][name], new["params"][name])
        assert any(jax.tree.leaves(moved)), name
    assert float(new["retnorm"]["wextr"]["count" if "count" in new["retnorm"]["wextr"] else "hi"]) != 0.0
    assert {"loss/critic_goal", "loss/critic_wextr", "worker/return_scale_extr",
            "manager/advantage_std_ext"} <= set(metrics)
    assert all(np.isfinite(float(v)) for v in jax.tree.leaves(metrics))


def test_weights_act_after_normalisation_by_hand():
    """The summed advantage is sum_i w_i (R_i - b_i) / std(R_i), each std from that critic's own normaliser (first
    update: the batch's std); a reward 1000 times smaller counts as much as a large one once normalised."""
    _, agent, state = agent_for(worker_rewards="goal=1,extr=2")
    goal = jnp.array([0.1, 0.5, 0.9, 0.3])
    extr = 1e-3 * jnp.array([2.0, -1.0, 4.0, 3.0])
    terms = {"goal": (1.0, goal, jnp.zeros(4)), "wextr": (2.0, extr, jnp.zeros(4))}
    new, total, stats = agent._weighted_advantage(state["retnorm"], terms)

    def scale(x):  # 1 / moments_stats after one update: sqrt(E[x^2] - E[x]^2), floored at 1 / max
        return max(float(jnp.sqrt(jnp.mean(x ** 2) - jnp.mean(x) ** 2)), 1 / RETURN_NORM[1])

    expected = goal / scale(goal) + 2.0 * extr / scale(extr)
    np.testing.assert_allclose(total, expected, rtol=1e-4)
    assert float(stats["wextr"][0]) == pytest.approx(scale(extr), rel=1e-4)
    assert set(new) == {"goal", "wextr"}


def test_a_reward_scaled_by_1e_3_gives_the_same_normalised_advantage():
    """Once the normaliser has settled (2000 updates at decay 0.999), returns 1000 times smaller give the same
    normalised advantage: the normaliser, not the reward's size, sets its weight. (The std floor, 1/100, bounds
    this: the scaled returns here have a spread of 0.02.) The summed form adds the small reward raw, so it is lost."""
    _, agent, state = agent_for()
    big, small = state["retnorm"]["goal"], state["retnorm"]["wextr"]

    def settle(norms, key):
        big, small = norms
        returns = 20.0 * jax.random.normal(key, (64,)) + 5.0
        big = agent._normalised_advantage(big, returns, jnp.zeros(64))[0]
        small = agent._normalised_advantage(small, 1e-3 * returns, jnp.zeros(64))[0]
        return (big, small), None

    (big, small), _ = jax.lax.scan(settle, (big, small), jax.random.split(jax.random.PRNGKey(3), 2000))
    batch = 20.0 * jax.random.normal(jax.random.PRNGKey(9), (64,))
    _, adv_big, _ = agent._normalised_advantage(big, batch, jnp.zeros(64))
    _, adv_small, _ = agent._normalised_advantage(small, 1e-3 * batch, jnp.zeros(64))
    np.testing.assert_allclose(adv_small, adv_big, rtol=1e-3, atol=1e-5)


def test_the_summed_form_keeps_one_goal_critic():
    """worker_critics="summed": one goal critic on goal + worker_extrinsic x extr (the earlier director+wr)."""
    cfg, agent, state = agent_for(worker_critics="summed")
    assert cfg.worker_extrinsic == 1.0
    assert not any(k.startswith("critic_w") for k in state["params"]) and "goal" in state["retnorm"]
    p = state["params"]
    _, (traj, _, _) = agent.worker_loss(p["worker"], p, state, _start(cfg), jnp.full((4, 1), 0.5),
                                        jax.random.PRNGKey(6))
    assert set(traj["w_returns"]) == {"goal"}


def test_runs_written_before_per_reward_critics_load_with_the_summed_form(tmp_path):
    """A Director config.json without `worker_critics` trained with the summed worker reward: it reads back as
    "summed" with its own worker_extrinsic, so its checkpoint's layout (one worker critic) matches."""
    old = {k: v for k, v in vars(make_config("cpu", agent="director+wr", worker_critics="summed")).items()
           if k not in ("worker_critics", "worker_rewards")}
    (tmp_path / "config.json").write_text(json.dumps({"task": "maze_train", "agent": "director+wr", "seed": 0,
                                                      "env_options": {}, "config": old}))
    cfg = read_spec(tmp_path).config
    assert (cfg.worker_critics, cfg.worker_extrinsic, cfg.worker_reward_weights) == ("summed", 1.0, {"goal": 1.0})


@pytest.mark.parametrize("value", ["goal=1,reach=1", "goal=-1", "goal=0", "goal", "goal=1,goal=2", "goal=inf"])
def test_bad_worker_rewards_name_themselves(value):
    with pytest.raises(ValueError, match="worker_rewards="):
        make_config("tiny", agent="director", worker_rewards=value)


def test_the_separate_form_refuses_the_summed_weight():
    with pytest.raises(ValueError, match="worker_extrinsic=0.5 is not valid with worker_critics='separate'"):
        make_config("tiny", agent="director", worker_extrinsic=0.5)

"""The goal-space explorer without a browser: GoalDreamer (analysis/goals.py) and its widget, built headless."""

import jax
import numpy as np
import pytest

from hrl_core.agents import make_agent
from hrl_core.analysis.goals import GoalDreamer, rollout_trace, split_episodes, trace_latent
from hrl_core.config import make_config
from hrl_core.envs import make_env
from tests.helpers import SMALL

STEPS = 5


@pytest.fixture(scope="module")
def setup():
    env = make_env("walker_speed", time_limit=0.5)
    cfg = make_config("tiny", agent="director", **SMALL)
    agent = make_agent(cfg, env.obs_space, env.act_space)
    state = agent.init(jax.random.PRNGKey(0))
    trace = rollout_trace(agent, state, env, steps=12, progress=False)
    return cfg, agent, state, trace, GoalDreamer(agent, state, steps=STEPS)


def test_trace_records_the_full_latent(setup):
    cfg, _, _, trace, _ = setup
    assert trace["stoch"].shape == (12, cfg.stoch, cfg.classes)
    assert np.allclose(trace["stoch"].max(-1), 1, atol=1e-5)  # one-hot posterior samples (straight-through)
    assert np.allclose(trace["stoch"].sum(-1), 1, atol=1e-5)
    latent = trace_latent(trace, 3)
    assert np.array_equal(latent["deter"], trace["deter"][3]) and np.array_equal(latent["stoch"], trace["stoch"][3])


def test_goal_image_follows_the_code(setup):
    cfg, _, _, trace, dreamer = setup
    task = trace["task"][0]
    code = trace["code"][0]
    first = dreamer.goal_image(code, task)
    assert first.shape == (64, 64, 3) and first.dtype == np.uint8
    assert np.array_equal(first, dreamer.goal_image(code.copy(), task))
    # The manager's own goal at that step decodes the same (up to float rounding in and out of jit).
    assert np.abs(first.astype(int) - trace["goal_image"][0]).max() <= 1
    changed = code.copy()
    changed[0] = (changed[0] + 1) % cfg.goal_classes
    assert not np.array_equal(first, dreamer.goal_image(changed, task))


def test_dream_returns_frames_and_goal_rewards_without_recompiling(setup):
    cfg, _, _, trace, dreamer = setup
    rng = np.random.default_rng(0)
    codes = {t: dreamer.random_code(rng) for t in (2, 5, 9)}
    outs = [dreamer.dream(trace_latent(trace, t), code, trace["task"][t], seed=t) for t, code in codes.items()]
    for out in outs:
        assert out["frames"].shape == (STEPS, 64, 64, 3) and out["frames"].dtype == np.uint8
        assert out["goal_reward"].shape == (STEPS,)
        assert np.all(np.isfinite(out["goal_reward"])) and np.all(np.abs(out["goal_reward"]) <= 1 + 1e-5)
    assert not np.array_equal(outs[0]["frames"], outs[1]["frames"])
    dreamer.goal_image(dreamer.random_code(rng), trace["task"][0])
    dreamer.goal_image(dreamer.random_code(rng), trace["task"][1])
    assert dreamer.compiled() == 2  # one program each: new codes, states and seeds never recompile
    again = dreamer.dream(trace_latent(trace, 2), codes[2], trace["task"][2], seed=2)
    assert all(np.array_equal(again[k], outs[0][k]) for k in again)  # same state, code and seed: the same dream


def test_bad_inputs_name_the_parameter(setup):
    cfg, agent, state, trace, dreamer = setup
    with pytest.raises(ValueError, match=r"code=\[0, 0\] is not valid; it must be 4 class indices .* 0\.\.3"):
        dreamer.goal_image([0, 0], trace["task"][0])
    with pytest.raises(ValueError, match=r"code=.* is not valid"):
        dreamer.goal_image([0, 0, 0, cfg.goal_classes], trace["task"][0])
    with pytest.raises(ValueError, match="task=None is not valid"):
        dreamer.goal_image([0, 0, 0, 0])
    with pytest.raises(ValueError, match="steps=0 is not valid"):
        GoalDreamer(agent, state, steps=0)
    flat = make_agent(make_config("tiny", agent="dreamer", **SMALL), agent.obs_space, agent.act_space)
    with pytest.raises(ValueError, match="agent='dreamer' is not valid for GoalDreamer; allowed values: director"):
        GoalDreamer(flat, state)


def find(widget, dom_class):
    """Every widget under `widget` carrying a DOM class."""
    found = [widget] if dom_class in getattr(widget, "_dom_classes", ()) else []
    for child in getattr(widget, "children", ()):
        found += find(child, dom_class)
    return found


def test_explorer_widget_headless(setup):
    from hrl_core.viz.widgets import goal_browser

    cfg, _, _, trace, dreamer = setup
    episodes = split_episodes(trace)
    view = goal_browser(episodes, cfg.goal_classes, dreamer=dreamer)
    slots = find(view, "hrl-explorer-slot")
    assert len(slots) == cfg.goal_codes and slots[0].options == tuple(range(cfg.goal_classes))
    assert [s.value for s in slots] == episodes[0]["code"][0].tolist()  # starts at the manager's code
    goal, strip = find(view, "hrl-explorer-goal")[0], find(view, "hrl-explorer-strip")[0]
    before = goal.value
    slots[0].value = (slots[0].value + 1) % cfg.goal_classes
    assert goal.value != before
    find(view, "hrl-explorer-dream")[0].click()
    assert strip.value.count("<img") == STEPS and "+1: " in strip.value
    find(view, "hrl-browser-time")[0].value = 6
    find(view, "hrl-explorer-manager")[0].click()
    assert [s.value for s in slots] == episodes[0]["code"][6].tolist()
    assert strip.value == ""  # a new code clears the old dream
    find(view, "hrl-explorer-random")[0].click()
    assert dreamer.compiled() == 2

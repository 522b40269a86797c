"""Director's own update, term by term: each test's docstring names the term it pins and how it was computed."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrl_core import nets
from hrl_core.agents import make_agent
from hrl_core.agents.director import RETURN_NORM, distinct_codes
from hrl_core.config import LEGACY_DIRECTOR, make_config
from hrl_core.envs import make_env
from hrl_core.rundir import read_spec
from tests.helpers import SMALL, random_batch

ENV = make_env("walker_speed")


def agent_for(**overrides):
    cfg = make_config("tiny", agent=overrides.pop("agent", "director"), **{**SMALL, **overrides})
    agent = make_agent(cfg, ENV.obs_space, ENV.act_space)
    return cfg, agent, agent.init(jax.random.PRNGKey(0))


def test_moments_normaliser_by_hand():
    """Running std normaliser (Director's Normalize): bias-corrected EMAs of x and x^2; 1/std floored so that a
    spread below 1/max_scale is amplified by max_scale at most."""
    decay = 0.9
    m = nets.init_moments()
    m = nets.update_moments(m, jnp.array([1.0, 3.0]), decay)  # mean 2, mean square 5
    m = nets.update_moments(m, jnp.array([0.0, 2.0]), decay)  # mean 1, mean square 2
    corr = 1 - decay ** 2
    mean = (0.9 * 0.1 * 2 + 0.1 * 1) / corr
    sqrs = (0.9 * 0.1 * 5 + 0.1 * 2) / corr
    got_mean, got_inv = nets.moments_stats(m, decay, 1e8)
    assert float(got_mean) == pytest.approx(mean, rel=1e-5)
    assert float(got_inv) == pytest.approx(1 / np.sqrt(sqrs - mean ** 2), rel=1e-4)
    flat = nets.update_moments(nets.init_moments(), jnp.full((4,), 0.003), 0.999)
    assert float(nets.moments_stats(flat, 0.999, 1e2)[1]) == pytest.approx(100.0)  # floor: at most x100


def test_std_return_normalisation_amplifies_a_small_return():
    """Per-critic std normalisation ("std"): a constant small return (no spread) is multiplied by 100, Director's
    largest amplification; DreamerV3's percentile scale ("percentile") never amplifies (scale max(1, P95 - P5))."""
    returns, baseline = jnp.full((2, 5), 0.03), jnp.zeros((2, 5))
    _, agent, state = agent_for()
    _, adv, scale = agent._normalised_advantage(state["retnorm"]["ext"], returns, baseline)
    assert np.allclose(adv, 3.0, rtol=1e-4) and float(scale) == pytest.approx(0.01, rel=1e-4)
    _, agent, state = agent_for(director_norm="percentile")
    _, adv, scale = agent._normalised_advantage(state["retnorm"]["ext"], returns, baseline)
    assert np.allclose(adv, 0.03) and float(scale) == 1.0


def test_manager_advantage_is_the_normalised_weighted_sum_by_hand():
    """Manager advantage ("std"): each critic's return and value divided by its running std (decay 0.999, first
    update), weighted 1 (extrinsic) and 0.1 (exploration), summed, then (A - mean) / std with the advantage
    normaliser's first update (decay 0.99). Zero critics (value 0), H = 4, K = 2, no termination."""
    cfg, agent, state = agent_for(horizon=4, manager_period=2)
    states = {"deter": jnp.zeros((5, 3, cfg.deter)), "stoch": jnp.zeros((5, 3, cfg.stoch, cfg.classes))}
    r_ext = jnp.array([[1.0, 0.0, 2.0], [3.0, 1.0, 0.0], [0.5, 2.0, 1.0], [1.5, 0.0, 4.0]])
    r_expl = jnp.array([[0.2, 0.1, 0.0], [0.0, 0.3, 0.1], [0.1, 0.1, 0.4], [0.2, 0.0, 0.0]])
    traj = {"states": states, "cont": jnp.ones((4, 3)), "weight": jnp.ones((4, 3)), "r_ext": r_ext, "r_expl": r_expl}
    out, norms = agent.manager_terms(state["params"], state, traj, jnp.full((3, 1), 0.5))
    gamma, lam = cfg.discount ** 2, cfg.lam
    total = 0.0
    for rewards, weight in ((np.asarray(r_ext), 1.0), (np.asarray(r_expl), 0.1)):
        seg = rewards.reshape(2, 2, 3).mean(1)  # decision rewards: mean of each segment's K rewards
        ret1 = seg[1]
        ret0 = seg[0] + gamma * lam * ret1  # value 0 everywhere
        ret = np.stack([ret0, ret1])
        corr = 1 - RETURN_NORM[0]
        std = np.sqrt(max(np.mean(ret ** 2) - np.mean(ret) ** 2, RETURN_NORM[1] ** -2))  # first update: exact
        assert corr > 0 and np.allclose(out[f"returns_{'ext' if weight == 1 else 'expl'}"], ret, rtol=1e-5)
        total = total + weight * ret / std
    adv = (total - total.mean()) / total.std()
    assert np.allclose(out["advantage"], adv, rtol=1e-3, atol=1e-4)
    assert set(norms) == {"retnorm", "advnorm"} and float(norms["advnorm"]["count"]) == 1.0


def test_percentile_mode_keeps_the_earlier_manager_advantage():
    """"percentile": (returns - value) / max(1, P95 - P5) per critic, weighted and summed, no advantage norm."""
    cfg, agent, state = agent_for(horizon=4, manager_period=2, director_norm="percentile")
    states = {"deter": jnp.zeros((5, 2, cfg.deter)), "stoch": jnp.zeros((5, 2, cfg.stoch, cfg.classes))}
    traj = {"states": states, "cont": jnp.ones((4, 2)), "weight": jnp.ones((4, 2)),
            "r_ext": jnp.full((4, 2), 0.2), "r_expl": jnp.zeros((4, 2))}
    out, norms = agent.manager_terms(state["params"], state, traj, jnp.full((2, 1), 0.5))
    assert "advnorm" not in norms and "advnorm" not in state
    assert np.allclose(out["advantage"], out["returns_ext"], rtol=1e-5)  # scale 1, value 0, weight 1


def test_manager_code_distribution_mixes_in_one_percent_uniform():
    """1% uniform mix: every code's probability is at least 0.01 / classes, however peaked the manager's logits."""
    cfg, agent, state = agent_for()
    params = jax.tree.map(lambda x: 1e3 * x, state["params"]["manager"])  # very peaked logits
    feat = jax.random.normal(jax.random.PRNGKey(1), (6, cfg.deter + cfg.stoch * cfg.classes + 1))
    probs = jnp.exp(agent.manager_logits(params, feat))
    assert np.allclose(probs.sum(-1), 1.0, atol=1e-5)
    assert float(probs.min()) >= 0.01 / cfg.goal_classes * (1 - 1e-4)
    _, plain, state = agent_for(manager_unimix=0.0)
    assert float(jnp.exp(plain.manager_logits(params, feat)).min()) < 1e-6


def test_per_slot_entropy_bonus_by_hand():
    """Per-slot entropy: with zero advantage the manager's loss is -mean(weight x sum_slots eta_slot x H_slot /
    log(classes)), and the adapted quantity is each slot's normalised entropy averaged over the batch."""
    cfg, agent, state = agent_for()
    m_in = jax.random.normal(jax.random.PRNGKey(3), (3, 4, cfg.deter + cfg.stoch * cfg.classes + 1))
    codes = jax.nn.one_hot(jnp.zeros((2, 4, cfg.goal_codes), int), cfg.goal_classes)
    log_eta = jnp.log(jnp.linspace(0.5, 2.0, cfg.goal_codes)).astype(jnp.float32)
    weight = jnp.linspace(0.2, 1.0, 8).reshape(2, 4)
    loss, (tracked, summed) = agent.manager_loss(state["params"]["manager"], m_in, codes, jnp.zeros((2, 4)),
                                                 weight, log_eta)
    p = np.exp(np.asarray(agent.manager_logits(state["params"]["manager"], m_in[:-1])))
    slot_h = -(p * np.log(p)).sum(-1) / np.log(cfg.goal_classes)  # [2, 4, codes]
    expected = -np.mean(np.asarray(weight) * (np.exp(np.asarray(log_eta)) * slot_h).sum(-1))
    assert float(loss) == pytest.approx(expected, rel=1e-4)
    assert np.allclose(tracked, slot_h.mean((0, 1)), rtol=1e-4)
    assert float(summed) == pytest.approx(slot_h.sum(-1).mean() * np.log(cfg.goal_classes), rel=1e-4)
    assert np.allclose(state["adapt"]["manager_entropy"], 0.0)  # Director's scales start at 1


def test_per_slot_scales_adapt_independently():
    """Each slot's scale moves on its own: a slot below the band rises by (1 + rate), one above falls, one inside
    stays (the inverse banded rule that `train_step` applies to the per-slot entropies)."""
    cfg, _, _ = agent_for()
    tracked = jnp.array([0.1, 0.9, 0.5])
    new = nets.adapt_log_scale(jnp.zeros(3), tracked, 0.5, cfg.adapt_rate, cfg.adapt_band, 1e-5, 1e2,
                               raise_above=False)
    assert np.allclose(new, [np.log1p(cfg.adapt_rate), -np.log1p(cfg.adapt_rate), 0.0])


def test_director_optimizer_decays_kernels_only():
    """Director's optimiser: Adam lr 1e-4, eps 1e-6 and decoupled weight decay 1e-2 on kernels only: with a zero
    gradient a step multiplies each kernel by (1 - lr x wd) and leaves biases alone."""
    cfg, agent, state = agent_for()
    params = state["params"]["manager"]
    opt = agent.optimizers["manager"]
    updates, _ = opt.update(jax.tree.map(jnp.zeros_like, params), opt.init(params), params)
    step = dict((jax.tree_util.keystr(k), v) for k, v in jax.tree_util.tree_flatten_with_path(updates)[0])
    for path, value in jax.tree_util.tree_flatten_with_path(params)[0]:
        name = jax.tree_util.keystr(path)
        decay = 1e-4 * 1e-2 if path[-1].key == "kernel" else 0.0  # the update is -lr x wd x parameter
        assert np.allclose(step[name], -decay * value, rtol=1e-5, atol=1e-14), name
    _, shared, _ = agent_for(director_optimizer="actor_critic")
    updates, _ = shared.optimizers["manager"].update(jax.tree.map(jnp.zeros_like, params),
                                                     shared.optimizers["manager"].init(params), params)
    assert all(np.all(np.asarray(u) == 0) for u in jax.tree.leaves(updates))  # no decay


def test_director_plus_worker_reward_agent():
    """"director+wr": Director whose worker also gets the task reward, with a critic of its own (worker_rewards
    goal=1,extr=1 unless set); the summed form ("summed", worker_extrinsic 1 unless set) stays for the runs trained
    with it. Each needs a positive task-reward weight, and names itself in its config."""
    cfg = make_config("tiny", agent="director+wr")
    assert (cfg.worker_rewards, cfg.worker_critics, cfg.worker_extrinsic) == ("goal=1,extr=1", "separate", 0.0)
    assert cfg.worker_reward_weights == {"goal": 1.0, "extr": 1.0} and cfg.parts == ("WM", "G", "M", "W", "V")
    summed = make_config("tiny", agent="director+wr", worker_critics="summed")
    assert summed.worker_extrinsic == 1.0 and summed.worker_reward_weights == {"goal": 1.0}
    assert make_config("tiny", agent="director+wr", worker_critics="summed", worker_extrinsic=0.5).worker_extrinsic == 0.5
    assert make_config("tiny", agent="director").worker_reward_weights == {"goal": 1.0}
    with pytest.raises(ValueError, match="worker_extrinsic=0.0 is not valid for agent 'director\\+wr'"):
        make_config("tiny", agent="director+wr", worker_critics="summed", worker_extrinsic=0.0)
    with pytest.raises(ValueError, match="worker_rewards='goal=1' is not valid for agent 'director\\+wr'"):
        make_config("tiny", agent="director+wr", worker_rewards="goal=1")


@pytest.mark.parametrize("field,value", [("director_norm", "max"), ("manager_entropy", "mean"),
                                         ("director_optimizer", "sgd"), ("manager_unimix", 1.0),
                                         ("director_critic", "slow"), ("worker_baseline", "none"),
                                         ("critic_target_every", 0)])
def test_bad_director_options_name_themselves(field, value):
    with pytest.raises(ValueError, match=field):
        make_config("tiny", agent="director", **{field: value})


def test_runs_written_before_the_restored_update_load_with_the_earlier_one(tmp_path):
    """A run folder whose config predates the Director fields trained with the earlier update: it loads with
    LEGACY_DIRECTOR (percentile norm, summed entropy, no mix, the actor-critic optimiser), so its checkpoint's layout
    matches; a new run's config keeps its own values."""
    run = {"task": "walker_speed", "agent": "director", "seed": 0, "env_options": {}}  # config.json's other fields
    old = {k: v for k, v in vars(make_config("cpu", agent="director")).items() if k not in LEGACY_DIRECTOR}
    (tmp_path / "config.json").write_text(json.dumps({**run, "config": old}))
    cfg = read_spec(tmp_path).config
    assert all(getattr(cfg, k) == v for k, v in LEGACY_DIRECTOR.items())
    new = vars(make_config("cpu", agent="director"))
    (tmp_path / "config.json").write_text(json.dumps({**run, "config": new}))
    assert read_spec(tmp_path).config.director_norm == "std"


def test_distinct_codes_by_hand():
    """Distinct whole codes among one-hot codes: (0,1), (0,1), (1,0), (1,1) -> 3."""
    codes = jax.nn.one_hot(jnp.array([[0, 1], [0, 1], [1, 0], [1, 1]]), 2)
    assert int(distinct_codes(codes)) == 3
    assert int(distinct_codes(jax.nn.one_hot(jnp.zeros((5, 8), int), 8))) == 1


def test_goal_reach_by_hand():
    """Goal reach: a segment from 0 to 0.5 towards a goal at 1 closes half its distance; the random goal's reach is
    computed on the same states (K = 2, one segment)."""
    cfg, agent, state = agent_for(horizon=2, manager_period=2)
    deter = jnp.stack([jnp.zeros(cfg.deter), 0.25 * jnp.ones(cfg.deter), 0.5 * jnp.ones(cfg.deter)])[:, None]
    goals = jnp.ones((2, 1, cfg.deter))
    out = agent.goal_reach(deter, goals, jax.random.PRNGKey(4), state["params"])
    assert float(out["goal/reach"]) == pytest.approx(0.5, rel=1e-5)
    assert np.isfinite(float(out["goal/reach_random"]))


def test_worker_objective_is_normalised_by_its_std():
    """Worker ("std"): its objective is (return - value) / std(return), then (A - mean) / std(A); the gradient
    reaching the worker is the returns' gradient times both inverse scales. Checked against the "percentile" worker
    (return / 1 at these magnitudes) on the same imagined rollout: the gradients are parallel, and their ratio is the
    product of the two scales logged in the metrics."""
    grads, metrics = {}, {}
    for norm in ("std", "percentile"):
        cfg, agent, state = agent_for(director_norm=norm)
        p = state["params"]
        start = {"deter": jax.random.normal(jax.random.PRNGKey(5), (4, cfg.deter)),
                 "stoch": jax.nn.one_hot(jnp.zeros((4, cfg.stoch), int), cfg.classes)}
        # Drop the entropy bonus so that only the return term drives the gradient.
        agent.cfg = cfg.replace(actor_entropy=0.0)
        fn = lambda w: agent.worker_loss(w, p, state, start, jnp.full((4, 1), 0.5), jax.random.PRNGKey(6))  # noqa: E731
        (_, (_, _, m)), g = jax.jit(jax.value_and_grad(fn, has_aux=True))(p["worker"])
        grads[norm], metrics[norm] = jnp.concatenate([x.ravel() for x in jax.tree.leaves(g)]), m
    a, b = grads["std"], grads["percentile"]
    cosine = float(a @ b / (jnp.linalg.norm(a) * jnp.linalg.norm(b)))
    assert cosine > 0.999
    assert float(metrics["percentile"]["worker/return_scale"]) == 1.0
    ratio = float(jnp.linalg.norm(a) / jnp.linalg.norm(b))
    expected = 1.0 / (float(metrics["std"]["worker/return_scale"]) * float(metrics["std"]["worker/advantage_std"]))
    assert ratio == pytest.approx(expected, rel=1e-2)


def test_finetuning_inherits_the_source_update(tmp_path):
    """A fine-tuning run takes its source's image size and Director update options, so the carried state fits: a
    run written before Director's own update hands on the earlier options; a DreamerV3 run its image size only."""
    from hrl_core import study

    old = {k: v for k, v in vars(make_config("cpu", agent="director")).items() if k not in LEGACY_DIRECTOR}
    (tmp_path / "config.json").write_text(json.dumps({"task": "maze_train", "agent": "director", "seed": 0,
                                                      "env_options": {}, "config": old}))
    assert study.update_options(tmp_path) == {**LEGACY_DIRECTOR, "director_critic": "ema", "critic_target_every": 100,
                                              "worker_baseline": "stop", "worker_rewards": "goal=1",
                                              "worker_critics": "separate", "worker_extrinsic": 0.0,
                                              "goal_context": False, "image_size": 32}
    (tmp_path / "config.json").write_text(json.dumps({"task": "maze_train", "agent": "dreamer", "seed": 0,
                                                      "env_options": {},
                                                      "config": vars(make_config("cpu", agent="dreamer"))}))
    assert study.update_options(tmp_path) == {"image_size": 32}  # the cpu preset's, written in the config


def _shifted(tree, seed):
    """`tree` plus unit noise: a critic whose values are far from the zero-initialised one's."""
    leaves, treedef = jax.tree.flatten(tree)
    keys = jax.random.split(jax.random.PRNGKey(seed), len(leaves))
    return jax.tree.unflatten(treedef, [x + jax.random.normal(k, x.shape) for x, k in zip(leaves, keys)])


def test_target_critic_bootstraps_and_baselines_from_its_target_copy():
    """"target" (Director's critics): the manager's returns and advantages, and the worker's loss and returns, are
    computed from the target copy; moving the online critics leaves them unchanged. "ema" reads the online critics,
    so the same move changes them."""
    out = {}
    for mode in ("target", "ema"):
        cfg, agent, state = agent_for(horizon=4, manager_period=2, director_critic=mode)
        moved = dict(state["params"], **{f"critic_{r}": _shifted(state["params"][f"critic_{r}"], i)
                                         for i, r in enumerate(("ext", "expl", "goal"))})
        start = {"deter": jax.random.normal(jax.random.PRNGKey(5), (3, cfg.deter)),
                 "stoch": jax.nn.one_hot(jnp.zeros((3, cfg.stoch), int), cfg.classes)}
        task = jnp.full((3, 1), 0.5)
        for label, params in (("initial", state["params"]), ("moved", moved)):
            loss, (traj, _, _) = agent.worker_loss(params["worker"], params, state, start, task, jax.random.PRNGKey(6))
            terms, _ = agent.manager_terms(params, state, traj, task)
            out[mode, label] = (loss, traj["w_returns"]["goal"], terms["returns_ext"], terms["returns_expl"],
                                terms["advantage"])
    for a, b in zip(out["target", "initial"], out["target", "moved"]):
        assert np.allclose(a, b, rtol=1e-5, atol=1e-6)
    for a, b in zip(out["ema", "initial"], out["ema", "moved"]):
        assert not np.allclose(a, b, rtol=1e-3, atol=1e-4)


def test_target_critic_is_hard_copied_every_n_updates():
    """"target": the copy stays put between copies and equals the online critics right after the update whose
    count is a multiple of `critic_target_every` (2 here); the critics' loss has no regulariser towards it."""
    cfg, agent, state = agent_for(director_critic="target", critic_target_every=2)
    step = jax.jit(agent.train_step)
    initial = state["slow_critic"]
    same = lambda a, b: all(np.array_equal(np.asarray(x), np.asarray(y))  # noqa: E731
                            for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))
    state, _ = step(state, random_batch(agent, cfg, seed=0), jax.random.PRNGKey(0))
    online = {r: state["params"][f"critic_{r}"] for r in ("ext", "expl", "goal")}
    assert int(state["critic_updates"]) == 1 and same(state["slow_critic"], initial) and not same(online, initial)
    state, _ = step(state, random_batch(agent, cfg, seed=1), jax.random.PRNGKey(1))
    online = {r: state["params"][f"critic_{r}"] for r in ("ext", "expl", "goal")}
    assert int(state["critic_updates"]) == 2 and same(state["slow_critic"], online)
    _, ema_agent, ema_state = agent_for()
    assert "critic_updates" not in ema_state  # the "ema" state keeps its layout (runs trained before still load)


def test_critic_loss_without_a_regulariser_is_the_two_hot_loss():
    """common.critic_loss with no slow critic: the weighted two-hot loss towards the returns alone."""
    from hrl_core.agents.common import Critic, critic_loss

    critic = Critic(16, 1)
    feat = jax.random.normal(jax.random.PRNGKey(0), (4, 3, 6))
    params = _shifted(critic.init(jax.random.PRNGKey(1), feat), 2)
    returns, weight = jnp.linspace(-2, 3, 9).reshape(3, 3), jnp.linspace(0.1, 1, 9).reshape(3, 3)
    expected = jnp.mean(weight * nets.two_hot_loss(critic.apply(params, feat[:-1]), returns))
    assert float(critic_loss(critic, params, None, feat, returns, weight)) == pytest.approx(float(expected), rel=1e-6)
    assert float(critic_loss(critic, params, params, feat, returns, weight)) > float(expected)


def test_worker_baseline_inside_the_gradient():
    """`worker_baseline`: the advantage's derivative by the baseline is -1/scale with "grad" (Director's backprop
    worker, which maximises return minus the value of the states it reaches) and 0 with "stop"."""
    _, agent, state = agent_for()
    returns, baseline = jnp.array([0.5, 1.5, -1.0]), jnp.array([0.2, 0.1, 0.3])
    for grad, expected in ((True, 1.0), (False, 0.0)):
        def total(b):
            _, adv, scale = agent._normalised_advantage(state["retnorm"]["goal"], returns, b, baseline_grad=grad)
            return jnp.sum(adv), scale
        g, scale = jax.grad(total, has_aux=True)(baseline)
        assert np.allclose(g, -expected / float(scale), rtol=1e-5)

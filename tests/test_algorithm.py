"""Hand-computed and property checks of the agents' terms: each test's docstring names the term it pins."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrl_core import nets
from hrl_core.agents import common, make_agent
from hrl_core.agents.director import GoalAutoencoder
from hrl_core.config import make_config
from hrl_core.envs import make_env
from hrl_core.world_model import features, imagined_outcomes
from tests.helpers import SMALL, random_batch

ENV = make_env("walker_speed")


def agent_for(name, **overrides):
    cfg = make_config("tiny", agent=name, **{**SMALL, **overrides})
    agent = make_agent(cfg, ENV.obs_space, ENV.act_space)
    return cfg, agent, agent.init(jax.random.PRNGKey(0))


def start_states(cfg, n=6, seed=1):
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    stoch = jax.nn.one_hot(jax.random.randint(k2, (n, cfg.stoch), 0, cfg.classes), cfg.classes)
    return {"deter": jax.random.normal(k1, (n, cfg.deter)), "stoch": stoch}


def tree_equal(a, b):
    return all(np.array_equal(np.asarray(x), np.asarray(y)) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def tree_close(a, b, rtol=1e-4, atol=1e-9):
    """Leaf by leaf, |x - y| <= rtol |y| + atol in the Euclidean norm: float reassociation on another CPU moves
    single near-zero entries, never a leaf's norm, which a missing stop-gradient changes by far more."""
    return all(np.linalg.norm(np.asarray(x) - np.asarray(y)) <= rtol * np.linalg.norm(np.asarray(y)) + atol
               for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


def test_actor_input_is_stop_gradient():
    """Stop-gradient at the flat actor's input in imagination. At initialisation the reward head and critic output
    zero, so the imagined returns are 0 and the actor's objective is its entropy bonus alone. With the stop-gradient
    its gradient equals that of the entropy on the fixed imagined states; without it, the gradient would also flow
    through the latents that the actor's own earlier actions produced."""
    cfg, agent, state = agent_for("dreamer")
    p = state["params"]
    task = jnp.full((6, 1), 0.5)
    args = (p["wm"], p["critic"], state["retnorm"], start_states(cfg), task, jax.random.PRNGKey(2))
    loss_and_grad = jax.jit(jax.value_and_grad(agent.actor_loss, has_aux=True))
    (_, (feat, returns, weight, _, _)), grads = loss_and_grad(p["actor"], *args)
    assert np.allclose(returns, 0.0, atol=1e-6)

    def entropy_on_fixed_states(actor_params):
        _, std = agent.actor.apply(actor_params, feat[:-1])
        return -jnp.mean(weight * cfg.actor_entropy * common.normal_entropy(std))

    expected = jax.grad(entropy_on_fixed_states)(p["actor"])
    assert tree_close(grads, expected, rtol=1e-4, atol=1e-9)
    assert any(np.abs(np.asarray(g)).max() > 0 for g in jax.tree.leaves(grads))


def test_worker_input_is_stop_gradient():
    """Stop-gradient at the worker's input in imagination. With the goal decoder's output zeroed every goal is 0,
    so the max-cosine goal reward is 0, the goal critic (zero-initialised) is 0, and the worker's objective is its
    entropy bonus alone: its gradient must equal that of the entropy on the fixed imagined segment inputs."""
    cfg, agent, state = agent_for("director")
    p = dict(state["params"])
    p["goal_ae"] = jax.tree.map(lambda x: x, p["goal_ae"])
    dec = p["goal_ae"]["params"]["decoder"]
    last = sorted(k for k in dec if k.startswith("Dense"))[-1]
    dec[last] = jax.tree.map(jnp.zeros_like, dec[last])
    # Unit-variance normaliser statistics: Director's std normalisers would otherwise amplify the float noise of a
    # zero return's gradient by up to 1e2 x 1e8, and the check would see that noise instead of the stop-gradient.
    unit = {"mean": jnp.float32(0.0), "sqrs": jnp.float32(1.0), "count": jnp.float32(1e4)}
    st = {**state, "params": p, "retnorm": {**state["retnorm"], "goal": unit}, "advnorm": {"worker": unit}}
    loss_fn = lambda w: agent.worker_loss(w, p, st, start_states(cfg), jnp.full((6, 1), 0.5),  # noqa: E731
                                          jax.random.PRNGKey(3))
    (_, (traj, _, _)), grads = jax.jit(jax.value_and_grad(loss_fn, has_aux=True))(p["worker"])
    assert np.allclose(traj["w_returns"]["goal"], 0.0, atol=1e-6)

    def entropy_on_fixed_inputs(worker_params):
        _, std = agent.worker.apply(worker_params, traj["w_in"][:-1])
        return -jnp.mean(traj["w_weight"] * cfg.actor_entropy * common.normal_entropy(std))

    expected = jax.grad(entropy_on_fixed_inputs)(p["worker"])
    assert tree_close(grads, expected, rtol=1e-4, atol=1e-9)


def test_imagination_weights_start_state_by_its_continue_flag():
    """Imagination weights: weight[0] = 1 - is_terminal of the replayed start state, then the cumulative product of
    discount x predicted continue flags (by hand)."""
    cfg, agent, state = agent_for("dreamer")
    wm_params = state["params"]["wm"]
    states = {"deter": jax.random.normal(jax.random.PRNGKey(4), (4, 2, cfg.deter)),
              "stoch": jnp.zeros((4, 2, cfg.stoch, cfg.classes))}
    task = jnp.ones((2, 1))
    _, _, cont, weight = imagined_outcomes(agent.wm, wm_params, states, task, 0.9, jnp.array([0.0, 1.0]))
    c = np.asarray(cont)
    assert np.allclose(weight[:, 0], 0.0)
    assert np.allclose(weight[:, 1], [1.0, 0.9 * c[0, 1], 0.81 * c[0, 1] * c[1, 1]], rtol=1e-6)


def test_terminal_start_states_teach_the_policy_nothing():
    """The start state's continue flag in training: a replayed batch whose every state is terminal gives the actor
    and the critic zero weight everywhere, so one update leaves their parameters unchanged while
    the world model still learns."""
    cfg, agent, state = agent_for("dreamer")
    batch = random_batch(agent, cfg)
    batch["is_terminal"][:] = True
    new, _ = jax.jit(agent.train_step)(state, batch, jax.random.PRNGKey(5))
    for name in ("actor", "critic"):
        assert tree_equal(state["params"][name], new["params"][name])
    assert not tree_equal(state["params"]["wm"], new["params"]["wm"])


def test_adapt_log_scale_band_direction_and_bounds():
    """Director's banded multiplicative adaptation: unchanged inside [target/1.1, 1.1 target]; x(1+rate) on the side
    that asks for more, /(1+rate) on the other; clipped to [low, high]."""
    f = lambda v, log=0.0, **kw: float(nets.adapt_log_scale(  # noqa: E731
        jnp.float32(log), jnp.float32(v), 10.0, 0.1, 0.1, 1e-5, kw.pop("high", 100.0), **kw))
    assert f(10.5) == 0.0 and f(9.2) == 0.0  # inside the band
    assert f(11.5) == pytest.approx(np.log(1.1)) and f(8.5) == pytest.approx(-np.log(1.1))
    assert f(11.5, raise_above=False) == pytest.approx(-np.log(1.1))
    assert f(8.5, raise_above=False) == pytest.approx(np.log(1.1))
    assert f(50.0, high=1.0) == 0.0  # the goal KL weight is bounded by 1
    assert f(0.0, log=np.log(1e-5)) == pytest.approx(np.log(1e-5))


def test_goal_kl_weight_rises_when_kl_is_high_and_stays_at_most_one():
    """Goal autoencoder KL weight: with the KL far above its target the weight rises, but never above 1; far below
    it falls by 1/(1+rate) a step."""
    cfg, agent, state = agent_for("director", goal_kl_target=1e-3)
    deter = jax.random.normal(jax.random.PRNGKey(6), (8, cfg.deter)) * 3
    key = jax.random.PRNGKey(7)
    _, (log_beta, metrics) = agent.goal_ae_loss(state["params"]["goal_ae"], deter, jnp.float32(0.0), key)
    assert float(metrics["goal/kl"]) > 1.1e-3 and float(log_beta) == 0.0
    _, (log_beta, _) = agent.goal_ae_loss(state["params"]["goal_ae"], deter, jnp.float32(-1.0), jax.random.PRNGKey(7))
    assert float(log_beta) == pytest.approx(-1.0 + np.log(1.1))
    cfg, agent, state = agent_for("director", goal_kl_target=1e3)
    _, (log_beta, _) = agent.goal_ae_loss(state["params"]["goal_ae"], deter, jnp.float32(0.0), jax.random.PRNGKey(7))
    assert float(log_beta) == pytest.approx(-np.log(1.1))


def test_manager_entropy_scale_rises_when_entropy_is_low():
    """Manager entropy scale: an update whose manager entropy is below the target band (0.5 of the maximum) raises
    the scale by (1 + rate); one above the band lowers it. Both directions come from one compiled update per mode:
    a uniform manager (zero output layer) has the maximum entropy, a peaked one (output layer x 1e3) nearly none."""
    # "per_slot" targets a slot's normalised entropy (at most 1), "summed" a fraction of the summed maximum.
    for mode in ("per_slot", "summed"):
        cfg, agent, state = agent_for("director", manager_entropy=mode)
        step = jax.jit(agent.train_step)
        out = f"Dense_{cfg.mlp_layers}"  # the manager MLP's output layer
        for scale, sign in ((1e3, 1.0), (0.0, -1.0)):
            mlp = state["params"]["manager"]["params"]["MLP_0"]
            manager = {"params": {"MLP_0": {**mlp, out: jax.tree.map(lambda x: scale * x, mlp[out])}}}
            start = {**state, "params": {**state["params"], "manager": manager}}
            new, _ = step(start, random_batch(agent, cfg), jax.random.PRNGKey(8))
            change = np.asarray(new["adapt"]["manager_entropy"] - start["adapt"]["manager_entropy"])
            assert change.shape == ((cfg.goal_codes,) if mode == "per_slot" else ())
            assert np.allclose(change, sign * np.log(1 + cfg.adapt_rate), rtol=1e-5), (mode, scale)
        assert step._cache_size() == 1


def test_manager_abstract_trajectory_by_hand():
    """Manager's abstract trajectory: a decision's reward is the continue-masked mean of its K rewards; the abstract
    continue is the product of the segment's flags; discount gamma^K; weights are the imagined weights at decision
    states. H = 4, K = 2, zero critics (value 0), rewards 1..4, the second state's continue flag 0.5."""
    cfg, agent, state = agent_for("director")
    k, gamma, lam = cfg.manager_period, cfg.discount, cfg.lam
    states = {"deter": jnp.zeros((5, 1, cfg.deter)), "stoch": jnp.zeros((5, 1, cfg.stoch, cfg.classes))}
    cont = jnp.array([[1.0], [0.5], [1.0], [1.0]])  # cont[t]: continue flag of state t+1
    weight = jnp.array([[1.0], [gamma], [gamma**2 * 0.5], [gamma**3 * 0.5]])
    traj = {"states": states, "cont": cont, "weight": weight, "r_ext": jnp.array([[1.0], [2.0], [3.0], [4.0]]),
            "r_expl": jnp.zeros((4, 1))}
    out, _ = agent.manager_terms(state["params"], state, traj, jnp.full((1, 1), 0.5))
    r0, r1 = (1 * 1 + 2 * 1) / 2, (3 * 0.5 + 4 * 0.5) / 2  # segment 1 starts at state 2, whose flag is 0.5
    ret1 = r1
    ret0 = r0 + gamma**k * 0.5 * lam * ret1
    assert np.allclose(out["returns_ext"][:, 0], [ret0, ret1], rtol=1e-5)
    assert np.allclose(out["cont"][:, 0], [0.5, 1.0])
    assert np.allclose(out["weight"][:, 0], [1.0, gamma**2 * 0.5])


def test_segments_layout_and_worker_bootstrap_goal():
    """Worker segments: [H+1] -> [K+1, D] overlapping windows (0 1 2)(2 3 4); every row of a segment, its last
    (bootstrap) state included, carries the goal decided at the segment's start; codes change only at t = jK."""
    cfg, agent, state = agent_for("director")
    x = jnp.arange(5.0)[:, None]
    assert np.array_equal(agent._segments(x)[:, :], [[0, 2], [1, 3], [2, 4]])
    p = state["params"]
    (_, (traj, _, _)) = agent.worker_loss(p["worker"], p, state, start_states(cfg, n=3), jnp.full((3, 1), 0.5),
                                          jax.random.PRNGKey(9))
    code = np.asarray(traj["code"])  # [H, N, codes, classes]
    assert np.array_equal(code[1], code[0]) and np.array_equal(code[3], code[2])
    goals = agent.goal_ae.apply(p["goal_ae"], jnp.asarray(code[::2]), method=GoalAutoencoder.decode)  # [D, N, deter]
    seg_goal = np.asarray(traj["w_in"][..., -cfg.deter:]).reshape(k1 := cfg.manager_period + 1, 2, 3, cfg.deter)
    for row in range(k1):
        assert np.allclose(seg_goal[row], goals, atol=1e-6)


def test_reinforce_sign():
    """Manager REINFORCE: a gradient step raises the log-probability of codes with positive advantage and lowers it
    for negative advantage."""
    cfg, agent, state = agent_for("director")
    m_in = jax.random.normal(jax.random.PRNGKey(10), (3, 4, cfg.deter + cfg.stoch * cfg.classes + 1))
    codes = jax.nn.one_hot(jax.random.randint(jax.random.PRNGKey(11), (2, 4, cfg.goal_codes), 0, cfg.goal_classes),
                           cfg.goal_classes)
    params = state["params"]["manager"]

    def logp(p):
        logits = agent.manager.apply(p, m_in[:-1])
        return float(jnp.sum(codes * jax.nn.log_softmax(logits)))

    for adv in (1.0, -1.0):
        grads, _ = jax.grad(agent.manager_loss, has_aux=True)(params, m_in, codes, jnp.full((2, 4), adv),
                                                              jnp.ones((2, 4)), jnp.float32(np.log(1e-8)))
        stepped = jax.tree.map(lambda w, g: w - 1e-2 * g, params, grads)
        assert np.sign(logp(stepped) - logp(params)) == adv


def test_exploration_reward_is_goal_autoencoder_error_of_next_state():
    """Manager exploration reward: the goal autoencoder's mean squared reconstruction error of each next state."""
    cfg, agent, state = agent_for("director")
    p = state["params"]
    key = jax.random.PRNGKey(12)
    (_, (traj, _, _)) = agent.worker_loss(p["worker"], p, state, start_states(cfg, n=3), jnp.full((3, 1), 0.5), key)
    nxt = traj["states"]["deter"][1:]
    recon, _ = agent.goal_ae.apply(p["goal_ae"], nxt, jax.random.split(key)[1])
    assert np.allclose(traj["r_expl"], jnp.mean((recon - nxt) ** 2, -1), rtol=1e-5)


def test_critics_get_their_own_initial_parameters():
    """Director's three critics start from independent keys. Two layers initialised from one key draw the same
    normals, scaled by their fan-in, so the overlapping block of their first kernels would be perfectly correlated."""
    _, _, state = agent_for("director")
    p = state["params"]
    kernels = [np.asarray(jax.tree.leaves(p[name])[0])[:32, :32].ravel()
               for name in ("critic_ext", "critic_expl", "critic_goal")]
    for i, j in ((0, 1), (0, 2), (1, 2)):
        assert abs(np.corrcoef(kernels[i], kernels[j])[0, 1]) < 0.5


def test_init_from_carries_every_learned_quantity(tmp_path):
    """What --init-from carries: parameters, slow critics, return normalisers and adapted scales come from the source
    run; optimiser states start fresh; a group that does not match is an error naming it. The source is an export
    whose every learned quantity differs from a fresh state's (each leaf shifted by 1), written as `hrl export`
    writes one."""
    from hrl_core.checkpoint import Checkpointer
    from hrl_core.group import init_from
    from hrl_core.learned import load_agent
    from hrl_core.rundir import RunSpec, write_spec

    cfg, agent, fresh = agent_for("director")
    learned = {k: jax.tree.map(lambda x: x + 1, v) for k, v in fresh.items() if k != "opt"}
    (tmp_path / "src").mkdir()
    write_spec(tmp_path / "src", RunSpec.create("walker_speed", agent="director", config=SMALL))
    ckpt = Checkpointer(tmp_path / "src" / "ckpt", keep=1)
    ckpt.save(40, learned, None, {"learned_only": True, "counters": {"step": 40}})
    ckpt.close()
    _, src_state, _ = load_agent(tmp_path / "src")
    state = init_from(fresh, tmp_path / "src")
    for item in ("params", "slow_critic", "retnorm", "advnorm", "adapt"):
        assert not tree_equal(src_state[item], fresh[item]), item
        assert tree_equal(state[item], src_state[item]), item
    assert tree_equal(state["opt"], fresh["opt"])
    _, _, other = agent_for("director", mlp_units=16)
    with pytest.raises(ValueError, match="parameter group 'params/wm'"):
        init_from(other, tmp_path / "src")


def test_director_evaluation_samples_codes_and_takes_the_worker_mean():
    """Director's evaluation behaviour (policy mode "eval"): the manager's codes are sampled (not always the argmax
    of its logits at the step's latent), the worker's action is its mean for the chosen goal; "mode" always takes
    the argmax codes. (The posterior latent is sampled in every mode; a key gives the same latent in each.)"""
    cfg, agent, state = agent_for("director")
    obs = common.policy_obs(ENV.reset(), add_batch=True)
    policy = jax.jit(agent.policy, static_argnames="mode")
    carry = agent.initial_carry(1)
    params = state["params"]
    sampled_differs = []
    for i in range(6):
        action, new, aux = policy(state, carry, obs, jax.random.PRNGKey(i), mode="eval")
        logits = agent.manager.apply(params["manager"], agent.manager_input(new["state"], obs["task"]))
        sampled_differs.append(not np.array_equal(aux["code"], np.argmax(logits, -1)))
        mean, _ = agent.worker.apply(params["worker"], agent.worker_input(new["state"], new["goal"], obs["task"]))
        assert np.allclose(action, mean)
        _, _, aux_mode = policy(state, carry, obs, jax.random.PRNGKey(i), mode="mode")
        assert np.array_equal(aux_mode["code"], np.argmax(logits, -1))
    assert any(sampled_differs)


def test_flat_evaluation_samples_the_actor():
    """DreamerV3's evaluation behaviour (policy mode "eval"): the actor is sampled, as in the official release;
    "mode" returns the actor's mean at the same latent."""
    cfg, agent, state = agent_for("dreamer")
    obs = common.policy_obs(ENV.reset(), add_batch=True)
    policy = jax.jit(agent.policy, static_argnames="mode")
    carry = agent.initial_carry(1)
    action, new, _ = policy(state, carry, obs, jax.random.PRNGKey(0), mode="eval")
    mean, _ = agent.actor.apply(state["params"]["actor"], features(new["state"], obs["task"]))
    assert not np.allclose(action, mean)
    action_mode, _, _ = policy(state, carry, obs, jax.random.PRNGKey(0), mode="mode")
    assert np.allclose(action_mode, mean)

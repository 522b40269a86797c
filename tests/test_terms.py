"""Tests that pin individual terms of the math: each one is a hand computation or a property that fails when the
term it names is wrong (RSSM reset, blocked GRU, KL free bits, imagined reward alignment and weights, actor and
critic updates, replay alignment in the loop, action-repeat rewards)."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrl_core import nets
from hrl_core.config import make_config
from hrl_core.world_model import WorldModel, features, imagined_outcomes, observe
from tests.helpers import SMALL

ACT = 6  # walker's action size


def init_wm(cfg, seed=0):
    wm = WorldModel(cfg, ACT)
    obs = {"image": jnp.zeros((1, 64, 64, 3), jnp.uint8)}
    init = jax.jit(lambda k: wm.init(k, obs, jnp.zeros((1, ACT)), None, jax.random.fold_in(k, 1)))  # one compile
    return wm, init(jax.random.PRNGKey(seed))


@pytest.fixture(scope="module")
def small_wm():
    cfg = make_config("tiny", **SMALL)
    return (cfg, *init_wm(cfg))


def random_state(cfg, batch_shape, seed):
    rng = np.random.default_rng(seed)
    deter = rng.normal(size=(*batch_shape, cfg.deter)).astype(np.float32)
    stoch = np.eye(cfg.classes, dtype=np.float32)[rng.integers(0, cfg.classes, (*batch_shape, cfg.stoch))]
    return {"deter": jnp.asarray(deter), "stoch": jnp.asarray(stoch)}


def with_reward_head(params, seed, scale=1.0):
    """The reward head's output layer is zero-initialised (reward 0 everywhere); give it random weights so the
    predicted reward depends on the state."""
    params = jax.tree.map(lambda x: x, params)  # copy of the containers
    head = params["params"]["reward_head"]
    out = sorted(k for k in head if k.startswith("Dense"))[-1]
    kernel = head[out]["kernel"]
    head[out] = {**head[out], "kernel": scale * jax.random.normal(jax.random.PRNGKey(seed), kernel.shape)}
    return params


# ----- 1. RSSM reset on is_first inside a sequence -----

def test_is_first_inside_a_sequence_resets_state_and_action(small_wm):
    """Pins the reset in WorldModel.obs_step as used by observe: at a step t with is_first inside a sequence, the
    previous deter, stoch AND the stored action (a_{t-1} of the previous episode) are zeroed, so the posterior at t
    and every later state equal those of a fresh sequence, whatever came before."""
    cfg, wm, params = small_wm
    T, B, t0 = 6, 2, 3
    rng = np.random.default_rng(0)
    embed = jax.jit(lambda o: wm.apply(params, o, method=WorldModel.embed))(
        {"image": rng.integers(0, 255, (T, B, 64, 64, 3)).astype(np.uint8)})
    act_a = jnp.asarray(rng.uniform(-1, 1, (T, B, ACT)), jnp.float32)
    # Sequence b: a different history (embeds, actions, non-zero start state) up to and including the action
    # stored at t0, which belongs to the previous episode; identical inputs from t0 on.
    embed_b = embed.at[:t0].set(jnp.asarray(rng.normal(size=embed[:t0].shape), jnp.float32))
    act_b = act_a.at[:t0 + 1].set(jnp.asarray(rng.uniform(-1, 1, (t0 + 1, B, ACT)), jnp.float32))
    first_a = jnp.zeros((T, B), bool).at[0].set(True).at[t0].set(True)
    first_b = jnp.zeros((T, B), bool).at[t0].set(True)
    key = jax.random.PRNGKey(3)  # the same key: the same per-step sampling keys in both runs
    _, sa, post_a, prior_a = observe(wm, params, embed, act_a, first_a, None, wm.initial((B,)), key)
    _, sb, post_b, prior_b = observe(wm, params, embed_b, act_b, first_b, None, random_state(cfg, (B,), 1), key)
    assert not np.allclose(sa["deter"][t0 - 1], sb["deter"][t0 - 1])  # the histories really differ
    for x, y in [(sa["deter"], sb["deter"]), (sa["stoch"], sb["stoch"]), (post_a, post_b), (prior_a, prior_b)]:
        np.testing.assert_allclose(x[t0:], y[t0:], atol=1e-6)

    # A fresh sequence starting at t0 from the zero state with a zero action (no flag): the same deter, posterior
    # and prior at its first step (these do not depend on the sampling key).
    zero_act = act_a[t0:].at[0].set(0.0)
    _, sf, post_f, prior_f = observe(wm, params, embed[t0:], zero_act, jnp.zeros((T - t0, B), bool), None,
                                     wm.initial((B,)), jax.random.PRNGKey(99))
    np.testing.assert_allclose(sf["deter"][0], sa["deter"][t0], atol=1e-6)
    np.testing.assert_allclose(post_f[0], post_a[t0], atol=1e-5)
    np.testing.assert_allclose(prior_f[0], prior_a[t0], atol=1e-5)


# ----- 2. Independent GRU blocks -----

def test_block_linear_is_block_diagonal_by_hand():
    """Pins nets.BlockLinear: output block i = x_block_i @ kernel[i] + bias_i, so d out_i / d x_j = 0 for i != j and
    kernel[i]^T for i == j."""
    blocks, units, din = 3, 12, 9
    layer = nets.BlockLinear(units, blocks)
    x = jax.random.normal(jax.random.PRNGKey(0), (din,))
    params = layer.init(jax.random.PRNGKey(1), x)
    params = jax.tree.map(lambda p: p + 0.1 * jax.random.normal(jax.random.PRNGKey(2), p.shape), params)  # bias != 0
    kernel, bias = params["params"]["kernel"], params["params"]["bias"]
    assert kernel.shape == (blocks, din // blocks, units // blocks)
    out, jac = layer.apply(params, x), jax.jacfwd(lambda v: layer.apply(params, v))(x)
    o, i_ = units // blocks, din // blocks
    for i in range(blocks):
        np.testing.assert_allclose(out[i * o:(i + 1) * o], x[i * i_:(i + 1) * i_] @ kernel[i] + bias[i * o:(i + 1) * o],
                                   rtol=1e-5, atol=1e-6)
        for j in range(blocks):
            block = jac[i * o:(i + 1) * o, j * i_:(j + 1) * i_]
            np.testing.assert_allclose(block, kernel[i].T if i == j else np.zeros_like(block), atol=1e-7)


def test_blocked_core_each_block_sees_its_own_deter_and_the_shared_input():
    """Pins the block structure of WorldModel._core with blocks > 1 (what is true of it: every block also sees the
    shared input x built by core_in from the whole deter/stoch/action, and core_norm normalises across blocks):
    (a) the hidden layer's input for block i is [deter block i, x] with the same x for every block;
    (b) with x independent of deter, block i of the hidden layer depends on deter block i only;
    (c) the gates of block i come from block i of the normalised hidden layer only: d new_deter_i / d h_j = 0."""
    cfg = make_config("tiny", **{**SMALL, "blocks": 4})
    g, per = cfg.blocks, cfg.deter // cfg.blocks
    wm, params = init_wm(cfg)
    state = random_state(cfg, (1,), 0)
    action = jax.random.uniform(jax.random.PRNGKey(5), (1, ACT), minval=-1, maxval=1)

    @jax.jit
    def hidden_input(state):
        seen = {}

        def spy(next_fun, args, kwargs, context):
            if context.module.name == "core_hidden" and context.method_name == "__call__":
                seen["x"] = args[0]
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(spy):
            wm.apply(params, state, action, None, method=WorldModel._core)
        return seen["x"]

    x = np.asarray(hidden_input(state)).reshape(1, g, -1)
    assert x.shape[-1] == per + 3 * cfg.hidden
    deter_blocks = np.asarray(state["deter"]).reshape(1, g, per)
    np.testing.assert_array_equal(x[..., :per], deter_blocks)  # (a) its own deter block ...
    for i in range(1, g):
        np.testing.assert_array_equal(x[:, i, per:], x[:, 0, per:])  # ... plus the one shared input

    # (b) Cut the deter -> shared input path: then hidden block i depends on deter block i only.
    cut = jax.tree.map(lambda v: v, params)
    cut["params"]["core_in_0"] = {"kernel": jnp.zeros_like(params["params"]["core_in_0"]["kernel"])}

    def hidden(deter):
        _, inter = wm.apply(cut, {**state, "deter": deter}, action, None, method=WorldModel._core,
                            capture_intermediates=lambda mdl, name: mdl.name == "core_hidden",
                            mutable=["intermediates"])
        return inter["intermediates"]["core_hidden"]["__call__"][0]

    jac = np.asarray(jax.jit(jax.jacfwd(hidden))(state["deter"]))[0, :, 0, :].reshape(g, per, g, per)
    kernel = np.asarray(params["params"]["core_hidden"]["kernel"])  # [g, per + 3 hidden, per]
    for i in range(g):
        for j in range(g):  # d hidden_i / d deter_j = (deter rows of block i's kernel)^T if i == j, else 0
            np.testing.assert_allclose(jac[i, :, j], kernel[i, :per].T if i == j else 0.0, atol=1e-6)

    # (c) Replace core_norm's output by h: the new deter of block i depends on h block i only.
    def new_deter(h):
        def replace(next_fun, args, kwargs, context):
            if context.module.name == "core_norm" and context.method_name == "__call__":
                return h
            return next_fun(*args, **kwargs)

        with nn.intercept_methods(replace):
            return wm.apply(params, state, action, None, method=WorldModel._core)

    h0 = jax.random.normal(jax.random.PRNGKey(6), (1, cfg.deter))
    jac = np.asarray(jax.jit(jax.jacfwd(new_deter))(h0))[0, :, 0, :].reshape(g, per, g, per)
    for i in range(g):
        for j in range(g):
            assert (np.abs(jac[i, :, j]).max() > 1e-4) == (i == j), (i, j)


# ----- 3. KL free bits on the sum over latents -----

def test_free_bits_clip_the_kl_summed_over_latents():
    """Pins nets.kl_losses: the free-bits clip max(1, KL) applies to the KL summed over all S latents, not to each
    latent. Four latents with KL 0.4 each (hand-computed) give 1.6, not sum_i max(1, 0.4) = 4; two give
    max(1, 0.8) = 1 (and no gradient)."""
    target = 0.4
    # KL([.5, .5] || [a, 1 - a]) = -ln 2 - ln(a (1 - a)) / 2 = 0.4  <=>  a (1 - a) = exp(-2 (0.4 + ln 2))
    prod = np.exp(-2 * (target + np.log(2)))
    a = (1 - np.sqrt(1 - 4 * prod)) / 2
    kl_one = 0.5 * np.log(0.5 / a) + 0.5 * np.log(0.5 / (1 - a))
    assert kl_one == pytest.approx(target)
    post1 = np.log([0.5, 0.5])
    prior1 = np.log([a, 1 - a])
    for latents, expected in [(4, 4 * target), (2, 1.0), (1, 1.0)]:
        post = jnp.asarray(np.tile(post1, (3, latents, 1)), jnp.float32)  # [batch 3, S, C]
        prior = jnp.asarray(np.tile(prior1, (3, latents, 1)), jnp.float32)
        dyn, rep = nets.kl_losses(post, prior, free_nats=1.0)
        assert dyn.shape == rep.shape == (3,)
        np.testing.assert_allclose(dyn, expected, rtol=1e-5)
        np.testing.assert_allclose(rep, expected, rtol=1e-5)
        grad = jax.grad(lambda q: nets.kl_losses(post, q, 1.0)[0].sum())(prior)
        assert bool(np.any(np.abs(grad) > 1e-3)) == (latents * target > 1.0)  # clipped loss: no gradient


# ----- 4. Imagined reward/continue alignment and weights -----

def test_imagined_reward_and_cont_come_from_the_next_state_and_weights_compound(small_wm):
    """Pins world_model.imagined_outcomes: reward[t] and cont[t] are the heads applied to state t+1 (what arriving
    there yields), feat is features(states), and weight[t] = weight[0] prod_{i<t} discount cont[i]
    for t >= 1 (weight[0] itself is left to the start-state convention)."""
    cfg, wm, params = small_wm
    params = with_reward_head(params, seed=4)
    H, B, discount = 5, 3, 0.9
    states = random_state(cfg, (H + 1, B), 2)
    task = None
    feat, reward, cont, weight = imagined_outcomes(wm, params, states, task, discount)
    assert reward.shape == cont.shape == weight.shape == (H, B)
    np.testing.assert_allclose(feat, features(states), atol=0)
    for t in range(H):
        nxt = jax.tree.map(lambda x: x[t + 1], states)  # the state the transition t arrives at
        heads = wm.apply(params, features(nxt), method=WorldModel.heads)
        np.testing.assert_allclose(reward[t], nets.two_hot_mean(heads["reward_logits"]), rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(cont[t], jax.nn.sigmoid(heads["cont_logit"]), rtol=1e-5, atol=1e-6)
    assert float(jnp.std(reward)) > 1e-2 and float(jnp.std(cont)) > 1e-3  # the check can tell states apart
    cont_np, w = np.asarray(cont, np.float64), np.asarray(weight, np.float64)
    for t in range(1, H):
        np.testing.assert_allclose(w[t] / w[0], np.prod(discount * cont_np[:t], 0), rtol=1e-5)


# ----- 5. The actor's gradient raises the imagined return -----

@pytest.fixture(scope="module")
def walker_speed_spaces():
    from hrl_core.envs import make_env

    env = make_env("walker_speed")
    yield env.obs_space, env.act_space
    env.close()


def test_actor_gradient_steps_raise_the_imagined_return(walker_speed_spaces):
    """Pins DreamerAgent.actor_loss as the negative of the weighted normalised imagined return, differentiated
    through the model to the actions: a few small SGD steps on the actor only, along -grad(actor_loss), raise
    mean(weight * return / scale) on fixed start states with a fixed key (entropy bonus off, reward head made
    state-dependent), by a fair part of what the gradient predicts to first order (lr |grad|^2 per step).

    The prior's output layer is scaled up so its categoricals are nearly deterministic: with a fixed key the
    sampled latents then do not flip between steps and their straight-through gradients vanish, so the imagined
    return is a smooth function of the actor's parameters and the check is not at the mercy of sampling noise."""
    from hrl_core.agents import make_agent

    obs_space, act_space = walker_speed_spaces
    cfg = make_config("tiny", **SMALL, actor_entropy=0.0)
    agent = make_agent(cfg, obs_space, act_space)
    state = agent.init(jax.random.PRNGKey(0))
    wm_params = with_reward_head(state["params"]["wm"], seed=1, scale=0.3)
    prior = wm_params["params"]["prior_net"]
    out = sorted(k for k in prior if k.startswith("Dense"))[-1]
    prior[out] = {**prior[out], "kernel": 10.0 * prior[out]["kernel"]}
    B = 16
    start = random_state(cfg, (B,), 3)
    task = jnp.full((B, 1), 0.5, jnp.float32)
    retnorm, key = state["retnorm"], jax.random.PRNGKey(7)

    @jax.jit
    def loss_and_grad(actor_params):
        return jax.value_and_grad(agent.actor_loss, has_aux=True)(actor_params, wm_params, state["params"]["critic"],
                                                                  retnorm, start, task, key)

    def objective(aux):  # mean(weight * return / scale), from the returns and weights, not from the loss
        _, returns, weight, _, metrics = aux
        return float(jnp.mean(weight * returns) / metrics["actor/return_scale"])

    lr, actor = 0.01, state["params"]["actor"]
    (loss, aux), grad = loss_and_grad(actor)
    assert float(loss) == pytest.approx(-objective(aux), rel=1e-5)  # the loss is minus the objective
    objectives, predicted = [objective(aux)], 0.0
    for _ in range(4):
        predicted += lr * sum(float(jnp.sum(g_ ** 2)) for g_ in jax.tree.leaves(grad))
        actor = jax.tree.map(lambda p, g_: p - lr * g_, actor, grad)
        (loss, aux), grad = loss_and_grad(actor)
        objectives.append(objective(aux))
    assert predicted > 1e-4  # the return really depends on the actor
    assert np.all(np.diff(objectives) > 0), objectives
    # The actor's gradient is a surrogate, not the total derivative of the return (straight-through action clipping
    # and latent samples; the latent fed to the actor is stop-gradiented, as in DreamerV3), so only part of the
    # first-order rise is realised (about a third here).
    assert objectives[-1] - objectives[0] > 0.1 * predicted, (objectives, predicted)


# ----- 6. The critic moves toward its lambda-returns -----

def test_critic_steps_move_its_prediction_toward_the_returns_and_the_slow_critic():
    """Pins common.critic_loss: (a) with the slow critic equal to the critic (so the regulariser cannot pull
    elsewhere), steps on it move the two-hot mean prediction at state t (feat[:-1]) toward returns[t]: returns of
    alternating sign over time, so a loss aligned to the wrong states would pull the wrong way; (b) the
    regulariser pulls the prediction toward the slow critic's prediction, not away from it."""
    import optax

    from hrl_core.agents.common import Critic, critic_loss

    H, B, F = 4, 3, 10
    critic = Critic(32, 1)
    feat = jax.random.normal(jax.random.PRNGKey(0), (H + 1, B, F))
    params = critic.init(jax.random.PRNGKey(1), feat)
    weight = jnp.ones((H, B))
    opt = optax.adam(0.03)

    def predict(p):
        return nets.two_hot_mean(critic.apply(p, feat[:-1]))

    def dist(pred, target):  # mean squared distance in symlog space (where the critic's bins live)
        return float(jnp.mean((nets.symlog(pred) - nets.symlog(target)) ** 2))

    @jax.jit
    def adam_step(p, o, returns):  # slow critic = the critic itself
        g = jax.grad(lambda q: critic_loss(critic, q, p, feat, returns, weight))(p)
        u, o = opt.update(g, o, p)
        return optax.apply_updates(p, u), o

    def fit(returns, steps):
        p, o = params, opt.init(params)
        for _ in range(steps):
            p, o = adam_step(p, o, returns)
        return p

    # (a) From the zero-initialised critic (prediction 0) toward returns of +-5 alternating over time.
    returns = jnp.asarray(np.where(np.arange(H)[:, None] % 2 == 0, 5.0, -5.0) * np.ones((H, B)), jnp.float32)
    before = dist(predict(params), returns)
    p = fit(returns, 20)
    assert dist(predict(p), returns) < 0.5 * before
    assert np.all(np.sign(predict(p)) == np.sign(returns))

    # (b) A critic fitted to some values, a slow critic fitted to others; returns = the critic's own prediction,
    # so only the regulariser has somewhere to pull: plain gradient steps bring it toward the slow prediction.
    rng = np.random.default_rng(0)
    p1 = fit(jnp.asarray(rng.uniform(-3, 3, (H, B)), jnp.float32), 40)
    slow = fit(jnp.asarray(rng.uniform(-3, 3, (H, B)), jnp.float32), 40)
    pred1, slow_pred = predict(p1), predict(slow)

    @jax.jit
    def sgd_step(p):
        g = jax.grad(lambda q: critic_loss(critic, q, slow, feat, pred1, weight))(p)
        return jax.tree.map(lambda x, d: x - 0.3 * d, p, g)

    p = p1
    for _ in range(5):
        p = sgd_step(p)
    assert dist(pred1, slow_pred) > 0.5  # the two really differ
    assert dist(predict(p), slow_pred) < 0.8 * dist(pred1, slow_pred)


# ----- 7. Replay alignment in the training loop -----

def test_training_loop_stores_the_previous_action_with_each_observation(tmp_path, monkeypatch):
    """Pins the replay convention of hrl_core.train.train: step t holds obs_t and a_{t-1}, the action whose
    environment step produced obs_t, and a zero action where is_first. Checked against the actions the loop sent to
    the environments, and by replaying the stored actions on fresh environments with the same seeds, which must
    reproduce every stored frame, reward and flag."""
    from hrl_core import train as train_mod
    from hrl_core.batches import replay_spaces
    from hrl_core.checkpoint import Checkpointer
    from hrl_core.envs import BatchedEnv, make_env
    from hrl_core.replay import Replay
    from hrl_core.rundir import RunSpec

    sent = []

    class RecordingEnv(BatchedEnv):
        def step_async(self, actions):  # the loop sends actions this way (step() goes through it too)
            sent.append(np.array(actions, np.float32, copy=True))
            return super().step_async(actions)

    monkeypatch.setattr(train_mod, "BatchedEnv", RecordingEnv)
    options, seed, per_env = {"time_limit": 0.5}, 5, 24  # 10-step episodes: resets at t = 11 and 22
    summary = train_mod.train(tmp_path / "run", RunSpec.create("walker_speed", seed=seed, config=SMALL,
                                                               env_options=options),
                              train_mod.Schedule(2 * per_env, checkpoint_every=10**9, log_every=10**9,
                                                 prefill=10**9),
                              parallel=False, progress=False)
    assert summary["updates"] == 0 and summary["replay_steps"] == 2 * per_env

    cfg = make_config("tiny", **SMALL)
    env = make_env("walker_speed", **options)
    replay = Replay(cfg.replay_capacity, cfg.num_envs, replay_spaces(env.obs_space, env.act_space))
    ckpt = Checkpointer(tmp_path / "run" / "ckpt")
    replay.restore(tmp_path / "run" / "replay", ckpt.restore_meta()["replay"])
    ckpt.close()
    data = {k: v[:, :per_env] for k, v in replay.data.items()}
    assert len(replay) == 2 * per_env and data["action"].shape == (2, per_env, ACT)

    for i in range(cfg.num_envs):
        first, action = data["is_first"][i], data["action"][i]
        assert first[0] and first.sum() >= 3  # starts, and two resets inside the run
        assert not np.any(action[first])  # zero action on every first step
        for t in np.flatnonzero(~first):
            np.testing.assert_array_equal(action[t], sent[t - 1][i])  # a_{t-1} of the same environment
        # Replaying the stored actions reproduces the stored stream.
        replica = make_env("walker_speed", seed=seed * cfg.num_envs + i, **options)  # run seed s: envs s n, ...
        obs = replica.reset()
        for t in range(per_env):
            if t:
                obs = replica.step(action[t] if not first[t] else np.full(ACT, 0.5, np.float32))
            assert np.array_equal(obs["image"], data["image"][i, t]), t
            assert obs["reward"] == data["reward"][i, t] and obs["is_first"] == first[t], t
            assert obs["is_last"] == data["is_last"][i, t] and np.array_equal(obs["task"], data["task"][i, t]), t
        replica.close()


# ----- 8. Rewards summed over action repeats -----

def test_action_repeat_sums_the_suite_reward_of_every_physics_step():
    """Pins DMCPixelEnv._step's reward with action repeat 2: the sum of the dm_control suite reward over both
    control steps (replayed on a fresh suite env with the same seed), not the last or first alone. Also, for a
    speed task, one step at repeat 2 earns what two steps at repeat 1 earn with the same action."""
    from dm_control import suite

    from hrl_core.envs import make_env

    env = make_env("walker_walk", seed=2, action_repeat=2)
    ref = suite.load("walker", "walk", task_kwargs={"random": 2})
    env.reset()
    ref.reset()
    rng = np.random.default_rng(0)
    distinct = 0
    for _ in range(6):
        action = rng.uniform(-1, 1, ACT).astype(np.float32)
        reward = env.step(action)["reward"]
        inner = [ref.step(action).reward for _ in range(2)]
        assert float(reward) == pytest.approx(sum(inner), rel=1e-6)
        np.testing.assert_array_equal(env._env.physics.get_state(), ref.physics.get_state())
        distinct += abs(inner[0] - inner[1]) > 1e-4
    assert distinct >= 3  # the sum differs from twice either term

    two, one = (make_env("walker_speed", seed=4, speed=2.0, action_repeat=r) for r in (2, 1))
    two.reset(), one.reset()
    for _ in range(4):
        action = rng.uniform(-1, 1, ACT).astype(np.float32)
        r2 = float(two.step(action)["reward"])
        r1 = float(one.step(action)["reward"]) + float(one.step(action)["reward"])
        assert r2 == pytest.approx(r1, rel=1e-6)

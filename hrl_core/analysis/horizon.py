"""How far ahead a decision reaches, for a flat policy (one decision per step) and a manager (one per K steps).

Analytic measures, from the agent's constants:
    discount-weighted horizon  H = 1 / (1 - gamma) env steps: the mean lifetime of a reward under discounting.
    credit horizon in decisions:   H for the flat policy, H / K for the manager (each of its decisions spans K steps).
    decisions per episode:         T for the flat policy, ceil(T / K) for the manager.
    imagination in decisions:      horizon for the flat policy, horizon / K for the manager.

Measured from rollouts (`decision_response`): replay one episode twice from the same seed, once as the policy
acts (mean actions) and once perturbed for K steps from step t0, equally for both agents (Director: one uniformly
random goal code, which the worker pursues for its K steps; flat: K uniformly random actions in a row). The
response at lag l is |r_perturbed(t0 + l) - r(t0 + l)|; its reach (L90) is the smallest lag, in environment steps,
by which 90% of the summed response has arrived, and the return sensitivity is |sum_l gamma^l (r_perturbed - r)(t0
+ l)| over the window. Whether the window was long enough is checked in the data: the response has decayed when
its last quarter holds under 10% of the total. "In own decisions" (L90 / K for Director) is kept as a second view.
"""

from __future__ import annotations

import math

import jax
import numpy as np

from hrl_core.agents.common import policy_obs
from hrl_core.config import DIRECTORS


def discount_horizon(discount: float) -> float:
    if not 0 <= discount < 1:
        raise ValueError(f"discount={discount!r} is not valid; it must lie in [0, 1)")
    return 1.0 / (1.0 - discount)


def horizon_table(discount: float, episode_steps: int, imagination_horizon: int, k_values) -> list[dict]:
    """One row per manager period K (K = 1 is the flat policy)."""
    h = discount_horizon(discount)
    return [{"K": int(k), "decisions_per_episode": math.ceil(episode_steps / k), "credit_horizon_steps": h,
             "credit_horizon_decisions": h / k, "imagination_decisions": imagination_horizon / k}
            for k in k_values]


def _perturbed_step(agent):
    """A jitted step that acts like `agent.policy(mode="mode")` but replaces this step's decision at random (the
    rollout calls it once for Director, whose goal then holds K steps, and K times in a row for the flat agent)."""
    if agent.cfg.agent in DIRECTORS:  # a random goal code, decoded into a goal the worker pursues
        def step(state, carry, obs, key):
            k_policy, k_code = jax.random.split(key)
            _, carry, aux = agent.policy(state, carry, obs, k_policy, mode="mode")
            params = state["params"]
            cfg = agent.cfg
            code = jax.nn.one_hot(jax.random.randint(k_code, (1, cfg.goal_codes), 0, cfg.goal_classes),
                                  cfg.goal_classes)
            goal = agent.decode_goal(params, code, carry["state"]["deter"])
            mean, _ = agent.worker.apply(params["worker"], agent.worker_input(carry["state"], goal, obs.get("task")))
            return mean, {**carry, "goal": goal, "code": code, "prev_action": mean}
    else:  # flat: a uniformly random action
        low, high = agent.act_space.low, agent.act_space.high

        def step(state, carry, obs, key):
            k_policy, k_act = jax.random.split(key)
            _, carry, _ = agent.policy(state, carry, obs, k_policy, mode="mode")
            action = jax.random.uniform(k_act, (1, *agent.act_space.shape), minval=low, maxval=high)
            return action, {**carry, "prev_action": action}
    return jax.jit(step)


def rollout_rewards(agent, state, env_fn, steps: int, seed: int = 0, perturb_at: int | None = None,
                    perturb_key=None, steps_fns=None, perturb_steps: int = 1) -> dict:
    """Rewards of one episode from a fresh `env_fn()`, mean actions, optionally the decisions of `perturb_steps`
    steps from `perturb_at` replaced. `steps_fns` = (policy, perturbed step), jitted once by the caller."""
    policy, perturbed = steps_fns or (jax.jit(agent.policy, static_argnames="mode"), _perturbed_step(agent))
    env = env_fn()
    key = jax.random.PRNGKey(seed)
    obs = env.reset()
    carry = agent.initial_carry(1)
    rewards, decisions = [], 0
    for t in range(steps):
        key, k = jax.random.split(key)
        batch = policy_obs(obs, add_batch=True)
        if perturb_at is not None and perturb_at <= t < perturb_at + perturb_steps:
            action, carry = perturbed(state, carry, batch, jax.random.fold_in(perturb_key, t - perturb_at))
            decisions += 1
        else:
            action, carry, aux = policy(state, carry, batch, k, mode="mode")
            decisions += int(np.asarray(aux["decision"])[0]) if "decision" in aux else 1
        obs = env.step(np.asarray(action[0]))
        rewards.append(float(obs["reward"]))
        if obs["is_last"]:
            break
    env.close()
    return {"rewards": np.asarray(rewards), "decisions": decisions}


def l90(response) -> int | None:
    """Smallest lag by which 90% of the summed response has arrived (None for no response at all)."""
    total = np.cumsum(response)
    if total[-1] <= 0:
        return None
    return int(np.argmax(total >= 0.9 * total[-1]))


def decision_response(agent, state, env_fn, perturbations: int, window: int, seed: int = 0,
                      discount: float | None = None, progress: bool = True, span: int | None = None) -> dict:
    """The mean reward response to a K-step perturbation (see the module docstring), over `perturbations` decision
    times t0 spread through one episode, plus decisions per episode counted in the unperturbed rollout. `span` is
    the flat agent's number of random actions (default: its config's manager_period, the K Director's goals hold
    for at the same preset); Director's span is its own K."""
    from tqdm.auto import tqdm

    period = agent.cfg.manager_period if agent.cfg.agent in DIRECTORS else 1
    span = period if period > 1 else (agent.cfg.manager_period if span is None else span)
    discount = agent.cfg.discount if discount is None else discount
    fns = (jax.jit(agent.policy, static_argnames="mode"), _perturbed_step(agent))
    base = rollout_rewards(agent, state, env_fn, 10**9, seed, steps_fns=fns)
    length = len(base["rewards"])
    if length <= window:
        raise ValueError(f"window={window} is not valid; it must be shorter than the episode ({length} steps)")
    starts = np.unique((np.linspace(0, length - window - 1, perturbations) // period * period).astype(int))
    responses, sensitivities = [], []
    keys = jax.random.split(jax.random.PRNGKey(seed + 1), len(starts))
    for t0, k in tqdm(list(zip(starts, keys)), desc="perturbed rollouts", disable=not progress):
        pert = rollout_rewards(agent, state, env_fn, int(t0) + window, seed, perturb_at=int(t0), perturb_key=k,
                               steps_fns=fns, perturb_steps=1 if period > 1 else span)
        before = np.abs(pert["rewards"][:t0] - base["rewards"][:t0]).max(initial=0.0)
        if before > 1e-6:  # both rollouts must agree until the perturbation, or the comparison means nothing
            raise RuntimeError(f"rollouts differ before the perturbation at t0={t0} (by {before}); the environment "
                               "or policy is not deterministic under a fixed seed")
        diff = pert["rewards"][t0:t0 + window] - base["rewards"][t0:t0 + window]
        responses.append(np.abs(diff))
        sensitivities.append(abs(float(np.sum(discount ** np.arange(window) * diff))))
    mean = np.mean(responses, 0)
    reach = l90(mean)
    tail = float(mean[-(window // 4):].sum() / mean.sum()) if mean.sum() > 0 else 0.0
    return {"period": period, "episode_steps": length, "decisions_per_episode": base["decisions"],
            "starts": starts.tolist(), "lags": np.arange(window).tolist(), "response": mean.tolist(),
            "responses": np.asarray(responses).tolist(), "return_sensitivity": float(np.mean(sensitivities)),
            "l90_steps": reach, "l90_decisions": None if reach is None else reach / period, "span": span,
            "tail_fraction": tail, "decayed": tail < 0.1}

"""Evaluation episodes: returns per task and target speed.

The policy acts in `policy` mode: one of agents.common.POLICY_MODES or "random". The default "eval" is each agent's
reference evaluation behaviour: DreamerV3 samples its actor; Director samples the manager's codes and takes the
worker's mean action. "mode" takes mean actions and argmax codes (repeatable for a fixed seed). "random" acts
uniformly at random through the same episodes, environment seeds and code: the baseline every learned return is
read against."""

from __future__ import annotations

import functools
from pathlib import Path

import jax
import numpy as np

from hrl_core.agents.common import POLICY_MODES, policy_obs
from hrl_core.envs.seeds import EVALUATION_OFFSET, GATE_OFFSET
from hrl_core.learned import load_agent
from hrl_core.rundir import current_step, evaluation_path, read_evaluation, read_spec, write_evaluation
from hrl_core.validation import check_choice

EVAL_POLICIES = (*POLICY_MODES, "random")
# A run's evaluations: its measures at the training and the held-out speeds (the maze: its task), and its gate,
# the training speeds again on episodes of their own (GATE_OFFSET), so that a claim's "skill learned" check never
# reuses the episodes of the measure it gates.
EVALUATION_SPLITS = ("train", "ood", "gate")


@functools.lru_cache(maxsize=8)
def _jitted_policy(agent):
    """One jitted policy per agent, so evaluating many speeds or episodes traces and compiles it once."""
    return jax.jit(agent.policy, static_argnames="mode")


def _actor(agent, state, env, policy: str):
    """(initial carry, act(obs, carry, key) -> (action, carry, aux)) for one environment."""
    if policy == "random":
        space = env.act_space

        def act(obs, carry, key):
            return np.asarray(jax.random.uniform(key, space.shape, minval=space.low, maxval=space.high)), carry, {}
        return None, act
    step = _jitted_policy(agent)

    def act(obs, carry, key):
        action, carry, aux = step(state, carry, policy_obs(obs, add_batch=True), key, mode=policy)
        return np.asarray(action[0]), carry, aux
    return agent.initial_carry(1), act


def run_episodes(agent, state, env, episodes: int, seed: int = 0, policy: str = "eval", record=None,
                 forward_speeds: list | None = None) -> list[float]:
    """Runs whole episodes of one env and returns their returns; `record(obs, action, aux)` is called each step when
    given; `forward_speeds`, when given, gets each episode's mean forward speed (m/s, speed tasks: the velocity the
    speed reward reads). `agent` and `state` may be None for the random policy."""
    check_choice("policy", policy, EVAL_POLICIES)
    carry0, act = _actor(agent, state, env, policy)
    key = jax.random.PRNGKey(seed)
    returns = []
    for _ in range(episodes):
        obs = env.reset()
        carry = carry0
        total, velocities = 0.0, []
        while True:
            key, k = jax.random.split(key)
            action, carry, aux = act(obs, carry, k)
            if record is not None:
                record(obs, action, jax.device_get(aux))
            obs = env.step(action)
            total += float(obs["reward"])
            velocities.append(getattr(env, "velocity", np.nan))
            if obs["is_last"]:
                break
        returns.append(total)
        if forward_speeds is not None:
            forward_speeds.append(float(np.mean(velocities)))
    return returns


def evaluate(agent, state, task: str, split: str | None, episodes: int, env_options: dict | None = None,
             seed: int = 0, speeds=None, policy: str = "eval", record=None) -> list[dict]:
    """Mean return per target speed of `split` (speed tasks), with each episode's mean forward speed, or for the task
    itself; `record` as in run_episodes."""
    from hrl_core.envs import is_speed_task, make_env, speeds as task_speeds

    options = {k: v for k, v in (env_options or {}).items() if k not in ("split", "speed")}
    rows = []
    if is_speed_task(task):
        speed_split = "train" if split in (None, "gate") else split  # the gate plays the training speeds
        for speed in speeds or task_speeds(task, speed_split, options.get("speed_set", "real")):
            env = make_env(task, seed=seed, speed=float(speed), **options)
            forward = []
            returns = run_episodes(agent, state, env, episodes, seed, policy, record, forward)
            env.close()
            rows.append({"task": task, "split": split, "speed": float(speed), "returns": returns,
                         "mean_return": float(np.mean(returns)), "forward_speeds": forward,
                         "mean_forward_speed": float(np.mean(forward))})
    else:
        env = make_env(task, seed=seed, **options)
        returns = run_episodes(agent, state, env, episodes, seed, policy, record)
        env.close()
        rows.append({"task": task, "split": split, "speed": None, "returns": returns,
                     "mean_return": float(np.mean(returns))})
    return rows


def stored_evaluation(logdir: str | Path, split: str, episodes: int, policy: str = "eval") -> dict | None:
    """The run's stored evaluation (`rundir.evaluation_path`) if it is exactly the one evaluate_run would compute
    now: the run's own task and options (recorded in the file), this split and policy, `episodes` per speed, at the
    run's latest checkpoint (for a run stored without one, `learned.export_run(learned=False)`, at the step its training
    reached); else None."""
    stored = read_evaluation(logdir, split, policy)
    if stored is None:
        return None
    spec = read_spec(logdir)
    step = current_step(logdir)
    same = (stored.get("task") == spec.task and stored.get("env_options") == spec.env_options
            and stored.get("split") == split and stored.get("policy") == policy
            and stored.get("step") == step
            and all(len(row["returns"]) == episodes for row in stored.get("results", [])))
    return stored if same and stored.get("results") else None


def evaluate_run(logdir: str | Path, split: str = "train", episodes: int = 2, task: str | None = None,
                 out: str | Path | None = None, env_options: dict | None = None, policy: str = "eval",
                 frames: str | Path | None = None, write: bool = True, reuse: bool = False) -> dict:
    """Loads a run's latest checkpoint and evaluates it on the run's own task and options, with evaluation seeds
    offset by EVALUATION_OFFSET (`envs/seeds.py`) from the run's seed (split="gate": the training speeds, offset by
    GATE_OFFSET); writes the result into the run (`rundir.evaluation_path`), or to `out` (nothing with
    write=False, which the study's grids use so that reading a run, such as the repository's reference/, never
    changes it). policy="random" gives the baseline on exactly
    the same episodes. `frames` (.png strip or .gif) saves the frames of the first evaluation episode of the first
    speed, replayed with the same seeds. With reuse=True (and no other task, options or frames) an identical stored
    evaluation (`stored_evaluation`) is returned instead of being computed again."""
    check_choice("split", split, EVALUATION_SPLITS)
    check_choice("policy", policy, EVAL_POLICIES)
    if reuse and task is None and not env_options and frames is None:
        stored = stored_evaluation(logdir, split, episodes, policy)
        if stored is not None:
            return stored
    agent, state, run = load_agent(logdir)
    task = task or run.spec.task
    options = {**run.spec.env_options, **(env_options or {})}
    seed = run.spec.seed + (GATE_OFFSET if split == "gate" else EVALUATION_OFFSET)
    rows = evaluate(agent, state, task, split, episodes, options, seed=seed, policy=policy)
    result = {"logdir": str(logdir), "agent": run.spec.agent, "task": task, "env_options": options, "split": split,
              "policy": policy, "step": run.step, "results": rows}
    if frames is not None:
        from hrl_core.envs.frames import save_frames

        images, speed = [], rows[0]["speed"]
        evaluate(agent, state, task, split, 1, options, seed=seed,
                 speeds=None if speed is None else [speed], policy=policy,
                 record=lambda obs, action, aux: images.append(obs["image"]))
        result["frames"] = str(save_frames(images, frames))
    if write:
        write_evaluation(out or evaluation_path(logdir, split, policy), result)
    return result

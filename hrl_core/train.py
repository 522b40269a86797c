"""The training loop: batched environments, replay, one jitted update per train step, logs and checkpoints.

`train_seeds` trains N independent runs of one agent on one task in one process (purejaxrl's lesson: one update is
too small to fill an accelerator). Their states, optimiser states, normalisers and random keys are stacked on a
leading seed axis, sharded over the local devices when there are several; one jitted update is `jax.vmap` of the
agent's `train_step`, one jitted policy step the `vmap` of its policy. Each seed keeps its own environments (with
the seeds a single run of it would use), its own replay and its own run folder in the single-run format
(hrl_core/rundir.py), so a seed trained in a group is the run it would be alone, to float tolerance. `train` is
the group of one.

The environment workers step the next actions while the device trains: the loop sends the actions, dispatches the
updates, and only then waits for the observations. A checkpoint is written every `checkpoint_every` policy steps,
at the end, and on SIGINT/SIGTERM; `resume=True` continues from the last one with the same parameters, optimiser
state, replay contents, counters and random state, losing only the steps since it. Environments restart their
episodes on resume (their first step is marked is_first).
Each metrics row holds the update metrics' means over the updates since the previous row (not the last update).
"""

from __future__ import annotations

import contextlib
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

import jax
import jax.numpy as jnp
import numpy as np

from hrl_core.agents import make_agent
from hrl_core.agents.common import POLICY_MODES, policy_obs
from hrl_core.batches import seed_sharding, stack, unstack
from hrl_core.envs import BatchedEnv
from hrl_core.envs.seeds import CURVE_OFFSET
from hrl_core.group import SeedGroup
from hrl_core.rundir import MetricsLog, RunSpec
from hrl_core.validation import check_choice, check_non_negative, check_positive


class Interrupted:
    """Turns SIGINT/SIGTERM into a flag the loop checks, so it can checkpoint before exiting; a repeated signal only
    sets the flag again, so it cannot break a checkpoint being written. With `abort` set, a signal also raises
    KeyboardInterrupt at once (for work that has nothing to save); check the flag too, as Python drops an exception
    raised while it runs a garbage-collector callback."""

    def __init__(self, abort: bool = False):
        self.flag, self.abort = False, abort
        self._old = {}

    def __enter__(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self._old[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread (e.g. inside some notebook runners)
                pass
        return self

    def _handle(self, signum, frame):
        self.flag = True
        if self.abort:
            raise KeyboardInterrupt

    def __exit__(self, *exc):
        for sig, old in self._old.items():
            signal.signal(sig, old)


@dataclass(frozen=True)
class Schedule:
    """How long a training call runs and how often it records: `steps` policy steps (summed over a run's
    environments), a checkpoint every `checkpoint_every`, a metrics row every `log_every`, and with `evaluate_every`
    an evaluation of `evaluate_episodes` episodes (per training speed) every that many steps, acting under
    `evaluate_policy` (common.POLICY_MODES). Updates start after `prefill` steps (None: one batch, batch_size x
    batch_length)."""
    steps: int = 1000
    checkpoint_every: int = 1000
    log_every: int = 250
    evaluate_every: int = 0
    evaluate_episodes: int = 1
    prefill: int | None = None
    evaluate_policy: str = "eval"

    def __post_init__(self):
        for name in ("steps", "checkpoint_every", "log_every", "evaluate_episodes"):
            check_positive(name, getattr(self, name))
        check_non_negative("evaluate_every", self.evaluate_every)
        check_choice("evaluate_policy", self.evaluate_policy, POLICY_MODES)
        if self.prefill is not None:
            check_non_negative("prefill", self.prefill)


def train(logdir: str | Path, spec: RunSpec, schedule: Schedule = Schedule(), **options) -> dict:
    """Trains one run into `logdir`; returns its final summary. The one-seed case of `train_seeds`, which documents
    the options."""
    return train_seeds({logdir: spec}, schedule, **options)[0]


def seed_logdirs(logdir: str | Path, seeds) -> list[Path]:
    """One run folder per seed from a pattern with `{seed}` (e.g. runs/walker-dreamer-s{seed})."""
    if len(seeds) > 1 and "{seed}" not in str(logdir):
        raise ValueError(f"logdir={str(logdir)!r} is not valid for several seeds; it must contain {{seed}}, which "
                         "each seed's run folder fills in (e.g. runs/walker_speed-dreamer-s{seed})")
    return [Path(str(logdir).replace("{seed}", str(seed))) for seed in seeds]


def train_seeds(runs: Mapping, schedule: Schedule = Schedule(), *, resume: bool = False, parallel: bool = True,
                env_workers: int | None = None, progress: bool = True) -> list[dict]:
    """Trains the runs {run folder: RunSpec} of one agent, task, config and task options (one per seed) together in
    this process for `schedule.steps` policy steps each; returns each run's final summary, in order. `resume`
    continues runs from their last checkpoint; `env_workers` is the number of environment worker processes for the
    whole group (default: the core count, at most one per environment; `parallel=False`: none).

    Every option is checked first (`group.SeedGroup`), so a bad one raises before a run folder or any worker
    exists. SIGINT/SIGTERM before the run folders exist raise KeyboardInterrupt; after, the loop stops after the
    current step, saves every seed's checkpoint at it and returns normally with summary["interrupted"] True (further
    signals until then are ignored, so the saves complete). On any error the workers, checkpointers and metrics
    files are closed before the error propagates.
    """
    from tqdm.auto import tqdm

    if env_workers is not None:
        check_positive("env_workers", env_workers)
    with Interrupted(abort=True) as stop:  # until the run folders exist there is nothing to save: stop at once
        group = SeedGroup(runs, resume)
        ag = make_agent(group.cfg, group.obs_space, group.act_space)
        states, keys = group.initial(ag)
        if stop.flag:
            raise KeyboardInterrupt
    cfg, num, n_env = group.cfg, len(group.specs), group.cfg.num_envs
    sharding = seed_sharding(num)
    place = (lambda tree: jax.device_put(tree, sharding)) if sharding is not None else (lambda tree: tree)
    policy, update = jax.jit(jax.vmap(ag.policy)), Update(ag)
    split = jax.jit(jax.vmap(jax.random.split))
    prefill = cfg.batch_size * cfg.batch_length if schedule.prefill is None else schedule.prefill
    updates_per_step = cfg.train_ratio / (cfg.batch_size * cfg.batch_length)
    counters = {"step": 0, "updates": 0, "update_credit": 0.0}

    with contextlib.ExitStack() as cleanup:  # closes workers, checkpointers, metrics files and bar on any exit
        stop = cleanup.enter_context(Interrupted())  # entered first, left last: cleanup cannot be interrupted
        seed_runs = group.open(cleanup)
        # Run seed s steps environments s n_env ... s n_env + n_env - 1: no two runs share an environment seed.
        envs = cleanup.enter_context(BatchedEnv(group.task, num * n_env, parallel=parallel, workers=env_workers,
                                                env_seeds=[s * n_env + i for s in group.seeds for i in range(n_env)],
                                                **group.env_options))
        if group.resuming:
            states, keys, counters = group.restore(seed_runs, states)
        log = Logger(seed_runs, counters, schedule, ag, group)
        cleanup.callback(log.close)
        state, key = place(stack(states)), place(jnp.asarray(np.stack(keys)))
        del states

        def save():
            host_key = np.asarray(key)
            for i, run in enumerate(seed_runs):
                run.save(counters["step"], unstack(state, i), counters, host_key[i])

        def per_seed(obs: dict) -> dict:
            return {k: v.reshape(num, n_env, *v.shape[1:]) for k, v in obs.items()}

        obs = per_seed(envs.reset())
        carry = place(stack([ag.initial_carry(n_env)] * num))
        last_ckpt = counters["step"]
        label = f"{group.cfg.agent} {group.task}" + (f" x{num} seeds" if num > 1 else "")
        bar = cleanup.enter_context(tqdm(total=schedule.steps, initial=min(counters["step"], schedule.steps),
                                         desc=label, disable=not progress, unit="step"))
        while counters["step"] < schedule.steps and not stop.flag:
            keys_next = split(key)
            key, k_act = keys_next[:, 0], keys_next[:, 1]
            prev_action = np.where(obs["is_first"][..., None], 0.0, np.asarray(carry["prev_action"]))
            action, carry, _ = policy(state, carry, place(policy_obs(obs)), k_act)
            envs.step_async(np.asarray(action).reshape(num * n_env, -1))  # the workers step while the device trains
            for i, run in enumerate(seed_runs):
                run.replay.add({**{k: v[i] for k, v in obs.items()}, "action": prev_action[i].astype(np.float32)})
                run.record_step({k: obs[k][i] for k in ("reward", "is_first", "is_last")})
            counters["step"] += n_env
            bar.update(n_env)
            if len(seed_runs[0].replay) >= prefill and seed_runs[0].replay.can_sample(cfg.batch_length):
                counters["update_credit"] += n_env * updates_per_step
                while counters["update_credit"] >= 1.0:
                    batch = stack([run.replay.sample(cfg.batch_size, cfg.batch_length) for run in seed_runs])
                    batch.pop("is_last")
                    keys_next = split(key)
                    key, k_train = keys_next[:, 0], keys_next[:, 1]
                    state = update(state, place(batch), k_train)
                    counters["updates"] += 1
                    counters["update_credit"] -= 1.0
            obs = per_seed(envs.step_wait())
            if counters["step"] - log.last >= schedule.log_every or counters["step"] >= schedule.steps:
                bar.set_postfix(log.write(counters, update.mean(), state))
            if counters["step"] - last_ckpt >= schedule.checkpoint_every:
                save()
                last_ckpt = counters["step"]
        if counters["step"] and seed_runs[0].ckpt.latest_step() != counters["step"]:  # step 0: nothing to save
            save()
        return [run.finish(counters, interrupted=counters["step"] < schedule.steps) for run in seed_runs]


class Update:
    """The group's jitted update (`jax.vmap` of the agent's train step over the seed axis) with its metrics summed
    on the device since the last `mean()`, so that a metrics row is the interval's mean at no host round-trip."""

    def __init__(self, agent):
        self.totals, self.count = None, 0
        # The metrics' shapes come from tracing the inner jit once; the outer jit's trace then reuses that trace.
        self._train_step = jax.jit(jax.vmap(agent.train_step))
        self._step = jax.jit(self._update_and_sum)

    def _update_and_sum(self, state, batch, key, totals):
        state, metrics = self._train_step(state, batch, key)
        return state, jax.tree.map(lambda t, m: t + m.astype(jnp.float32), totals, metrics)

    def __call__(self, state, batch, key):
        if self.totals is None:
            shapes = self._train_step.trace(state, batch, key).out_info[1]
            self.totals = jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), shapes)
        state, self.totals = self._step(state, batch, key, self.totals)
        self.count += 1
        return state

    def mean(self) -> dict:
        """{metric: per-seed mean over the updates since the last call} ({} when there were none)."""
        if not self.count:
            return {}
        means = {k: v / self.count for k, v in jax.device_get(self.totals).items()}
        self.totals, self.count = jax.tree.map(jnp.zeros_like, self.totals), 0
        return means


class Logger:
    """Each seed's metrics log: one row per interval with the counters, throughput, finished episodes, the update
    metrics' interval means and, every `schedule.evaluate_every` steps, an evaluation return."""

    def __init__(self, seed_runs: list, counters: dict, schedule: Schedule, agent, group: SeedGroup):
        self.seed_runs, self.schedule, self.agent, self.group = seed_runs, schedule, agent, group
        self.logs = [MetricsLog(run.logdir, counters["step"]) for run in seed_runs]
        self.last, self.t_last = counters["step"], time.perf_counter()

    def write(self, counters: dict, metrics: dict, state) -> dict:
        """Writes every seed's row; returns what the progress bar shows."""
        now, step, every = time.perf_counter(), counters["step"], self.schedule.evaluate_every
        shown = {}
        for i, (run, log) in enumerate(zip(self.seed_runs, self.logs)):
            record = {"step": step, "updates": counters["updates"], "episodes": run.episodes,
                      "fps": (step - self.last) / (now - self.t_last), "replay_steps": len(run.replay),
                      **run.episode_stats(), **{k: float(v[i]) for k, v in metrics.items()}}
            if every and step // every != self.last // every:
                record.update(evaluation_point(self.agent, unstack(state, i), self.group.task,
                                               self.schedule.evaluate_episodes, self.group.env_options,
                                               run.spec.seed, self.schedule.evaluate_policy))
                record["eval/episodes"] = self.schedule.evaluate_episodes
            log.write(record)
            shown = shown or record
        self.last, self.t_last = step, now
        return {k: round(shown[k], 1) for k in ("episode/return", "fps") if k in shown}

    def close(self) -> None:
        for log in self.logs:
            log.close()




def evaluation_point(ag, state, task: str, episodes: int, env_options: dict, seed: int,
                     policy: str = "eval") -> dict:
    """The evaluation curve's point for run seed `seed`: `eval/return`, the mean return over `episodes` evaluation
    episodes (per training speed), and on a speed task `eval/speed@V`, the mean forward speed at each training target
    V, so that the budget at which an agent tracks its speeds reads off the curve. policy="random" (ag and state
    None) gives the random policy on exactly those episodes."""
    from hrl_core.envs import is_speed_task
    from hrl_core.evaluate import evaluate

    results = evaluate(ag, state, task, "train" if is_speed_task(task) else None, episodes,
                       env_options=env_options, seed=seed + CURVE_OFFSET, policy=policy)
    point = {"eval/return": float(np.mean([r["mean_return"] for r in results]))}
    point.update({f"eval/speed@{r['speed']:g}": r["mean_forward_speed"] for r in results if r["speed"] is not None})
    return point


def evaluation_return(ag, state, task: str, episodes: int, env_options: dict, seed: int, policy: str = "eval") -> float:
    """The evaluation curve's return alone (see evaluation_point)."""
    return evaluation_point(ag, state, task, episodes, env_options, seed, policy)["eval/return"]

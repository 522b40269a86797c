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
import json
import signal
import time
from dataclasses import asdict
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from hrl_core.agents import make_agent
from hrl_core.agents.common import policy_obs
from hrl_core.checkpoint import Checkpointer
from hrl_core.config import Config, make_config
from hrl_core.envs import BatchedEnv, make_env
from hrl_core.replay import Replay
from hrl_core.rundir import (MetricsLog, is_export, latest_step, load_agent, load_config, write_config,
                             write_summary)
from hrl_core.validation import check_non_negative, check_positive

STEP_KEYS = ("reward", "is_first", "is_last", "is_terminal")


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


def replay_spaces(obs_space: dict, act_space) -> dict:
    spaces = {k: (v.shape, v.dtype) for k, v in obs_space.items()}
    spaces.update(action=(act_space.shape, np.float32), reward=((), np.float32), is_first=((), bool),
                  is_last=((), bool), is_terminal=((), bool))
    return spaces


def random_batch(obs_space: dict, act_space, cfg: Config, seed: int = 0) -> dict:
    """A replay-shaped batch [B, T, ...] of random data (benchmarks and tests)."""
    rng = np.random.default_rng(seed)
    batch = {}
    for k, (shape, dtype) in replay_spaces(obs_space, act_space).items():
        if k == "is_last":
            continue
        full = (cfg.batch_size, cfg.batch_length, *shape)
        batch[k] = (rng.integers(0, 255, full).astype(np.uint8) if dtype == np.uint8
                    else np.zeros(full, bool) if dtype == bool else rng.uniform(-1, 1, full).astype(np.float32))
    return batch


CARRIED = ("params", "slow_critic", "retnorm", "advnorm", "adapt")  # what --init-from carries; optimisers restart


def _shapes(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


def _init_from(state, source: str | Path):
    """`state` with every learned quantity of a trained run: parameters, slow critics, return normalisers (and
    Director's advantage normalisers) and the adapted scales (Director's goal KL weight and manager entropy scales).
    Optimiser states restart. A group whose structure or shapes differ is an error naming it, never a silent skip."""
    _, src_state, _ = load_agent(source)
    state = dict(state)
    for item in CARRIED:
        if item not in state:
            continue
        if item not in src_state:
            raise ValueError(f"init_from: run {source} has no '{item}' to carry over")
        groups = state[item] if item == "params" else {"": state[item]}
        src_groups = src_state[item] if item == "params" else {"": src_state[item]}
        for name, value in groups.items():
            label = f"{item}/{name}" if name else item
            if name not in src_groups:
                raise ValueError(f"init_from: run {source} has no parameter group '{label}'")
            if _shapes(src_groups[name]) != _shapes(value):
                raise ValueError(f"init_from: parameter group '{label}' of run {source} does not match this run's "
                                 "(different structure or shapes: the agent, task spaces or model size differ)")
        state[item] = src_state[item]
    return state


def _spaces(task: str, env_options: dict):
    env = make_env(task, **env_options)  # cheap (no rendering), and it checks the task and its options
    env.close()
    return env.obs_space, env.act_space


def _describe(obs_space: dict, act_space) -> str:
    obs = ", ".join(f"{k} {v.shape}" for k, v in obs_space.items())
    return f"observations {obs}; actions {act_space.shape}"


def validate_run(task: str, logdir: str | Path, agent: str = "dreamer", preset: str = "tiny", steps: int = 1000,
                 seed: int = 0, resume: bool = False, env_options: dict | None = None, config: dict | None = None,
                 checkpoint_every: int = 1000, log_every: int = 250, eval_every: int = 0, eval_episodes: int = 1,
                 prefill: int | None = None, init_from: str | Path | None = None):
    """Checks every option of `train` without creating or spawning anything; returns (config, obs_space,
    act_space). A bad option raises ValueError naming it, a missing source run FileNotFoundError."""
    for name, value in (("steps", steps), ("checkpoint_every", checkpoint_every), ("log_every", log_every),
                        ("eval_episodes", eval_episodes)):
        check_positive(name, value)
    for name, value in (("seed", seed), ("eval_every", eval_every), ("prefill", 0 if prefill is None else prefill)):
        check_non_negative(name, value)
    env_options = dict(env_options or {})
    if "seed" in env_options:
        raise ValueError("env option 'seed' is set per environment from the run's seed; use seed (--seed) instead")
    cfg = make_config(preset, agent=agent, **(config or {}))
    obs_space, act_space = _spaces(task, env_options)
    logdir = Path(logdir)
    if logdir.exists() and not logdir.is_dir():
        raise ValueError(f"logdir {logdir} is a file, not a folder")
    if not resume and latest_step(logdir) is not None:
        raise ValueError(f"logdir {logdir} holds a run already; continue it with resume (--resume) or choose a new "
                         "logdir")
    if resume and latest_step(logdir) is not None and is_export(logdir):
        raise ValueError(f"resume: run {logdir} is an export (no optimiser state or replay); start from it with "
                         "init_from (--init-from) instead")
    if resume and (logdir / "config.json").exists():
        saved = json.loads((logdir / "config.json").read_text())
        if (saved["task"], saved["agent"], saved["config"]["preset"]) != (task, agent, preset):
            raise ValueError(f"resume: run {logdir} is {saved['agent']}/{saved['task']}/{saved['config']['preset']},"
                             f" not {agent}/{task}/{preset}")
    if init_from is not None:
        source = Path(init_from)
        if not (source / "config.json").is_file():
            raise FileNotFoundError(f"init_from: no run at {source} (missing config.json)")
        _, saved = load_config(source)
        if saved["agent"] != agent:
            raise ValueError(f"init_from: run {source} trained {saved['agent']}, this run trains {agent}")
        src_spaces = _spaces(saved["task"], saved["env_options"])
        if src_spaces != (obs_space, act_space):
            raise ValueError(f"init_from: run {source} ({saved['task']}) has {_describe(*src_spaces)}, but this run "
                             f"({task}) has {_describe(obs_space, act_space)}; the spaces must match")
        if latest_step(source) is None:
            raise FileNotFoundError(f"init_from: run {source} has no checkpoint yet")
    return cfg, obs_space, act_space




def train(task: str, logdir: str | Path, agent: str = "dreamer", preset: str = "tiny", steps: int = 1000,
          seed: int = 0, resume: bool = False, env_options: dict | None = None, config: dict | None = None,
          checkpoint_every: int = 1000, log_every: int = 250, eval_every: int = 0, eval_episodes: int = 1,
          prefill: int | None = None, init_from: str | Path | None = None, parallel: bool = True,
          env_workers: int | None = None, progress: bool = True) -> dict:
    """Trains `agent` on `task` for `steps` policy steps (summed over environments); returns the final summary.
    The one-seed case of `train_seeds`, which documents every option."""
    return train_seeds(task, [logdir], [seed], agent, preset, steps, resume, env_options, config, checkpoint_every,
                       log_every, eval_every, eval_episodes, prefill, None if init_from is None else [init_from],
                       parallel, env_workers, progress)[0]


def seed_logdirs(logdir: str | Path, seeds) -> list[Path]:
    """One run folder per seed from a pattern with `{seed}` (e.g. runs/walker-dreamer-s{seed})."""
    if len(seeds) > 1 and "{seed}" not in str(logdir):
        raise ValueError(f"logdir={str(logdir)!r} is not valid for several seeds; it must contain {{seed}}, which "
                         "each seed's run folder fills in (e.g. runs/walker_speed-dreamer-s{seed})")
    return [Path(str(logdir).replace("{seed}", str(seed))) for seed in seeds]


def seed_sharding(num_seeds: int):
    """A sharding of the leading seed axis over the most local devices that divide it; None on one device."""
    devices = jax.local_devices()
    count = max(d for d in range(1, len(devices) + 1) if num_seeds % d == 0)
    if count == 1:
        return None
    mesh = jax.sharding.Mesh(np.array(devices[:count]), ("seed",))
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("seed"))


def stack(trees: list):
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def unstack(tree, index: int):
    return jax.tree.map(lambda x: x[index], tree)


class _SeedRun:
    """One seed's side of a training group: its run folder, replay, checkpointer, metrics log and episodes."""

    def __init__(self, logdir: Path, seed: int, cfg: Config, spaces: dict, run_info: dict, cleanup):
        self.logdir, self.seed = logdir, seed
        logdir.mkdir(parents=True, exist_ok=True)
        write_config(logdir, run_info)
        self.replay = Replay(cfg.replay_capacity, cfg.num_envs, spaces, seed)
        self.ckpt = Checkpointer(logdir / "ckpt")
        cleanup.callback(self.ckpt.close)
        self.episodes, self.finished = 0, []
        self.ep_return = np.zeros(cfg.num_envs)
        self.ep_length = np.zeros(cfg.num_envs, np.int64)

    def restore(self, state, step: int):
        """(state, counters, key) at checkpoint `step`, with the replay as it was then."""
        meta = self.ckpt.restore_meta(step)
        if meta["replay"].get("format") == "chunks":
            state, _, meta = self.ckpt.restore(state, step=step)
            self.replay.restore(self.logdir / "replay", meta["replay"])
        else:  # written before replay chunks: the whole replay is inside the orbax checkpoint
            state, replay_state, meta = self.ckpt.restore(state, self.replay.template(meta["replay"]["filled"]),
                                                          step=step)
            self.replay.load_state_dict(replay_state, meta["replay"])
        self.episodes = meta["counters"]["episodes"]
        return state, meta["counters"], np.array(meta["key"], np.uint32)

    def save(self, step: int, state, counters: dict, key) -> None:
        replay_meta = self.replay.save(self.logdir / "replay")  # the new steps only; before the checkpoint names it
        meta = {"counters": {**counters, "episodes": self.episodes}, "key": np.asarray(key).tolist(),
                "replay": replay_meta}
        self.ckpt.save(step, state, None, meta)

    def record_step(self, obs: dict) -> None:
        self.ep_return = np.where(obs["is_first"], 0.0, self.ep_return + obs["reward"])
        self.ep_length = np.where(obs["is_first"], 0, self.ep_length + 1)
        for i in np.flatnonzero(obs["is_last"]):
            self.finished.append((float(self.ep_return[i]), int(self.ep_length[i])))
            self.episodes += 1

    def episode_stats(self) -> dict:
        if not self.finished:
            return {}
        stats = {"episode/return": float(np.mean([r for r, _ in self.finished])),
                 "episode/length": float(np.mean([n for _, n in self.finished]))}
        self.finished = []
        return stats


def _common_step(runs: list[_SeedRun]) -> int:
    """The latest checkpoint step every seed has: a group killed while saving resumes where all of it saved."""
    common = set.intersection(*(set(run.ckpt.manager.all_steps()) for run in runs))
    if not common:
        steps = {str(run.logdir): run.ckpt.latest_step() for run in runs}
        raise ValueError(f"resume: the runs of this group have no checkpoint step in common ({steps}); resume them "
                         "one at a time, or in groups whose runs stopped at the same step")
    return max(common)


def train_seeds(task: str, logdirs, seeds, agent: str = "dreamer", preset: str = "tiny", steps: int = 1000,
                resume: bool = False, env_options: dict | None = None, config: dict | None = None,
                checkpoint_every: int = 1000, log_every: int = 250, eval_every: int = 0, eval_episodes: int = 1,
                prefill: int | None = None, init_from=None, parallel: bool = True, env_workers: int | None = None,
                progress: bool = True) -> list[dict]:
    """Trains one run of `agent` on `task` per seed, all in this process, for `steps` policy steps each (summed over
    a run's environments); returns each run's final summary. `logdirs[i]` is seed `seeds[i]`'s run folder and
    `init_from[i]` (optional) the trained run it starts from. `env_workers` is the number of environment worker
    processes for the whole group (default: the core count, at most one per environment).

    Every option is checked first (`validate_run`), so a bad one raises before a run folder or any worker exists.
    SIGINT/SIGTERM before the run folders exist raise KeyboardInterrupt; after, the loop stops after the current
    step, saves every seed's checkpoint at it and returns normally with summary["interrupted"] True (further
    signals until then are ignored, so the saves complete). On any error the workers, checkpointers and metrics
    files are closed before the error propagates.
    """
    from tqdm.auto import tqdm

    logdirs, seeds = [Path(d) for d in logdirs], [int(s) for s in seeds]
    if not seeds or len(logdirs) != len(seeds):
        raise ValueError(f"logdirs and seeds are not valid; give one run folder per seed (got {len(logdirs)} folders"
                         f" for seeds {seeds})")
    if len(set(seeds)) != len(seeds) or len({d.resolve() for d in logdirs}) != len(logdirs):
        raise ValueError(f"seeds={seeds} is not valid; each seed, and each run folder, may appear once in a group")
    init_from = [None] * len(seeds) if init_from is None else list(init_from)
    if len(init_from) != len(seeds):
        raise ValueError(f"init_from is not valid; give one source run per seed ({len(seeds)}), got {len(init_from)}")
    if env_workers is not None:
        check_positive("env_workers", env_workers)
    env_options = dict(env_options or {})
    with Interrupted(abort=True) as stop:  # until the run folders exist there is nothing to save: stop at once
        for logdir, seed, source in zip(logdirs, seeds, init_from):
            cfg, obs_space, act_space = validate_run(task, logdir, agent, preset, steps, seed, resume, env_options,
                                                     config, checkpoint_every, log_every, eval_every,
                                                     eval_episodes, prefill, source)
        resuming = resume and latest_step(logdirs[0]) is not None
        if resume and any((latest_step(d) is not None) != resuming for d in logdirs):
            raise ValueError("resume: some runs of this group have a checkpoint and others none; resume the ones "
                             "with a checkpoint as their own group")
        ag = make_agent(cfg, obs_space, act_space)
        keys, states = [], []
        for seed, source in zip(seeds, init_from):
            key, init_key = jax.random.split(jax.random.PRNGKey(seed))
            state = ag.init(init_key)
            if source is not None and not resuming:
                state = _init_from(state, source)  # before anything is created: a mismatch leaves no run folder
            keys.append(key)
            states.append(state)
        if stop.flag:
            raise KeyboardInterrupt
    num = len(seeds)
    sharding = seed_sharding(num)
    place = (lambda tree: jax.device_put(tree, sharding)) if sharding is not None else (lambda tree: tree)
    policy = jax.jit(jax.vmap(ag.policy))  # mode "train" (the default)
    def update_and_sum(state, batch, key, totals):
        """One update of every seed, its metrics added to the running totals (logged as interval means)."""
        state, metrics = jax.vmap(ag.train_step)(state, batch, key)
        return state, jax.tree.map(lambda t, m: t + m.astype(jnp.float32), totals, metrics)

    train_step = jax.jit(update_and_sum)
    split = jax.jit(jax.vmap(jax.random.split))
    prefill = cfg.batch_size * cfg.batch_length if prefill is None else prefill
    updates_per_step = cfg.train_ratio / (cfg.batch_size * cfg.batch_length)
    counters = {"step": 0, "updates": 0, "update_credit": 0.0}
    n_env = cfg.num_envs

    with contextlib.ExitStack() as cleanup:  # closes workers, checkpointers, metrics files and bar on any exit
        stop = cleanup.enter_context(Interrupted())  # entered first, left last: cleanup cannot be interrupted
        spaces = replay_spaces(obs_space, act_space)
        runs = [_SeedRun(logdir, seed, cfg, spaces, {"task": task, "agent": agent, "seed": seed,
                                                      "env_options": env_options, "config": asdict(cfg)}, cleanup)
                for logdir, seed in zip(logdirs, seeds)]
        envs = cleanup.enter_context(BatchedEnv(task, num * n_env, parallel=parallel, workers=env_workers,
                                                env_seeds=[s + i for s in seeds for i in range(n_env)],
                                                **env_options))
        if resuming:
            at = _common_step(runs)
            restored = [run.restore(state, at) for run, state in zip(runs, states)]
            states, keys = [r[0] for r in restored], [r[2] for r in restored]
            shared = {k: restored[0][1][k] for k in counters}
            if any({k: r[1][k] for k in counters} != shared for r in restored):
                raise ValueError("resume: the runs of this group were not trained in step with each other (their "
                                 "counters differ at the common checkpoint); resume them one at a time")
            counters = shared
        logs = [MetricsLog(run.logdir, counters["step"]) for run in runs]
        for log in logs:
            cleanup.callback(log.close)
        state, key = place(stack(states)), place(jnp.asarray(np.stack(keys)))
        del states

        def save():
            host_key = np.asarray(key)
            for i, run in enumerate(runs):
                run.save(counters["step"], unstack(state, i), counters, host_key[i])

        def per_seed(obs: dict) -> dict:
            return {k: v.reshape(num, n_env, *v.shape[1:]) for k, v in obs.items()}

        obs = per_seed(envs.reset())
        carry = place(stack([ag.initial_carry(n_env)] * num))
        totals, updates_logged = None, counters["updates"]  # metric sums since the last log row
        last_log, last_ckpt, t_log = counters["step"], counters["step"], time.perf_counter()
        label = f"{agent} {task}" + (f" x{num} seeds" if num > 1 else "")
        bar = cleanup.enter_context(tqdm(total=steps, initial=min(counters["step"], steps), desc=label,
                                         disable=not progress, unit="step"))
        while counters["step"] < steps and not stop.flag:
            keys_next = split(key)
            key, k_act = keys_next[:, 0], keys_next[:, 1]
            prev_action = np.where(obs["is_first"][..., None], 0.0, np.asarray(carry["prev_action"]))
            action, carry, _ = policy(state, carry, place(policy_obs(obs)), k_act)
            envs.step_async(np.asarray(action).reshape(num * n_env, -1))  # the workers step while the device trains
            for i, run in enumerate(runs):
                run.replay.add({**{k: v[i] for k, v in obs.items()}, "action": prev_action[i].astype(np.float32)})
                run.record_step({k: obs[k][i] for k in ("reward", "is_first", "is_last")})
            counters["step"] += n_env
            bar.update(n_env)

            if len(runs[0].replay) >= prefill and runs[0].replay.can_sample(cfg.batch_length):
                counters["update_credit"] += n_env * updates_per_step
                while counters["update_credit"] >= 1.0:
                    batch = stack([run.replay.sample(cfg.batch_size, cfg.batch_length) for run in runs])
                    batch.pop("is_last")
                    keys_next = split(key)
                    key, k_train = keys_next[:, 0], keys_next[:, 1]
                    batch = place(batch)
                    if totals is None:
                        shapes = jax.eval_shape(jax.vmap(ag.train_step), state, batch, k_train)[1]
                        totals = jax.tree.map(lambda x: jnp.zeros(x.shape, jnp.float32), shapes)
                    state, totals = train_step(state, batch, k_train, totals)
                    counters["updates"] += 1
                    counters["update_credit"] -= 1.0
            obs = per_seed(envs.step_wait())

            if counters["step"] - last_log >= log_every or counters["step"] >= steps:
                now = time.perf_counter()
                interval = counters["updates"] - updates_logged
                metrics = {k: v / interval for k, v in jax.device_get(totals).items()} if interval else {}
                if interval:
                    totals = jax.tree.map(jnp.zeros_like, totals)
                updates_logged = counters["updates"]
                shown = {}
                for i, (run, log) in enumerate(zip(runs, logs)):
                    record = {"step": counters["step"], "updates": counters["updates"], "episodes": run.episodes,
                              "fps": (counters["step"] - last_log) / (now - t_log), "replay_steps": len(run.replay),
                              **run.episode_stats(), **{k: float(v[i]) for k, v in metrics.items()}}
                    if eval_every and counters["step"] // eval_every != last_log // eval_every:
                        record["eval/return"] = _eval_return(ag, unstack(state, i), task, eval_episodes,
                                                             env_options, run.seed)
                    log.write(record)
                    shown = shown or record
                bar.set_postfix({k: round(shown[k], 1) for k in ("episode/return", "fps") if k in shown})
                last_log, t_log = counters["step"], now
            if counters["step"] - last_ckpt >= checkpoint_every:
                save()
                last_ckpt = counters["step"]
        if counters["step"] and runs[0].ckpt.latest_step() != counters["step"]:  # step 0: nothing to save
            save()
        summaries = []
        for run in runs:
            summary = {"logdir": str(run.logdir), "step": counters["step"], "updates": counters["updates"],
                       "episodes": run.episodes, "replay_steps": len(run.replay),
                       "replay_bytes_per_step": run.replay.bytes_per_step, "interrupted": counters["step"] < steps}
            write_summary(run.logdir, summary)
            summaries.append(summary)
    return summaries


def _eval_return(ag, state, task: str, episodes: int, env_options: dict, seed: int) -> float:
    from hrl_core.envs import SPEED_TASKS
    from hrl_core.evaluate import evaluate

    results = evaluate(ag, state, task, "train" if task in SPEED_TASKS else None, episodes,
                       env_options=env_options, seed=seed + 10_000)
    return float(np.mean([r["mean_return"] for r in results]))

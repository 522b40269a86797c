"""The training loop: batched environments, replay, one jitted update per train step, logs and checkpoints.

A run lives in `logdir`: config.json, metrics.jsonl (one JSON object per log line) and ckpt/ (orbax). A checkpoint
is written every `checkpoint_every` policy steps, at the end, and on SIGINT/SIGTERM; `resume=True` continues from
the last one with the same parameters, optimiser state, replay contents, counters and random state, losing only the
steps since it. Environments restart their episodes on resume (their first step is marked is_first).
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


def load_config(logdir: str | Path) -> tuple[Config, dict]:
    path = Path(logdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"no run at {logdir} (missing {path}); train one first with `hrl train`")
    saved = json.loads(path.read_text())
    cfg = saved["config"]
    cfg = make_config(cfg.pop("preset"), **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    return cfg, saved


def load_agent(logdir: str | Path, step: int | None = None):
    """(agent, state, run info) from a run's checkpoint, for evaluation and analysis."""
    cfg, saved = load_config(logdir)
    from hrl_core.envs import make_env

    env = make_env(saved["task"], **saved["env_options"])
    env.close()  # only its spaces are needed
    agent = make_agent(cfg, env.obs_space, env.act_space)
    ckpt = Checkpointer(Path(logdir) / "ckpt")
    try:
        if ckpt.latest_step() is None:
            raise FileNotFoundError(f"run {logdir} has no checkpoint yet")
        fresh = agent.init(jax.random.PRNGKey(0))
        if ckpt.restore_meta(step).get("learned_only"):  # an exported run: optimiser states start fresh
            template = {k: v for k, v in fresh.items() if k != "opt"}
            state, _, meta = ckpt.restore(template, step=step)
            state = {**state, "opt": fresh["opt"]}
        else:
            state, _, meta = ckpt.restore(fresh, step=step)
    finally:
        ckpt.close()
    return agent, state, {**saved, "meta": meta}


RUN_FILES = ("config.json", "metrics.jsonl", "summary.json")


def export_run(logdir: str | Path, out: str | Path) -> Path:
    """A small, CPU-loadable copy of a finished run: its config, metrics, summary and evaluations, and a checkpoint
    of what it learned (parameters, slow critics, normalisers, adapted scales) without optimiser state or replay.
    `load_agent`, evaluation, the notebooks and `--init-from` read it like the run itself."""
    import shutil

    logdir, out = Path(logdir), Path(out)
    agent, state, info = load_agent(logdir)
    if out.exists():
        raise ValueError(f"out={str(out)!r} is not valid; it exists already (export into a new folder)")
    out.mkdir(parents=True)
    for path in [logdir / name for name in RUN_FILES] + sorted(logdir.glob("eval_*.json")):
        if path.exists():
            shutil.copy2(path, out / path.name)
    meta = {**info["meta"], "learned_only": True}
    meta.pop("replay", None)
    ckpt = Checkpointer(out / "ckpt", keep=1)
    ckpt.save(info["meta"]["counters"]["step"], {k: v for k, v in state.items() if k != "opt"}, None, meta)
    ckpt.close()
    return out


CARRIED = ("params", "slow_critic", "retnorm", "adapt")  # what --init-from carries; optimiser states restart


def _shapes(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


def _init_from(state, source: str | Path):
    """`state` with every learned quantity of a trained run: parameters, slow critics, return normalisers and the
    adapted scales (Director's goal KL weight and manager entropy scale). Optimiser states restart. A group whose
    structure or shapes differ is an error naming it, never a silent skip."""
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


def _latest_step(directory: Path) -> int | None:
    """The last checkpoint's step in `directory` (None without one), creating nothing."""
    if not directory.is_dir():
        return None
    ckpt = Checkpointer(directory)
    try:
        return ckpt.latest_step()
    finally:
        ckpt.close()


def _is_export(logdir: Path) -> bool:
    ckpt = Checkpointer(logdir / "ckpt")
    try:
        return bool(ckpt.restore_meta().get("learned_only"))
    finally:
        ckpt.close()


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
    if not resume and _latest_step(logdir / "ckpt") is not None:
        raise ValueError(f"logdir {logdir} holds a run already; continue it with resume (--resume) or choose a new "
                         "logdir")
    if resume and _latest_step(logdir / "ckpt") is not None and _is_export(logdir):
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
        if _latest_step(source / "ckpt") is None:
            raise FileNotFoundError(f"init_from: run {source} has no checkpoint yet")
    return cfg, obs_space, act_space


def train(task: str, logdir: str | Path, agent: str = "dreamer", preset: str = "tiny", steps: int = 1000,
          seed: int = 0, resume: bool = False, env_options: dict | None = None, config: dict | None = None,
          checkpoint_every: int = 1000, log_every: int = 250, eval_every: int = 0, eval_episodes: int = 1,
          prefill: int | None = None, init_from: str | Path | None = None, parallel: bool = True,
          progress: bool = True) -> dict:
    """Trains `agent` on `task` for `steps` policy steps (summed over environments); returns the final summary.

    Every option is checked first (`validate_run`), so a bad one raises before the run folder or any worker exists.
    SIGINT/SIGTERM before the run folder exists raise KeyboardInterrupt; after, the loop stops after the current
    step, saves a checkpoint at it and returns normally with summary["interrupted"] True (further signals until
    then are ignored, so the save completes). On any error the workers, checkpointer and metrics file are closed
    before the error propagates.
    """
    from tqdm.auto import tqdm

    logdir = Path(logdir)
    env_options = dict(env_options or {})
    with Interrupted(abort=True) as stop:  # until the run folder exists there is nothing to save: stop at once
        cfg, obs_space, act_space = validate_run(task, logdir, agent, preset, steps, seed, resume, env_options,
                                                 config, checkpoint_every, log_every, eval_every, eval_episodes,
                                                 prefill, init_from)
        ag = make_agent(cfg, obs_space, act_space)
        key = jax.random.PRNGKey(seed)
        key, init_key = jax.random.split(key)
        state = ag.init(init_key)
        resuming = resume and _latest_step(logdir / "ckpt") is not None
        if not resuming and init_from is not None:  # before anything is created: a mismatch leaves no run folder
            state = _init_from(state, init_from)
        if stop.flag:
            raise KeyboardInterrupt
    policy = jax.jit(ag.policy, static_argnames="mode")
    train_step = jax.jit(ag.train_step)
    prefill = cfg.batch_size * cfg.batch_length if prefill is None else prefill
    updates_per_step = cfg.train_ratio / (cfg.batch_size * cfg.batch_length)
    counters = {"step": 0, "updates": 0, "episodes": 0, "update_credit": 0.0}

    with contextlib.ExitStack() as cleanup:  # closes workers, checkpointer, metrics file and bar on any exit
        stop = cleanup.enter_context(Interrupted())  # entered first, left last: cleanup cannot be interrupted
        logdir.mkdir(parents=True, exist_ok=True)
        run_info = {"task": task, "agent": agent, "seed": seed, "env_options": env_options, "config": asdict(cfg)}
        (logdir / "config.json").write_text(json.dumps(run_info, indent=1))
        envs = cleanup.enter_context(BatchedEnv(task, cfg.num_envs, seed=seed, parallel=parallel, **env_options))
        replay = Replay(cfg.replay_capacity, cfg.num_envs, replay_spaces(obs_space, act_space), seed)
        ckpt = Checkpointer(logdir / "ckpt")
        cleanup.callback(ckpt.close)
        if resuming:
            meta = ckpt.restore_meta()
            state, replay_state, meta = ckpt.restore(state, replay.template(meta["replay"]["filled"]))
            replay.load_state_dict(replay_state, meta["replay"])
            counters = meta["counters"]
            key = jnp.asarray(np.array(meta["key"], np.uint32))
        _drop_rows_after(logdir / "metrics.jsonl", counters["step"])
        metrics_file = cleanup.enter_context(open(logdir / "metrics.jsonl", "a"))

        def save():
            meta = {"counters": counters, "key": np.asarray(key).tolist(), "replay": replay.meta()}
            ckpt.save(counters["step"], state, replay.state_dict(), meta)

        def log(record):
            record = {k: float(v) if hasattr(v, "dtype") else v for k, v in record.items()}
            metrics_file.write(json.dumps(record) + "\n")
            metrics_file.flush()

        obs = envs.reset()
        carry = ag.initial_carry(cfg.num_envs)
        ep_return = np.zeros(cfg.num_envs)
        ep_length = np.zeros(cfg.num_envs, np.int64)
        finished, last_metrics = [], {}
        last_log, last_ckpt, t_log = counters["step"], counters["step"], time.perf_counter()
        bar = cleanup.enter_context(tqdm(total=steps, initial=min(counters["step"], steps), desc=f"{agent} {task}",
                                         disable=not progress, unit="step"))
        while counters["step"] < steps and not stop.flag:
            key, k_act = jax.random.split(key)
            prev_action = np.where(obs["is_first"][:, None], 0.0, np.asarray(carry["prev_action"]))
            action, carry, _ = policy(state, carry, policy_obs(obs), k_act)
            action = np.asarray(action)
            replay.add({**obs, "action": prev_action.astype(np.float32)})
            ep_return = np.where(obs["is_first"], 0.0, ep_return + obs["reward"])
            ep_length = np.where(obs["is_first"], 0, ep_length + 1)
            for i in np.flatnonzero(obs["is_last"]):
                finished.append((float(ep_return[i]), int(ep_length[i])))
                counters["episodes"] += 1
            obs = envs.step(action)
            counters["step"] += cfg.num_envs
            bar.update(cfg.num_envs)

            if len(replay) >= prefill and replay.can_sample(cfg.batch_length):
                counters["update_credit"] += cfg.num_envs * updates_per_step
                while counters["update_credit"] >= 1.0:
                    batch = replay.sample(cfg.batch_size, cfg.batch_length)
                    batch.pop("is_last")
                    key, k_train = jax.random.split(key)
                    state, last_metrics = train_step(state, batch, k_train)
                    counters["updates"] += 1
                    counters["update_credit"] -= 1.0

            if counters["step"] - last_log >= log_every or counters["step"] >= steps:
                now = time.perf_counter()
                record = {"step": counters["step"], "updates": counters["updates"],
                          "episodes": counters["episodes"], "fps": (counters["step"] - last_log) / (now - t_log),
                          "replay_steps": len(replay)}
                if finished:
                    record["episode/return"] = float(np.mean([r for r, _ in finished]))
                    record["episode/length"] = float(np.mean([n for _, n in finished]))
                    finished = []
                record.update({k: float(v) for k, v in jax.device_get(last_metrics).items()})
                if eval_every and counters["step"] // eval_every != last_log // eval_every:
                    from hrl_core.envs import SPEED_TASKS
                    from hrl_core.evaluate import evaluate

                    results = evaluate(ag, state, task, "train" if task in SPEED_TASKS else None, eval_episodes,
                                       env_options=env_options, seed=seed + 10_000)
                    record["eval/return"] = float(np.mean([r["mean_return"] for r in results]))
                log(record)
                bar.set_postfix({k: round(record[k], 1) for k in ("episode/return", "fps") if k in record})
                last_log, t_log = counters["step"], now
            if counters["step"] - last_ckpt >= checkpoint_every:
                save()
                last_ckpt = counters["step"]
        if counters["step"] and ckpt.latest_step() != counters["step"]:  # step 0: nothing to save
            save()
        summary = {"logdir": str(logdir), "step": counters["step"], "updates": counters["updates"],
                   "episodes": counters["episodes"], "replay_steps": len(replay),
                   "replay_bytes_per_step": replay.bytes_per_step, "interrupted": counters["step"] < steps}
        (logdir / "summary.json").write_text(json.dumps(summary, indent=1))
    return summary


def _drop_rows_after(path: Path, step: int) -> None:
    """Keeps the log rows up to `step`, where the run (re)starts: a run that died after logging past its last
    checkpoint trains, and logs, those steps again. A torn last line goes too."""
    if not path.exists():
        return
    lines = path.read_text().splitlines()
    kept = []
    for line in lines:
        try:
            if json.loads(line)["step"] <= step:
                kept.append(line)
        except (ValueError, KeyError):
            pass
    if len(kept) < len(lines):
        temporary = path.with_suffix(".jsonl.tmp")
        temporary.write_text("".join(line + "\n" for line in kept))
        temporary.replace(path)  # atomic: a kill now leaves the old rows or the new ones, never a part


def read_metrics(logdir: str | Path) -> list[dict]:
    path = Path(logdir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no metrics at {path}; train the run first")
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

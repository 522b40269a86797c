"""A group of runs that train together in one process (hrl_core/train.py): one agent, task, config and task
options, one run folder and seed each. `SeedGroup` checks the group before anything exists, sets up each seed's
initial state (from scratch or from a trained run), opens the run folders and resumes them from a checkpoint they
all share; `SeedRun` is one seed's side: its folder, replay, checkpointer and finished episodes."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping

import jax
import numpy as np

from hrl_core.batches import replay_spaces
from hrl_core.checkpoint import Checkpointer
from hrl_core.replay import Replay
from hrl_core.envs import spaces
from hrl_core.learned import is_export, load_agent
from hrl_core.rundir import RunSpec, has_spec, latest_step, read_spec, write_spec, write_summary

CARRIED = ("params", "slow_critic", "retnorm", "advnorm", "adapt")  # what init_from carries; optimisers restart
SHARED = ("task", "config", "env_options")  # what every run of a group has in common


def _shapes(tree):
    return jax.tree.structure(tree), [(x.shape, x.dtype) for x in jax.tree.leaves(tree)]


def _describe(obs_space: dict, act_space) -> str:
    obs = ", ".join(f"{k} {v.shape}" for k, v in obs_space.items())
    return f"observations {obs}; actions {act_space.shape}"


def init_from(state, source: str | Path):
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


def check_folder(logdir: Path, spec: RunSpec, resume: bool) -> None:
    """The run folder can take this run: a new folder, or with `resume` one that holds this run."""
    if logdir.exists() and not logdir.is_dir():
        raise ValueError(f"logdir {logdir} is a file, not a folder")
    step = latest_step(logdir)
    if not resume and step is not None:
        raise ValueError(f"logdir {logdir} holds a run already; continue it with resume (--resume) or choose a new "
                         "logdir")
    if resume and step is not None and is_export(logdir):
        raise ValueError(f"resume: run {logdir} is an export (no optimiser state or replay); start from it with "
                         "init_from (--init-from) instead")
    if resume and has_spec(logdir):
        saved = read_spec(logdir)
        if (saved.task, saved.agent, saved.preset) != (spec.task, spec.agent, spec.preset):
            raise ValueError(f"resume: run {logdir} is {saved.agent}/{saved.task}/{saved.preset}, not "
                             f"{spec.agent}/{spec.task}/{spec.preset}")


def check_source(spec: RunSpec, obs_space: dict, act_space) -> None:
    """The run `spec.init_from` names can start this one: same agent, same spaces, a checkpoint."""
    source = Path(spec.init_from)
    if not has_spec(source):
        raise FileNotFoundError(f"init_from: no run at {source} (missing its spec)")
    saved = read_spec(source)
    if saved.agent != spec.agent:
        raise ValueError(f"init_from: run {source} trained {saved.agent}, this run trains {spec.agent}")
    src_spaces = spaces(saved.task, saved.env_options)
    if src_spaces != (obs_space, act_space):
        raise ValueError(f"init_from: run {source} ({saved.task}) has {_describe(*src_spaces)}, but this run "
                         f"({spec.task}) has {_describe(obs_space, act_space)}; the spaces must match")
    if latest_step(source) is None:
        raise FileNotFoundError(f"init_from: run {source} has no checkpoint yet")


class SeedRun:
    """One seed's side of a training group: its run folder, replay, checkpointer and finished episodes."""

    def __init__(self, logdir: Path, spec: RunSpec, replay_space: dict, cleanup):
        self.logdir, self.spec = logdir, spec
        cfg = spec.config
        logdir.mkdir(parents=True, exist_ok=True)
        write_spec(logdir, spec)
        self.replay = Replay(cfg.replay_capacity, cfg.num_envs, replay_space, spec.seed)
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

    def finish(self, counters: dict, interrupted: bool) -> dict:
        """Writes and returns the run's summary of this training call."""
        summary = {"logdir": str(self.logdir), "step": counters["step"], "updates": counters["updates"],
                   "episodes": self.episodes, "replay_steps": len(self.replay),
                   "replay_bytes_per_step": self.replay.bytes_per_step, "interrupted": interrupted}
        write_summary(self.logdir, summary)
        return summary

    def episode_stats(self) -> dict:
        if not self.finished:
            return {}
        stats = {"episode/return": float(np.mean([r for r, _ in self.finished])),
                 "episode/length": float(np.mean([n for _, n in self.finished]))}
        self.finished = []
        return stats


class SeedGroup:
    """The runs {run folder: spec} that train together. Building it checks every spec and folder and creates
    nothing: a bad option raises ValueError naming it, a missing source run FileNotFoundError."""

    def __init__(self, runs: Mapping, resume: bool = False):
        runs = {Path(logdir): spec for logdir, spec in dict(runs).items()}
        if not runs:
            raise ValueError("runs is not valid; give at least one {run folder: RunSpec}")
        self.logdirs, self.specs = list(runs), list(runs.values())
        first = self.specs[0]
        for spec in self.specs:
            if not isinstance(spec, RunSpec):
                raise ValueError(f"runs is not valid; every value must be a RunSpec, got {type(spec).__name__}")
            differ = [name for name in SHARED if getattr(spec, name) != getattr(first, name)]
            if differ:
                raise ValueError(f"runs is not valid; the runs of a group share their {', '.join(SHARED)} (seed "
                                 f"{spec.seed} differs from seed {first.seed} in {', '.join(differ)})")
        seeds = [spec.seed for spec in self.specs]
        if len(set(seeds)) != len(seeds) or len({d.resolve() for d in self.logdirs}) != len(self.logdirs):
            raise ValueError(f"seeds={seeds} is not valid; each seed, and each run folder, may appear once in a group")
        self.task, self.cfg, self.env_options = first.task, first.config, dict(first.env_options)
        self.obs_space, self.act_space = spaces(self.task, self.env_options)
        for logdir, spec in runs.items():
            check_folder(logdir, spec, resume)
            if spec.init_from is not None:
                check_source(spec, self.obs_space, self.act_space)
        self.resuming = resume and latest_step(self.logdirs[0]) is not None
        if resume and any((latest_step(d) is not None) != self.resuming for d in self.logdirs):
            raise ValueError("resume: some runs of this group have a checkpoint and others none; resume the ones "
                             "with a checkpoint as their own group")

    @property
    def seeds(self) -> list[int]:
        return [spec.seed for spec in self.specs]

    def initial(self, agent) -> tuple[list, list]:
        """Each seed's (state, random key) before training: from its seed, and from its `init_from` run unless the
        group resumes (then its checkpoint holds what that gave)."""
        states, keys = [], []
        init = jax.jit(agent.init)  # one compile (persistently cached), not dozens of op-by-op ones each process
        for spec in self.specs:
            key, init_key = jax.random.split(jax.random.PRNGKey(spec.seed))
            state = init(init_key)
            if spec.init_from is not None and not self.resuming:
                state = init_from(state, spec.init_from)  # before anything is created: a mismatch leaves no folder
            states.append(state)
            keys.append(key)
        return states, keys

    def open(self, cleanup) -> list[SeedRun]:
        """Creates (or reopens) every run folder; `cleanup` (an ExitStack) closes what they open."""
        replay_space = replay_spaces(self.obs_space, self.act_space)
        return [SeedRun(logdir, spec, replay_space, cleanup) for logdir, spec in zip(self.logdirs, self.specs)]

    def restore(self, runs: list[SeedRun], states: list) -> tuple[list, list, dict]:
        """(states, keys, counters) at the latest checkpoint step every seed has (a group killed while saving
        resumes where all of it saved); the seeds' counters there must agree."""
        common = set.intersection(*(set(run.ckpt.manager.all_steps()) for run in runs))
        if not common:
            steps = {str(run.logdir): run.ckpt.latest_step() for run in runs}
            raise ValueError(f"resume: the runs of this group have no checkpoint step in common ({steps}); resume "
                             "them one at a time, or in groups whose runs stopped at the same step")
        restored = [run.restore(state, max(common)) for run, state in zip(runs, states)]
        counters = [{k: r[1][k] for k in ("step", "updates", "update_credit")} for r in restored]
        if any(c != counters[0] for c in counters):
            raise ValueError("resume: the runs of this group were not trained in step with each other (their "
                             "counters differ at the common checkpoint); resume them one at a time")
        return [r[0] for r in restored], [r[2] for r in restored], counters[0]

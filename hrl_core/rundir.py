"""A training run on disk: the one module that knows its folder and reads or writes it.

    LOGDIR/config.json     task, agent, seed, environment options and the full config
    LOGDIR/metrics.jsonl   one JSON object per log line
    LOGDIR/summary.json    the final counters (written when the run stops)
    LOGDIR/eval_*.json     evaluations (`hrl eval`)
    LOGDIR/ckpt/           orbax checkpoints: the agent's state and a JSON meta (counters, random key, replay meta)
    LOGDIR/replay/         the replay, saved incrementally in chunks (see hrl_core.replay)

A study keeps its runs side by side as RUNS/TASK-AGENT-sSEED. An export (`export_run`) has the same layout without
optimiser state or replay; everything that loads a run reads an export too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import jax

from hrl_core.checkpoint import Checkpointer
from hrl_core.config import LEGACY_DIRECTOR, Config, make_config

RUN_FILES = ("config.json", "metrics.jsonl", "summary.json")


class MissingRun(FileNotFoundError):
    """A notebook needs a run that an earlier notebook writes."""


def run_path(runs: str | Path, task: str, agent: str, seed: int) -> Path:
    return Path(runs) / f"{task}-{agent}-s{seed}"


def require_run(runs: str | Path, task: str, agent: str, seed: int, notebook: str = "01_train") -> Path:
    """The run's folder, or a MissingRun error naming the notebook that trains it."""
    path = run_path(runs, task, agent, seed)
    if not (path / "config.json").exists() or not any((path / "ckpt").glob("*")):
        number = notebook.split("_")[0]
        raise MissingRun(f"no trained {agent} run on {task} with seed {seed} at {path}: run notebooks/{notebook}.ipynb "
                         f"first with that task, agent and seed (`hrl notebooks --only {number}` with the same --out)")
    return path


def write_config(logdir: Path, info: dict) -> None:
    (Path(logdir) / "config.json").write_text(json.dumps(info, indent=1))


def read_info(logdir: str | Path) -> dict:
    path = Path(logdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"no run at {logdir} (missing {path}); train one first with `hrl train`")
    return json.loads(path.read_text())


def load_config(logdir: str | Path) -> tuple[Config, dict]:
    saved = read_info(logdir)
    cfg = dict(saved["config"])
    if "director_norm" not in cfg:  # written before Director's own update: it trained with the earlier one
        cfg.update(LEGACY_DIRECTOR)
    cfg = make_config(cfg.pop("preset"), **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
    return cfg, saved


def latest_step(logdir: str | Path) -> int | None:
    """The last checkpoint's step of the run (None without one), creating nothing."""
    directory = Path(logdir) / "ckpt"
    if not directory.is_dir():
        return None
    ckpt = Checkpointer(directory)
    try:
        return ckpt.latest_step()
    finally:
        ckpt.close()


def is_export(logdir: str | Path) -> bool:
    ckpt = Checkpointer(Path(logdir) / "ckpt")
    try:
        return bool(ckpt.restore_meta().get("learned_only"))
    finally:
        ckpt.close()


def load_agent(logdir: str | Path, step: int | None = None):
    """(agent, state, run info) from a run's checkpoint, for evaluation and analysis."""
    from hrl_core.agents import make_agent
    from hrl_core.envs import make_env

    cfg, saved = load_config(logdir)
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


def export_run(logdir: str | Path, out: str | Path) -> Path:
    """A small, CPU-loadable copy of a finished run: its config, metrics, summary and evaluations, and a checkpoint
    of what it learned (parameters, slow critics, normalisers, adapted scales) without optimiser state or replay.
    `load_agent`, evaluation, the notebooks and `--init-from` read it like the run itself."""
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


class MetricsLog:
    """metrics.jsonl, appended one flushed line per record. Opening it drops the rows after `step`, where the run
    (re)starts: a run that died after logging past its last checkpoint trains, and logs, those steps again."""

    def __init__(self, logdir: str | Path, step: int):
        self.path = Path(logdir) / "metrics.jsonl"
        drop_rows_after(self.path, step)
        self._file = open(self.path, "a")

    def write(self, record: dict) -> None:
        record = {k: float(v) if hasattr(v, "dtype") else v for k, v in record.items()}
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


def drop_rows_after(path: Path, step: int) -> None:
    """Keeps the log rows up to `step`; a torn last line goes too."""
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


def write_summary(logdir: str | Path, summary: dict) -> None:
    (Path(logdir) / "summary.json").write_text(json.dumps(summary, indent=1))


def read_summary(logdir: str | Path) -> dict:
    """The run's last summary (step, updates, episodes, ...), written when training stops."""
    path = Path(logdir) / "summary.json"
    if not path.exists():
        raise FileNotFoundError(f"no summary at {path}; the run has not finished a training call yet")
    return json.loads(path.read_text())

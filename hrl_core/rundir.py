"""A training run on disk: the one module that knows its folder and reads or writes it.

    LOGDIR/config.json     the run's spec (`RunSpec`): task, agent, seed, task options, full config, init-from
    LOGDIR/metrics.jsonl   one JSON object per log line
    LOGDIR/summary.json    the final counters (written when the run stops)
    LOGDIR/eval_*.json     evaluations (`hrl eval`)
    LOGDIR/analysis_*.json per-run measurements a notebook stored with their parameters (`write_analysis`)
    LOGDIR/ckpt/           orbax checkpoints: the agent's state and a JSON meta (counters, random key, replay meta)
    LOGDIR/replay/         the replay, saved incrementally in chunks (see hrl_core.replay)

A study keeps its runs side by side as RUNS/TASK-AGENT-sSEED. This module is the run's record, importable without JAX;
its learned state (loading an agent, exporting, precision) is hrl_core/learned.py's. An export
(`learned.export_run`) has the same layout without optimiser state or replay; everything that loads a run reads an
export too.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

from hrl_core.config import LEGACY_DIRECTOR, LEGACY_WORKER, Config, make_config
from hrl_core.validation import check_keys, check_non_negative

RUN_FILES = ("config.json", "metrics.jsonl", "summary.json")
EVALUATION_PREFIX = "eval_"
ANALYSIS_PREFIX = "analysis_"
EXPORT_PRECISIONS = ("float32", "float16")  # what an export can store its weights at (hrl_core/learned.py)


class MissingRun(FileNotFoundError):
    """A notebook needs a run that an earlier notebook writes."""


def run_path(runs: str | Path, task: str, agent: str, seed: int) -> Path:
    return Path(runs) / f"{task}-{agent}-s{seed}"


def require_run(runs: str | Path, task: str, agent: str, seed: int, notebook: str = "01_train") -> Path:
    """The run's folder, or a MissingRun error naming the notebook that trains it. A run stored as a record (no
    learned state, `is_record`) is returned too: what reads its stored evaluations and analyses works, and loading
    it is an error that says so."""
    path = run_path(runs, task, agent, seed)
    if not has_spec(path) or not (any((path / "ckpt").glob("*")) or is_record(path)):
        number = notebook.split("_")[0]
        raise MissingRun(f"no trained {agent} run on {task} with seed {seed} at {path}: run notebooks/{notebook}.ipynb "
                         f"first with that task, agent and seed (`hrl notebooks --only {number}` with the same --out)")
    return path


@dataclass(frozen=True)
class RunSpec:
    """What a run is: its task and task options, its seed, its full `Config` (agent and preset included) and the
    trained run it starts from (`init_from`, fine-tuning; None from scratch). Written into the run folder as
    config.json and read back as one object; `create` builds and checks one from options."""
    task: str
    config: Config = field(default_factory=Config)
    seed: int = 0
    env_options: dict = field(default_factory=dict)
    init_from: str | None = None

    @classmethod
    def create(cls, task: str, agent: str = "dreamer", seed: int = 0, preset: str = "tiny",
               env_options: dict | None = None, config: dict | None = None,
               init_from: str | Path | None = None) -> "RunSpec":
        """A checked spec: a bad option raises ValueError naming it and what it accepts. `config` overrides the
        preset's values (see hrl_core/config.py); `env_options` are the task's options (`envs.env_options`)."""
        from hrl_core.envs import env_options as task_options

        check_non_negative("seed", seed)
        env_options = dict(env_options or {})
        if "seed" in env_options:
            raise ValueError("env option 'seed' is set per environment from the run's seed; use seed (--seed) "
                             "instead")
        check_keys(f"task {task!r}", env_options, task_options(task))
        config = dict(config or {})
        if "size" in env_options:  # the task's image size is the model's
            config.setdefault("image_size", env_options["size"])
        cfg = make_config(preset, agent=agent, **config)
        if env_options.get("size", cfg.image_size) != cfg.image_size:
            raise ValueError(f"env option size={env_options['size']!r} is not valid with image_size="
                             f"{cfg.image_size}; the task renders at the model's image size (set one of them)")
        if cfg.image_size != 64:  # rendered at the model's size (64 is every task's default)
            env_options["size"] = cfg.image_size
        return cls(task, cfg, int(seed), env_options, None if init_from is None else str(init_from))

    @property
    def agent(self) -> str:
        return self.config.agent

    @property
    def preset(self) -> str:
        return self.config.preset

    def replace(self, **changes) -> "RunSpec":
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict:
        return {"task": self.task, "agent": self.agent, "seed": self.seed, "env_options": dict(self.env_options),
                "config": dataclasses.asdict(self.config), "init_from": self.init_from}

    @classmethod
    def from_json(cls, info: dict) -> "RunSpec":
        """The spec of a config.json, including those written before a field existed: a Director run from before
        Director's own update trained with the earlier one (`config.LEGACY_DIRECTOR`), and one from before per-reward
        worker critics with the summed worker reward (`config.LEGACY_WORKER`)."""
        cfg = dict(info["config"])
        if "director_norm" not in cfg:
            cfg.update(LEGACY_DIRECTOR)
        if "worker_critics" not in cfg and cfg["agent"] != "dreamer":  # a Director run from before per-reward critics
            cfg.update(LEGACY_WORKER)
        cfg.setdefault("image_size", 64)  # every run before image sizes was 64x64, whatever its preset says now
        cfg = make_config(cfg.pop("preset"), **{k: tuple(v) if isinstance(v, list) else v for k, v in cfg.items()})
        return cls(info["task"], cfg, int(info["seed"]), dict(info["env_options"]), info.get("init_from"))


def write_spec(logdir: str | Path, spec: RunSpec) -> None:
    (Path(logdir) / "config.json").write_text(json.dumps(spec.to_json(), indent=1))


def has_spec(logdir: str | Path) -> bool:
    return (Path(logdir) / "config.json").is_file()


def read_spec(logdir: str | Path) -> RunSpec:
    path = Path(logdir) / "config.json"
    if not path.exists():
        raise FileNotFoundError(f"no run at {logdir} (missing {path}); train one first with `hrl train`")
    return RunSpec.from_json(json.loads(path.read_text()))


def latest_step(logdir: str | Path) -> int | None:
    """The last checkpoint's step of the run (None without one), creating nothing: the largest of the checkpoint
    folder's finalised step folders (orbax names each by its step, and renames it so only once it is complete)."""
    directory = Path(logdir) / "ckpt"
    steps = [int(p.name) for p in directory.iterdir() if p.is_dir() and p.name.isdigit()] if directory.is_dir() else []
    return max(steps, default=None)


def is_record(logdir: str | Path) -> bool:
    """Whether the run is stored without its learned state (`learned.export_run(learned=False)`): a finished
    training call and no checkpoint. Only its curves and stored evaluations can be read; it cannot be loaded or
    continued."""
    return is_finished(logdir, 1) and latest_step(logdir) is None


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
    """The run's metrics rows. A last line cut by a kill mid-write is left out (the run resumes from a checkpoint
    before it); a malformed line anywhere else raises."""
    path = Path(logdir) / "metrics.jsonl"
    if not path.exists():
        raise FileNotFoundError(f"no metrics at {path}; train the run first")
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    rows = []
    for number, line in enumerate(lines, 1):
        try:
            rows.append(json.loads(line))
        except ValueError:
            if number < len(lines):
                raise ValueError(f"{path}:{number} is not a JSON row") from None
    return rows


def write_summary(logdir: str | Path, summary: dict) -> None:
    path = Path(logdir) / "summary.json"
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(summary, indent=1))
    temporary.replace(path)  # atomic: a kill leaves the last summary or the new one, never a part


def read_summary(logdir: str | Path) -> dict:
    """The run's last summary (step, updates, episodes, ...), written when training stops."""
    path = Path(logdir) / "summary.json"
    if not path.exists():
        raise FileNotFoundError(f"no summary at {path}; the run has not finished a training call yet")
    return json.loads(path.read_text())


def trained_steps(logdir: str | Path) -> int | None:
    """The policy steps the run's last training call reached (None before any call finished)."""
    return read_summary(logdir)["step"] if (Path(logdir) / "summary.json").exists() else None


def is_finished(logdir: str | Path, steps: int) -> bool:
    """Whether a training call of the run has stopped at `steps` policy steps or beyond."""
    reached = trained_steps(logdir)
    return reached is not None and reached >= steps


def last_logged_step(logdir: str | Path) -> int | None:
    """The step of the last row of the run's metrics log (None before one), read from the file's tail: cheap
    enough to poll while the run writes it."""
    path = Path(logdir) / "metrics.jsonl"
    try:
        with open(path, "rb") as f:
            f.seek(max(0, path.stat().st_size - 65536))
            lines = f.read().splitlines()
    except FileNotFoundError:
        return None
    for line in reversed(lines):
        try:
            return int(json.loads(line)["step"])
        except (ValueError, KeyError):  # a line cut by the seek, or one being written
            continue
    return None


def evaluation_path(logdir: str | Path, split: str, policy: str = "eval") -> Path:
    """Where a run's evaluation is stored: eval_<split>.json for the agent's own evaluation policy, else
    eval_<split>_<policy>.json."""
    return Path(logdir) / f"{EVALUATION_PREFIX}{split}{'' if policy == 'eval' else '_' + policy}.json"


def read_evaluation(logdir: str | Path, split: str, policy: str = "eval") -> dict | None:
    """The run's stored evaluation of `split` in `policy` mode, or None when there is none."""
    path = evaluation_path(logdir, split, policy)
    return json.loads(path.read_text()) if path.exists() else None


def current_step(logdir: str | Path) -> int | None:
    """The step the run's learned state is of: its latest checkpoint, or for a record (stored without one) the step
    its training reached."""
    return trained_steps(logdir) if is_record(logdir) else latest_step(logdir)


def as_json(value):
    """`value` as it reads back from JSON (NumPy numbers and arrays as Python ones, tuples as lists): a computed
    analysis result then equals its stored copy exactly."""
    return json.loads(json.dumps(value, default=lambda x: x.tolist()))


def analysis_path(logdir: str | Path, name: str) -> Path:
    return Path(logdir) / f"{ANALYSIS_PREFIX}{name}.json"


def stored_analysis(logdir: str | Path, name: str, params: dict):
    """The result of analysis `name` stored in the run (`write_analysis`) when it was computed with exactly
    `params` from the run's current state (`current_step`); else None. Lets a notebook read an expensive per-run
    measurement, such as 02's perturbed rollouts, instead of computing it again."""
    path = analysis_path(logdir, name)
    if not path.exists():
        return None
    stored = json.loads(path.read_text())
    same = stored.get("params") == as_json(params) and stored.get("step") == current_step(logdir)
    return stored["result"] if same else None


def analysis(logdir: str | Path, name: str, params: dict, compute, store: bool = False):
    """Analysis `name` of the run: its stored result when it matches (`stored_analysis`), else `compute()` as it
    reads back from JSON, written into the run when `store`."""
    result = stored_analysis(logdir, name, params)
    if result is None:
        result = as_json(compute())
        if store:
            write_analysis(logdir, name, params, result)
    return result


def write_analysis(logdir: str | Path, name: str, params: dict, result) -> Path:
    """Stores a per-run analysis result with the parameters and step it was computed at (`stored_analysis`)."""
    path = analysis_path(logdir, name)
    path.write_text(json.dumps({"name": name, "params": params, "step": current_step(logdir), "result": result}))
    return path


def write_evaluation(path: str | Path, result: dict) -> Path:
    """Writes an evaluation result (`evaluate.evaluate_run`) as JSON to `path` (see `evaluation_path`)."""
    path = Path(path)
    path.write_text(json.dumps(result, indent=1))
    return path

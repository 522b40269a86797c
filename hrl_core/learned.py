"""A run's learned state: loading its agent from a checkpoint, and exporting what it learned, at a precision. The
run's record (spec, metrics, summary, evaluations, analyses) is hrl_core/rundir.py's, which needs no JAX; this module
adds the checkpoints (hrl_core/checkpoint.py) and the agents.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp

from hrl_core.agents import make_agent
from hrl_core.checkpoint import Checkpointer
from hrl_core.envs import spaces
from hrl_core.rundir import (ANALYSIS_PREFIX, EVALUATION_PREFIX, EXPORT_PRECISIONS, RUN_FILES, RunSpec, is_finished,
                             latest_step, read_spec, read_summary, trained_steps)
from hrl_core.validation import check_choice


@dataclass(frozen=True)
class LoadedRun:
    """A run as `load_agent` read it: its spec and its checkpoint's meta (counters, random key, learned_only)."""
    spec: RunSpec
    meta: dict

    @property
    def step(self) -> int:
        return self.meta["counters"]["step"]


def is_export(logdir: str | Path) -> bool:
    ckpt = Checkpointer(Path(logdir) / "ckpt")
    try:
        return bool(ckpt.restore_meta().get("learned_only"))
    finally:
        ckpt.close()


def load_agent(logdir: str | Path, step: int | None = None):
    """(agent, state, LoadedRun) from a run's checkpoint (the latest, or `step`), for evaluation and analysis. An
    export stored at float16 (`export_run(precision=...)`) loads as float32 from its rounded weights."""
    spec = read_spec(logdir)
    if latest_step(logdir) is None:  # checked before a Checkpointer creates the folder
        stored = " (stored without its learned state: only its curves and stored evaluations can be read)"
        raise FileNotFoundError(f"run {logdir} has no checkpoint{stored if is_finished(logdir, 1) else ' yet'}")
    agent = make_agent(spec.config, *spaces(spec.task, spec.env_options))
    ckpt = Checkpointer(Path(logdir) / "ckpt")
    try:
        fresh = jax.jit(agent.init)(jax.random.PRNGKey(0))  # jitted: one cached compile, not op-by-op ones
        meta = ckpt.restore_meta(step)
        if meta.get("learned_only"):  # an exported run: optimiser states start fresh
            template = {k: v for k, v in fresh.items() if k != "opt"}
            stored, _, meta = ckpt.restore(in_precision(template, meta.get("precision", "float32")), step=step)
            state = {**jax.tree.map(lambda x, t: x.astype(t.dtype), stored, template), "opt": fresh["opt"]}
        else:
            state, _, meta = ckpt.restore(fresh, step=step)
    finally:
        ckpt.close()
    return agent, state, LoadedRun(spec, meta)


def in_precision(tree, precision: str):
    """`tree` with its weights (floating arrays of two or more dimensions: kernels, almost all of the bytes) in
    `precision`; vectors and scalars (biases, norms, normaliser statistics, adapted scales) stay as they are, so
    rounding leaves every scale and statistic exact."""
    check_choice("precision", precision, EXPORT_PRECISIONS)

    def cast(x):
        if jnp.issubdtype(x.dtype, jnp.floating) and x.ndim >= 2:
            return (jax.ShapeDtypeStruct(x.shape, precision) if isinstance(x, jax.ShapeDtypeStruct)
                    else x.astype(precision))
        return x
    return jax.tree.map(cast, tree)


def export_run(logdir: str | Path, out: str | Path, learned: bool = True, precision: str = "float32") -> Path:
    """A small, CPU-loadable copy of a finished run: its config, metrics, summary and evaluations, and a checkpoint
    of what it learned (parameters, slow critics, normalisers, adapted scales) without optimiser state or replay.
    `load_agent`, evaluation, the notebooks and `--init-from` read it like the run itself. With learned=False only
    the record is copied (config, metrics, summary, evaluations): enough for the series to read its curves and
    stored evaluations and analyses (the reference fine-tuning runs), not to load or continue it. Stored analyses
    (`write_analysis`) of the exported step are copied too.

    precision="float16" stores the weights rounded to float16 (about half the bytes; `in_precision`). The run's
    evaluations of its learned policy are then not of the stored weights, so only the random policy's are copied:
    evaluate the export itself (`hrl eval --logdir OUT`) for evaluations that reproduce from its files."""
    logdir, out = Path(logdir), Path(out)
    check_choice("precision", precision, EXPORT_PRECISIONS)
    if precision != "float32" and not learned:
        raise ValueError(f"precision={precision!r} is not valid for a record (learned=False), which stores no "
                         "weights; use 'float32'")
    if learned:
        agent, state, info = load_agent(logdir)
    elif not is_finished(logdir, 1) or read_summary(logdir).get("interrupted"):
        raise ValueError(f"logdir={str(logdir)!r} is not valid; a record needs a training call that finished its "
                         "steps (not one stopped by a signal)")
    if out.exists():
        raise ValueError(f"out={str(out)!r} is not valid; it exists already (export into a new folder)")
    out.mkdir(parents=True)
    evaluations = [(e, json.loads(e.read_text())) for e in sorted(logdir.glob(f"{EVALUATION_PREFIX}*.json"))]
    if not learned:  # a record's evaluations are read only when they are of its final step (`stored_evaluation`)
        evaluations = [(e, r) for e, r in evaluations if r.get("step") == trained_steps(logdir)]
    if precision != "float32":
        evaluations = [(e, r) for e, r in evaluations if r.get("policy") == "random"]
    # Stored analyses of the exported state travel with it; of rounded weights (float16) they would not be its own.
    step = info.step if learned else trained_steps(logdir)
    analyses = [a for a in sorted(logdir.glob(f"{ANALYSIS_PREFIX}*.json"))
                if precision == "float32" and json.loads(a.read_text()).get("step") == step]
    for path in [logdir / name for name in RUN_FILES] + [e for e, _ in evaluations] + analyses:
        if path.exists():
            shutil.copy2(path, out / path.name)
    if learned:
        meta = {**info.meta, "learned_only": True, "precision": precision}
        meta.pop("replay", None)
        ckpt = Checkpointer(out / "ckpt", keep=1)
        ckpt.save(info.step, in_precision({k: v for k, v in state.items() if k != "opt"}, precision), None, meta)
        ckpt.close()
    return out

"""The numbered notebook series: where its runs and outputs live, and `run_series` (papermill, in order).

Layout under OUT (default outputs/notebooks/PRESET):
    NN_name.ipynb        the executed copy of each notebook
    NN_name/             its figures (HTML, PNG when a Chromium exists) and metrics.json
    runs/TASK-AGENT-sS/  the training runs that 01 (and 05) write and later notebooks read

A folder of trained runs for the series (`runs=`, such as reference/) may hold STORED_RUNS/: finished runs stored
without their learned state (`hrl export --record-only`: config, metrics, summary, evaluations), which the series
copies into OUT/runs so that 05 reads its fine-tuning runs' curves and evaluations instead of training them again.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

from hrl_core.executor import Placement
from hrl_core.validation import check_keys

NOTEBOOKS = ("01_train", "02_horizon_analysis", "03_goal_decoding", "04_generalization", "05_finetune_ablation",
             "06_composition", "07_findings")
NOTEBOOK_DIR = Path(__file__).resolve().parents[1] / "notebooks"

# The notebooks that only read runs (02-07) open on the stored reference runs: their parameter cells hold the values
# that `run_series(runs="reference")` passes (reference/series.json; tests/test_reference.py keeps the two equal).
# A series that trains its own runs (no `runs`) starts from these settings instead, the tiny ones, per notebook.
# Such a series is the real scale's design, trained small: the walker (the cheetah is the CPU study's task).
OWN_RUNS = {
    "02_horizon_analysis": {"task": "walker_speed", "agents": ["dreamer", "director"], "episodes": 1, "window": 24},
    "03_goal_decoding": {"task": "walker_speed"},
    "04_generalization": {"task": "walker_speed", "agents": ["dreamer", "director"], "episodes": 1},
    "05_finetune_ablation": {"finetune_steps": 300, "time_limit": 2.0, "episodes": 1, "source_episodes": 1,
                             "curve_points": 3, "curve_episodes": 2,  # a tiny run's curve stays cheap
                             "variants": ["director: all", "director: WM+M (worker frozen)", "dreamer: all"]},
    "06_composition": {"task": "walker_speed", "agents": ["dreamer", "director"], "time_limit": 3.0,
                       "check_episodes": 1},
}
# Settings per scale on top of those. A key reaches only the notebooks that declare it. Time limits of None keep
# each task's own episode length.
_REAL_SCALE = {
    "steps": 300_000, "seeds": [0, 1, 2], "time_limits": {"walker_speed": None, "maze_train": None},
    "episodes": 5, "perturbations": 16, "window": 64, "trace_steps": 1000, "finetune_steps": 100_000,
    "time_limit": None,
}
SCALES = {"tiny": {}, "size1m": _REAL_SCALE, "S": _REAL_SCALE, "M": _REAL_SCALE}


SERIES_FILE = "series.json"  # in a folder of trained runs: which preset and notebook parameters fit them
STORED_RUNS = "finetune"  # ... and its finished runs that notebooks would otherwise train (05's fine-tuning)


class NotebookFailed(RuntimeError):
    """A notebook of the series raised; the message carries its error and where its executed copy is."""


def notebook_names(only=None) -> list[str]:
    """Series names selected by number or name (`["03"]`, `["03_goal_decoding"]`); all when `only` is empty."""
    if not only:
        return list(NOTEBOOKS)
    chosen = []
    for item in only:
        matches = [n for n in NOTEBOOKS if n == item or n.split("_")[0] == str(item).zfill(2)]
        if not matches:
            numbers = ", ".join(n.split("_")[0] for n in NOTEBOOKS)
            raise ValueError(f"--only={item!r} is not valid; allowed values: {numbers} "
                             f"or the full names {', '.join(NOTEBOOKS)}")
        chosen += matches
    return [n for n in NOTEBOOKS if n in chosen]


def output_dir(out: str | Path, notebook: str) -> Path:
    folder = Path(out) / notebook
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def write_metrics(folder: str | Path, metrics: dict) -> Path:
    path = Path(folder) / "metrics.json"
    path.write_text(json.dumps(metrics, indent=1, default=float))
    return path


def declared_parameters(notebook: str) -> list[str]:
    """The names in a notebook's `parameters` cell."""
    import papermill

    return list(papermill.inspect_notebook(str(NOTEBOOK_DIR / f"{notebook}.ipynb")))


def parameters_for(notebook: str, preset: str, out: Path, overrides: dict | None = None,
                   runs: Path | None = None) -> dict:
    """The papermill parameters for one notebook: its OWN_RUNS settings (when the series trains its own runs), scale
    settings and overrides it declares, plus paths. Runs live under OUT/runs unless `runs` names trained runs
    elsewhere; runs that notebooks train (05's fine-tuning) always go under OUT/runs."""
    declared = declared_parameters(notebook)
    own = OWN_RUNS.get(notebook, {}) if runs is None else {}
    values = {**own, **SCALES.get(preset, {}), **(overrides or {}), "preset": preset, "out": str(out),
              "runs": str(runs or out / "runs"), "finetune_runs": str(out / "runs")}
    return {k: v for k, v in values.items() if k in declared}


def copy_stored_runs(runs: str | Path, out_runs: str | Path) -> list[Path]:
    """Copies each run of RUNS/STORED_RUNS into OUT_RUNS; returns the copies. A run the notebooks trained or
    continued there is left alone; an earlier copy (still a record) is replaced when the stored run has changed.
    Each copy is written beside OUT_RUNS and renamed into place, so an interrupted copy never looks like a run."""
    from hrl_core.rundir import has_spec, is_record

    stored, out_runs = Path(runs) / STORED_RUNS, Path(out_runs)
    copies = []
    for run in sorted(stored.iterdir()) if stored.is_dir() else []:
        target = out_runs / run.name
        if not has_spec(run) or (target.exists() and not (is_record(target) and _files(target) != _files(run))):
            continue
        partial = out_runs.parent / f".{out_runs.name}-{run.name}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(run, partial)
        shutil.rmtree(target, ignore_errors=True)
        out_runs.mkdir(parents=True, exist_ok=True)
        copies.append(partial.rename(target))
    return copies


def _files(folder: Path) -> dict:
    return {p.relative_to(folder): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def reference_settings(runs: str | Path) -> dict:
    """A trained-runs folder's own description, SERIES_FILE: {"preset": the preset its runs were trained at,
    "notebooks": the notebooks it serves, "parameters": notebook parameters that fit them (seeds, evaluation
    budgets), and optionally "notebook_parameters": {notebook: parameters for that notebook alone} (e.g. the maze's
    episode length for 05 where 06 keeps the walker's)}."""
    path = Path(runs) / SERIES_FILE
    if not path.exists():
        raise FileNotFoundError(f"runs={str(runs)!r} is not a folder of trained runs for the series: it has no "
                                f"{SERIES_FILE} (see reference/PROVENANCE.md for what it holds)")
    settings = json.loads(path.read_text())
    check_keys(f"{path}", settings, ("preset", "parameters", "notebooks", "notebook_parameters"))
    check_keys(f"{path} notebook_parameters", settings.get("notebook_parameters", {}), NOTEBOOKS)
    return settings


def run_series(preset: str = "tiny", only=None, out: str | Path | None = None, overrides: dict | None = None,
               progress: bool = True, runs: str | Path | None = None,
               placement: Placement | None = None) -> list[Path]:
    """Executes the selected notebooks in order; returns the executed copies. Stops at the first failure.

    `placement` (hrl_core/executor.py) reaches the notebooks that run grids, as their parameters `executor`,
    `address` and `max_parallel`, from which each builds its Placement; None keeps each notebook's own.

    With `runs` (a folder of trained runs with a SERIES_FILE, such as the repository's reference/), the series
    analyses those runs instead of training its own: the preset and default parameters come from that file, 01 is
    skipped unless `only` names it, the runs it stores finished (STORED_RUNS) are copied into OUT/runs first, and the
    output goes to outputs/notebooks/<folder name> by default."""
    import papermill

    from hrl_core.config import PRESETS
    from hrl_core.validation import check_choice

    if placement is not None and not isinstance(placement, Placement):
        raise TypeError(f"placement={placement!r} is not valid; it must be an hrl_core.executor.Placement or None")
    settings = {}
    if runs is not None:
        runs = Path(runs).resolve()
        settings = reference_settings(runs)
        preset = settings["preset"]
    check_choice("preset", preset, [p for p in PRESETS if p in SCALES] if runs is None else PRESETS)
    names = notebook_names(only or settings.get("notebooks"))
    # Checked against the whole series, so the same --param flags work with any --only.
    check_keys("notebook parameter", overrides or {},
               {p for name in NOTEBOOKS for p in declared_parameters(name)} - {"preset", "out", "runs",
                                                                                "finetune_runs"})
    default_out = f"outputs/notebooks/{preset if runs is None else runs.name}"
    out = Path(out or default_out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if runs is not None:
        copy_stored_runs(runs, out / "runs")
    flags = {} if placement is None else dataclasses.asdict(placement)
    executed = []
    for name in names:
        target = out / f"{name}.ipynb"
        values = {**settings.get("parameters", {}), **settings.get("notebook_parameters", {}).get(name, {}),
                  **(overrides or {}), **flags}
        try:
            papermill.execute_notebook(str(NOTEBOOK_DIR / f"{name}.ipynb"), str(target),
                                       parameters=parameters_for(name, preset, out, values, runs),
                                       kernel_name="python3", cwd=str(NOTEBOOK_DIR), progress_bar=progress)
        except papermill.PapermillExecutionError as err:
            raise NotebookFailed(f"notebook {name} failed with {err.ename}: {err.evalue} (executed copy with the "
                                 f"traceback: {target})") from None
        executed.append(target)
    return executed

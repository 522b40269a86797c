"""The repository's trained reference runs (reference/): small, CPU-loadable, described by series.json."""

import json
import os
from pathlib import Path

import pytest

from hrl_core import cpu_study, evaluate, rundir, series
from hrl_core.grid import Grid

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
RUNS = sorted(p for p in REFERENCE.glob("*-s*") if (p / "config.json").exists())


def test_reference_is_small_and_described():
    assert RUNS, "reference/ holds no runs"
    size = sum(f.stat().st_size for f in REFERENCE.rglob("*") if f.is_file())
    assert size < 30 * 2**20, f"reference/ is {size / 2**20:.1f} MB; the limit is 30 MB"
    settings = series.reference_settings(REFERENCE)
    assert settings["preset"] == "cpu" and (REFERENCE / "PROVENANCE.md").exists()
    for name in settings["notebooks"]:
        assert series.notebook_names([name]) == [name]
    tasks = [settings["parameters"]["task"]] + (["maze_train"] if "05_finetune_ablation" in settings["notebooks"]
                                                else [])
    for seed in settings["parameters"]["seeds"]:  # every notebook's runs are there
        for agent in settings["parameters"]["agents"]:
            for task in tasks:
                rundir.require_run(REFERENCE, task, agent, seed)


# The evaluation episodes reference_run.sh used (EVAL_EPISODES, PROVENANCE.md): per target speed on the speed tasks,
# per task in the maze; the CPU study's tasks take theirs from cpu_study.
EPISODES = {"walker_speed": 4, **{task: spec["evaluation_episodes"] for task, spec in cpu_study.TASKS.items()}}


@pytest.mark.parametrize("run", RUNS, ids=[p.name for p in RUNS])
def test_reference_run_loads_on_cpu_with_its_evaluations(run):
    """An export (learned state without optimiser or replay) loads; a record (`hrl export --record-only`) stores
    none. Either way its evaluation files are there, of its final step, with the episodes PROVENANCE.md reports."""
    from hrl_core.learned import load_agent

    spec = rundir.read_spec(run)
    step = json.loads((run / "summary.json").read_text())["step"]
    if rundir.is_record(run):
        assert not (run / "ckpt").exists()
    else:
        agent, state, loaded = load_agent(run)
        assert loaded.meta["learned_only"] and agent.cfg.preset == "cpu"
        assert step == loaded.meta["counters"]["step"]
    assert (run / "eval_train.json").exists() and (run / "eval_train_random.json").exists()
    # Both policies on the same episodes at the exported step; reading the runs (hrl notebooks --runs reference)
    # must not replace them. The series reads them instead of evaluating again (study.evaluate_grid's reuse), so
    # they must be exactly the evaluation of the stored step with the run's own options.
    from hrl_core.evaluate import stored_evaluation

    episodes = EPISODES[spec.task]
    for name in ("eval_train.json", "eval_train_random.json"):
        result = json.loads((run / name).read_text())
        assert result["step"] == step
        assert all(len(row["returns"]) == episodes for row in result["results"]), name
        assert stored_evaluation(run, "train", episodes, result["policy"]) == result, name
    # The CPU study's runs (trained with an evaluation curve, cpu_study.reference_command) also store their gate's
    # own episodes; the earlier maze runs at the same settings predate both.
    if spec.task in cpu_study.TASKS and any("eval/return" in row for row in rundir.read_metrics(run)):
        for policy in ("train", "random"):
            assert stored_evaluation(run, "gate", episodes, policy) is not None, (run.name, policy)


def test_reading_a_run_leaves_its_files_alone(tmp_path):
    """The study's evaluation grids read reference runs without writing into them."""
    import shutil

    from hrl_core import study

    run = RUNS[0]
    info = json.loads((run / "config.json").read_text())
    copy = rundir.run_path(tmp_path, info["task"], info["agent"], info["seed"])
    shutil.copytree(run, copy)
    before = {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()}
    grid = Grid(tmp_path, info["task"], info["agent"], info["seed"])
    study.evaluate_grid(grid, 1, progress=False, splits=("train",))
    study.random_baseline(grid, 1, progress=False, splits=("train",))
    assert {p: p.read_bytes() for p in copy.rglob("*") if p.is_file()} == before


def test_stored_finetuning_runs_are_the_ones_05_asks_for(tmp_path, monkeypatch):
    """reference/finetune/ holds 05's fine-tuning runs, finished and without learned state: with the parameters of
    series.json, 05 finds every run it asks for finished there (no training job) and reads their stored evaluations
    (no agent is loaded), so a change to the runs or to series.json that would make 05 train again fails here.
    A run of a seed that series.json does not take in yet (made in the session that trained its source, PROVENANCE)
    must be the run 05 asks for once it does; nothing else may be stored."""
    from hrl_core import study

    settings = series.reference_settings(REFERENCE)
    values = {**settings["parameters"], **settings["notebook_parameters"]["05_finetune_ablation"]}
    assert series.copy_stored_runs(REFERENCE, tmp_path)
    assert not any((run / "ckpt").exists() for run in tmp_path.iterdir())

    def refuse(*args, **kwargs):
        raise AssertionError("05 would train or load a run that reference/finetune/ stores finished")

    monkeypatch.setattr(study, "_training_job", refuse)
    monkeypatch.setattr(evaluate, "load_agent", refuse)
    monkeypatch.setattr(study, "load_agent", refuse)
    source = Grid(REFERENCE, "maze_train", study.source_agents(values["variants"]), values["seeds"],
                  settings["preset"])
    paths = study.finetune_grid(source, "maze_novel", values["finetune_steps"], values["variants"],
                                values["novelties"], time_limit=values["time_limit"], progress=False,
                                out_runs=tmp_path)
    stored = {run.name: rundir.read_spec(run).seed for run in (REFERENCE / "finetune").iterdir()}
    for seed in sorted(set(stored.values()) - set(values["seeds"])):
        for variant, novelty in [(v, n) for v in values["variants"] for n in values["novelties"]]:
            if study.finetune_path(tmp_path, "maze_novel", variant, seed, novelty).name in stored:
                later = Grid(REFERENCE, "maze_train", study.source_agents([variant]), [seed], settings["preset"])
                paths.update(study.finetune_grid(later, "maze_novel", values["finetune_steps"], [variant], [novelty],
                                                 time_limit=values["time_limit"], progress=False, out_runs=tmp_path))
    assert sorted(p.name for p in paths.values()) == sorted(stored)
    rows = study.finetune_results(paths, values["episodes"], 2.0, progress=False)
    assert all(row["updates"] > 0 and row["budget"] == values["finetune_steps"] for row in rows)


def test_stored_analyses_are_the_ones_02_05_and_06_ask_for(monkeypatch):
    """Each speed run of the series stores 02's perturbed rollouts and 06's composed-task rows, and each maze run of
    05's claim pair its zero-shot evaluation on the novel maze and its gate, with the parameters of series.json
    (`hrl notebooks --runs reference --only 02 05 06 --param store=True`), so the series reads them instead of
    loading an agent: a change to the runs or to series.json that would make 02, 05 or 06 compute again fails here."""
    from hrl_core import study

    settings = series.reference_settings(REFERENCE)

    def values(notebook):
        defaults = papermill_defaults(notebook)
        return {**defaults, **settings["parameters"], **settings["notebook_parameters"].get(notebook, {})}

    def refuse(*args, **kwargs):
        raise AssertionError("02 or 06 would compute a measurement that the reference run stores")

    monkeypatch.setattr(evaluate, "load_agent", refuse)
    monkeypatch.setattr(study, "load_agent", refuse)
    monkeypatch.setattr(study, "_composition_row", refuse)
    horizon, composed = values("02_horizon_analysis"), values("06_composition")
    measured = study.decision_responses(Grid(REFERENCE, horizon["task"], horizon["agents"], horizon["seeds"]),
                                        horizon["perturbations"], horizon["window"], progress=False)
    assert all(len(m["lags"]) == horizon["window"] for runs in measured.values() for m in runs)
    rows = study.composition_grid(Grid(REFERENCE, composed["task"], composed["agents"], composed["seeds"]),
                                  composed["episodes"], composed["schedule"], composed["time_limit"],
                                  composed["policy"], progress=False)
    assert len(rows) == len(composed["seeds"]) * (len(composed["agents"]) + 1)
    switched = study.composition_schedule(Grid(REFERENCE, composed["task"], composed["agents"], composed["seeds"]),
                                          composed["schedule"])  # what 06's metrics report: the targets switched to
    assert all(set(row["target"]) == set(switched) for row in rows)
    finetune = values("05_finetune_ablation")
    pair = Grid(REFERENCE, finetune["source_task"], study.source_agents(finetune["claim_variants"]), finetune["seeds"])
    check = study.learned_check(pair, finetune["source_episodes"], finetune["learned_factor"])
    assert sorted(check["agents"]) == sorted(pair.agents)
    options = {"novelty": finetune["novelties"][0], "time_limit": finetune["time_limit"]}
    zero_rows, zero_random = study.zero_shot_grid(pair, finetune["target_task"], finetune["episodes"], options)
    assert len(zero_rows) == len(pair.agents) * len(pair.seeds) and len(zero_random) == len(pair.seeds)


def test_the_speed_gate_reads_its_own_stored_episodes(monkeypatch):
    """02, 04 and 06 gate the speed claims on each run's stored gate evaluation (split "gate": the training speeds
    on episodes of their own, at the study's policy), not on the episodes of the measure they gate, and read it
    without loading an agent."""
    from hrl_core import claims, study

    settings = series.reference_settings(REFERENCE)
    values = {**papermill_defaults("04_generalization"), **settings["parameters"],
              **settings["notebook_parameters"]["04_generalization"]}
    assert values["policy"] == claims.STUDY_POLICY

    def refuse(*args, **kwargs):
        raise AssertionError("the gate would evaluate a run instead of reading its stored gate evaluation")

    monkeypatch.setattr(evaluate, "load_agent", refuse)
    grid = Grid(REFERENCE, values["task"], values["agents"], values["seeds"])
    check = study.tracking_check(grid, values["episodes"], policy=values["policy"])
    for agent in values["agents"]:
        for seed, measured in zip(values["seeds"], check["agents"][agent]["per_seed"]):
            run = rundir.require_run(REFERENCE, values["task"], agent, seed)
            gate, measure = (rundir.read_evaluation(run, split, claims.STUDY_POLICY)["results"]
                             for split in ("gate", "train"))
            assert measured == claims.speed_tracking(gate) != claims.speed_tracking(measure)


def papermill_defaults(notebook: str) -> dict:
    """The default values of a notebook's parameters cell."""
    import ast

    import papermill

    return {name: ast.literal_eval(p["default"])
            for name, p in papermill.inspect_notebook(str(series.NOTEBOOK_DIR / f"{notebook}.ipynb")).items()}


@pytest.mark.slow  # a notebook through papermill (about 20 s)
def test_notebook_05_on_the_reference_reads_its_stored_runs(tmp_path):
    """`hrl notebooks --runs reference` (make demo) runs 05 from reference/finetune/ in seconds: the copies appear
    under OUT/runs unchanged (nothing trained into them) and 05 writes its claims."""
    executed = series.run_series(runs=REFERENCE, only=["05"], out=tmp_path, progress=False)
    assert [p.name for p in executed] == ["05_finetune_ablation.ipynb"]
    for stored in (REFERENCE / "finetune").iterdir():
        copy = tmp_path / "runs" / stored.name
        assert (copy / "metrics.jsonl").read_bytes() == (stored / "metrics.jsonl").read_bytes()
        assert not (copy / "ckpt").exists()
    metrics = json.loads((tmp_path / "05_finetune_ablation" / "metrics.json").read_text())
    assert metrics["steps"] == series.reference_settings(REFERENCE)["notebook_parameters"]["05_finetune_ablation"][
        "finetune_steps"]
    # 05's rows: claim (1) on the source maze, (2b) zero-shot on the novel maze, and claim (c)'s two measures
    assert [r["claim"][:4] for r in metrics["claims"]] == ["(1) ", "(2b)", "(3) ", "(3) "]
    # the stored fine-tuning runs have evaluation curves: their steps row is the primary one, read from those
    steps_row = metrics["claims"][2]
    assert "evaluation curves" in steps_row["measure"] and steps_row["family"] == "primary"


def test_stored_files_name_repository_paths_not_a_clones():
    """What reference/ stores names its runs by paths relative to the repository (a fine-tuning record's source run,
    a run's folder), so a fresh clone anywhere reads the same files: no stored JSON names this clone's location."""
    root = str(REFERENCE.parent)
    named = [p.relative_to(REFERENCE) for p in REFERENCE.rglob("*.json") if f'"{root}/' in p.read_text()]
    assert not named, f"these files name the absolute path {root}: {named}"
    for record in (REFERENCE / "finetune").iterdir():
        source = json.loads((record / "config.json").read_text())["init_from"]
        assert (REFERENCE.parent / source / "config.json").exists(), f"{record.name} fine-tuned {source}: not there"


@pytest.mark.parametrize("args, weights, message", [
    ((), None, "usage"), (("no-such-run",), None, "no reference/no-such-run"),
    (("maze_train-director-s0", "no-such-run"), None, "no reference/no-such-run"),
    (("maze_train-director-s0",), "records", "no records/maze_train-director-s0/ckpt")])
def test_refresh_script_refuses_what_is_not_a_reference_run(tmp_path, args, weights, message):
    """scripts/refresh_reference.sh drops records and reruns the series: given no run, any name that is not a run
    of reference/, or a WEIGHTS folder without a named run's learned state, it stops before touching anything (not
    even the records of the valid names before it), saying what it expects. It runs on a copy of reference/'s
    records and source configs, so a failure here drops nothing of the repository's."""
    import shutil
    import subprocess

    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE / "finetune", copy / "finetune")
    for run in RUNS:
        (copy / run.name).mkdir()
        shutil.copy(run / "config.json", copy / run.name)
    before = sorted(p.name for p in (copy / "finetune").iterdir())
    if weights:  # the records' folder itself: configs, no learned state
        shutil.copytree(copy, tmp_path / weights)
    env = {**os.environ, **({"WEIGHTS": weights} if weights else {})}
    done = subprocess.run([REFERENCE.parent / "scripts" / "refresh_reference.sh", *args], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, env=env)
    assert done.returncode == 2 and message in done.stderr
    assert sorted(p.name for p in (copy / "finetune").iterdir()) == before


@pytest.mark.parametrize("notebook", series.NOTEBOOKS[1:])
def test_notebooks_that_read_runs_open_on_the_reference_runs(notebook):
    """Opened in JupyterLab with no parameter changed, 02-07 read the stored reference runs with the parameters
    `hrl notebooks --runs reference` gives them (series.json), so they read the stored evaluations and analyses
    instead of training tiny runs first; a change to series.json must change the parameter cells with it."""
    defaults = papermill_defaults(notebook)
    settings = series.reference_settings(REFERENCE)
    out = (series.NOTEBOOK_DIR / defaults["out"]).resolve()
    values = {**settings["parameters"], **settings.get("notebook_parameters", {}).get(notebook, {})}
    expected = series.parameters_for(notebook, settings["preset"], out, values, REFERENCE.resolve())
    paths = ("out", "runs", "finetune_runs")
    assert {k: (series.NOTEBOOK_DIR / v).resolve() if k in paths else v for k, v in defaults.items() if k in expected} \
        == {k: Path(v).resolve() if k in paths else v for k, v in expected.items()}


def test_notebook_03_opens_on_the_reference_director():
    """Opened in JupyterLab with no parameter changed, 03 decodes the goals of a trained reference Director (one
    whose learned state is stored), not those of a tiny run that has to be trained first."""
    defaults = papermill_defaults("03_goal_decoding")
    runs = (series.NOTEBOOK_DIR / defaults["runs"]).resolve()
    assert runs == REFERENCE.resolve()
    run = runs / f"{defaults['task']}-{defaults['agent']}-s{defaults['seed']}"
    assert (run / "ckpt").is_dir() and any((run / "ckpt").iterdir()), f"{run} stores no learned state"

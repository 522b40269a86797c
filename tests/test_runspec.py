"""The run as one typed object: RunSpec written and read as one, old run folders still load, the schedule and the
group check their options, the task registry answers what a task is, and only rundir.py knows the run's files."""

import ast
import json
import re
from pathlib import Path

import pytest

from hrl_core import envs, rundir
from hrl_core.config import LEGACY_DIRECTOR
from hrl_core.grid import Grid
from hrl_core.group import SeedGroup
from hrl_core.rundir import RunSpec
from hrl_core.train import Schedule
from tests.helpers import SMALL

ROOT = Path(__file__).resolve().parent.parent


def test_a_spec_round_trips_through_its_run_folder(tmp_path):
    spec = RunSpec.create("walker_speed", "director", 3, "cpu", {"action_repeat": 4}, {**SMALL, "train_parts": ["WM"]},
                          init_from=tmp_path / "source")
    rundir.write_spec(tmp_path, spec)
    assert rundir.read_spec(tmp_path) == spec
    assert (spec.agent, spec.preset, spec.config.train_parts, spec.init_from) == ("director", "cpu", ("WM",),
                                                                                   str(tmp_path / "source"))
    saved = json.loads((tmp_path / "config.json").read_text())  # the on-disk layout old readers know
    assert (saved["task"], saved["agent"], saved["seed"], saved["config"]["preset"]) == ("walker_speed", "director",
                                                                                          3, "cpu")


def test_a_folder_written_before_the_spec_loads_with_the_update_it_trained_with(tmp_path):
    spec = RunSpec.create("maze_train", "director", 1, "tiny", {"body": "ball"})
    old = spec.to_json()
    del old["init_from"]
    for key in LEGACY_DIRECTOR:
        del old["config"][key]
    (tmp_path / "config.json").write_text(json.dumps(old))
    loaded = rundir.read_spec(tmp_path)
    assert loaded.init_from is None and loaded.env_options == {"body": "ball"}
    assert {k: getattr(loaded.config, k) for k in LEGACY_DIRECTOR} == LEGACY_DIRECTOR


@pytest.mark.parametrize("run", sorted(p.parent.name for p in (ROOT / "reference").glob("*/config.json")))
def test_every_committed_reference_run_reads_as_a_spec(run):
    path = ROOT / "reference" / run
    spec, raw = rundir.read_spec(path), json.loads((path / "config.json").read_text())
    assert (spec.task, spec.agent, spec.seed, spec.preset) == (raw["task"], raw["agent"], raw["seed"],
                                                                 raw["config"]["preset"])
    assert rundir.run_path(path.parent, spec.task, spec.agent, spec.seed) == path


@pytest.mark.parametrize("kwargs, message", [
    (dict(seed=-1), "seed=-1 is not valid"),
    (dict(env_options={"seed": 3}), "env option 'seed'"),
    (dict(env_options={"speeed": 3}), "speeed"),
    (dict(agent="manager"), "agent='manager' is not valid"),
    (dict(preset="huge"), "preset='huge' is not valid"),
    (dict(config={"horizon": 5, "manager_period": 2}), "manager_period=2 is not valid"),
])
def test_a_bad_spec_option_names_itself(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        RunSpec.create("walker_speed", **kwargs)


@pytest.mark.parametrize("kwargs, message", [
    (dict(steps=0), "steps=0 is not valid"),
    (dict(log_every=-5), "log_every=-5 is not valid"),
    (dict(evaluate_every=-1), "evaluate_every=-1 is not valid"),
    (dict(prefill=-1), "prefill=-1 is not valid"),
    (dict(evaluate_policy="greedy"), "evaluate_policy='greedy' is not valid"),
])
def test_a_bad_schedule_names_itself(kwargs, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        Schedule(**kwargs)


def test_a_group_shares_task_config_and_options_and_creates_nothing_when_it_refuses(tmp_path):
    a = RunSpec.create("walker_speed", seed=0, config=SMALL)
    with pytest.raises(ValueError, match="seed 1 differs from seed 0 in task"):
        SeedGroup({tmp_path / "a": a, tmp_path / "b": RunSpec.create("walker_walk", seed=1, config=SMALL)})
    with pytest.raises(ValueError, match="each seed, and each run folder, may appear once"):
        SeedGroup({tmp_path / "a": a, tmp_path / "b": a})
    group = SeedGroup({tmp_path / "a": a, tmp_path / "b": a.replace(seed=1)})
    assert group.seeds == [0, 1] and not group.resuming
    assert not any(tmp_path.iterdir())


def test_a_grid_refuses_a_bad_option_name_before_any_run_starts(tmp_path):
    from hrl_core import study

    with pytest.raises(ValueError, match="unknown task 'cheetah_speed' option.s. bogus"):
        study.train_grid(Grid(tmp_path / "runs", ["walker_speed", "cheetah_speed"], "dreamer", 0), 60,
                         task_options={"cheetah_speed": {"bogus": 1}}, progress=False)
    assert not (tmp_path / "runs").exists()


def test_the_registry_answers_what_a_task_is():
    assert envs.speeds("walker_speed", "ood") == (0.5, 4.0, 8.0)
    assert envs.is_speed_task("cheetah_speed") and not envs.is_speed_task("walker_speed_switch")
    assert envs.is_composed_task("walker_speed_switch") and not envs.is_composed_task("walker_speed")
    assert envs.composed_task("walker_speed") == "walker_speed_switch"
    assert envs.composed_task("cheetah_speed") == "cheetah_speed_switch"
    assert set(envs.speed_tasks()) == {"walker_speed", "quadruped_speed", "cheetah_speed"}
    with pytest.raises(ValueError, match="task='maze_train' is not valid; it has no target speeds"):
        envs.speeds("maze_train")
    with pytest.raises(ValueError, match="split='test' is not valid"):
        envs.speeds("walker_speed", "test")
    with pytest.raises(ValueError, match="task='quadruped_speed' has no switching counterpart"):
        envs.composed_task("quadruped_speed")
    with pytest.raises(ValueError, match="task='walker_sped' is not valid"):
        envs.is_speed_task("walker_sped")


def code_lines(path: Path) -> list[tuple[int, str]]:
    """(line number, line) of a Python file, its docstrings left out."""
    tree = ast.parse(path.read_text())
    docs = set()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(body, list) and body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                and isinstance(body[0].value.value, str):
            docs |= set(range(body[0].lineno, body[0].end_lineno + 1))
    return [(n, line) for n, line in enumerate(path.read_text().splitlines(), 1) if n not in docs]


def test_only_rundir_names_the_run_files():
    """config.json, summary.json, metrics.jsonl and the eval_* files are rundir.py's; elsewhere in hrl_core they may
    appear only in a command's help text, and no notebook's or benchmark's code names them."""
    pattern = re.compile(r"config\.json|summary\.json|metrics\.jsonl|eval_")
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in sorted((ROOT / "hrl_core").rglob("*.py")) if path.name != "rundir.py"
             for number, line in enumerate(path.read_text().splitlines(), 1)
             if pattern.search(line) and "help=" not in line]
    for path in sorted((ROOT / "benchmarks").glob("*.py")):  # benchmarks too, outside their docstrings
        found += [f"{path.relative_to(ROOT)}:{number}: {line.strip()}" for number, line in code_lines(path)
                  if pattern.search(line.split("#")[0])]
    for path in sorted((ROOT / "notebooks").glob("*.ipynb")):  # notebooks read runs through rundir too
        cells = [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]
        found += [f"{path.relative_to(ROOT)}: {line.strip()}" for c in cells
                  for line in "".join(c["source"]).splitlines() if pattern.search(line)]
    assert found == []


def test_metrics_with_a_line_cut_by_a_kill_read_up_to_it(tmp_path):
    """A kill mid-write leaves a torn last row: it is left out; a malformed row before the last raises, naming it."""
    (tmp_path / "metrics.jsonl").write_text('{"step": 500}\n{"step": 1000}\n{"step": 15')
    assert rundir.read_metrics(tmp_path) == [{"step": 500}, {"step": 1000}]
    (tmp_path / "metrics.jsonl").write_text('{"step": 500}\n{"ste\n{"step": 1500}\n')
    with pytest.raises(ValueError, match=r"metrics.jsonl:2 is not a JSON row"):
        rundir.read_metrics(tmp_path)
    rundir.write_summary(tmp_path, {"step": 1000})
    assert rundir.read_summary(tmp_path) == {"step": 1000} and not list(tmp_path.glob("*.tmp"))

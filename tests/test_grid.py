"""Grid (what runs) and Placement (where they execute): each is checked when it is made, before anything runs."""

from pathlib import Path

import numpy as np
import pytest

from hrl_core import executor, rundir
from hrl_core.grid import Grid


def test_a_grid_stores_its_runs_as_tuples_and_names_their_folders(tmp_path):
    grid = Grid(tmp_path, "cheetah_speed", ["dreamer", "director"], np.arange(3), "cpu")
    assert (grid.tasks, grid.agents, grid.seeds, grid.preset) == (("cheetah_speed",), ("dreamer", "director"),
                                                                   (0, 1, 2), "cpu")
    assert all(type(seed) is int for seed in grid.seeds)  # numpy seeds become ints (JSON, folder names)
    assert grid == Grid(str(tmp_path), ["cheetah_speed"], ("dreamer", "director"), [0, 1, 2], "cpu")
    assert grid.task == "cheetah_speed"
    assert grid.path("cheetah_speed", "dreamer", 2) == rundir.run_path(tmp_path, "cheetah_speed", "dreamer", 2)
    assert grid.cells()[:2] == [("cheetah_speed", "dreamer", 0), ("cheetah_speed", "dreamer", 1)]
    assert len(grid.cells()) == 6
    assert grid.only(agents="director", seeds=[1]) == Grid(tmp_path, "cheetah_speed", "director", 1, "cpu")
    with pytest.raises(rundir.MissingRun, match="run notebooks/05_finetune_ablation.ipynb first"):
        grid.require("cheetah_speed", "dreamer", 0, "05_finetune_ablation")


@pytest.mark.parametrize("kwargs, message", [
    ({"tasks": "walker"}, r"tasks='walker' is not valid; allowed values: .*walker_speed"),
    ({"tasks": []}, r"tasks=\[\] is not valid; name at least one"),
    ({"agents": ["dreamer", "dreamer"]}, r"agents=\['dreamer', 'dreamer'\] is not valid; each may be named once"),
    ({"agents": "flat"}, r"agents='flat' is not valid; allowed values: dreamer, director"),
    ({"seeds": [0, -1]}, r"seeds=-1 is not valid"),
    ({"seeds": [1.5]}, r"seeds=1.5 is not valid"),
    ({"seeds": [True]}, r"seeds=True is not valid"),
    ({"seeds": [2, 2]}, r"seeds=\[2, 2\] is not valid; each seed may be named once"),
    ({"seeds": []}, r"seeds=\[\] is not valid"),
    ({"preset": "huge"}, r"preset='huge' is not valid; allowed values: tiny"),
])
def test_a_bad_grid_is_refused_with_the_parameter_named(kwargs, message):
    values = {"runs": Path("runs"), "tasks": "walker_speed", "agents": "dreamer", "seeds": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        Grid(**values)


def test_a_step_that_reads_one_task_asks_for_one():
    grid = Grid("runs", ["walker_speed", "maze_train"], "dreamer", 0)
    with pytest.raises(ValueError, match=r"tasks \['walker_speed', 'maze_train'\]; .*grid.only\(task=...\)"):
        grid.task
    assert grid.only(task="maze_train").task == "maze_train"


def test_placement_takes_whether_seeds_train_together():
    assert executor.Placement().vectorize is None and executor.Placement(vectorize=True).vectorize is True
    with pytest.raises(ValueError, match="vectorize='on' is not valid; allowed values: None, True, False"):
        executor.Placement(vectorize="on")

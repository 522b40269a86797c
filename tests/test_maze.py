import re
from collections import deque

import numpy as np
import pytest

from hrl_core.envs import make_env
from hrl_core.envs.maze import BODIES, LAYOUTS, SIZES, WALL_CHARS, maze_text, wall_colours


def grid(layout: str) -> list[str]:
    return layout.rstrip("\n").split("\n")


def cells(layout: str, char: str) -> list[tuple[int, int]]:
    return [(r, c) for r, row in enumerate(grid(layout)) for c, ch in enumerate(row) if ch == char]


def path_lengths(layout: str) -> dict:
    """Moves from the G cell to every open cell (breadth-first)."""
    rows = grid(layout)
    goal = cells(layout, "G")[0]
    dist, todo = {goal: 0}, deque([goal])
    while todo:
        r, c = todo.popleft()
        for cell in ((r + 1, c), (r - 1, c), (r, c + 1), (r, c - 1)):
            if rows[cell[0]][cell[1]] != "*" and cell not in dist:
                dist[cell] = dist[(r, c)] + 1
                todo.append(cell)
    return dist


def dead_ends(layout: str) -> set:
    rows = grid(layout)
    return {(r, c) for r, row in enumerate(rows) for c, ch in enumerate(row) if ch != "*"
            and sum(rows[r + dr][c + dc] != "*" for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1))) == 1}


@pytest.mark.parametrize("layout", ["train", "novel"])
@pytest.mark.parametrize("maze_size", SIZES)
@pytest.mark.parametrize("body", list(BODIES))
def test_every_body_size_and_layout_builds_and_steps(body, maze_size, layout):
    """Pins, for each body x size x layout: the action size (ant 8, ball 2), a real rendered frame and proprio of the
    declared shape, a description naming body and size, the target at the layout's G cell (cells of the body's
    xy_scale, y up), and no reward on the first step (a target at the spawn or the origin would pay at once)."""
    env = make_env(f"maze_{layout}", body=body, maze_size=maze_size, time_limit=1.0)
    env.reset()
    obs = env.step(np.zeros(env.act_space.shape))
    assert env.act_space.shape == {"ant": (8,), "ball": (2,)}[body]
    assert obs["image"].shape == (64, 64, 3) and obs["image"].std() > 0
    assert obs["proprio"].shape == env.obs_space["proprio"].shape and np.isfinite(obs["proprio"]).all()
    assert obs["reward"] == 0
    assert ("Ant" if body == "ant" else "Rolling ball") in env.description and maze_size in env.description
    rows = grid(LAYOUTS[maze_size][layout])
    (r, c), = cells(LAYOUTS[maze_size][layout], "G")
    expected = np.array([c - (len(rows[0]) - 1) / 2, (len(rows) - 1) / 2 - r]) * BODIES[body]["xy_scale"]
    np.testing.assert_allclose(env._env.task._target_position[:2], expected, atol=1e-6)


def test_novel_mazes_have_twice_the_wall_colours():
    """Pins: for both sizes the novel layout shows twice the distinct wall colours (digits in its coloured text, so
    a sector without walls would not count) of the training one; the built small mazes report the same counts."""
    for maze_size in SIZES:
        counts = {name: len(set(maze_text(name, maze_size)) & set(WALL_CHARS)) for name in ("train", "novel")}
        assert counts["novel"] == 2 * counts["train"] == 2 * wall_colours("train", maze_size)
    train = make_env("maze_train", body="ball", maze_size="small", time_limit=1.0)
    novel = make_env("maze_novel", body="ball", maze_size="small", time_limit=1.0)
    assert novel.n_wall_colours == 2 * train.n_wall_colours == 2 * wall_colours("train", "small") == 8


@pytest.mark.parametrize("maze_size", SIZES)
def test_graded_novel_mazes_change_colours_layout_or_both(maze_size):
    """Pins the three grades of maze_novel: "colours" keeps the training walls and recolours them with the novel
    sectors (twice the colours), "layout" has the novel walls in the training colours, "both" is the default."""
    def walls(text):
        return [[ch in WALL_CHARS for ch in row] for row in text.split("\n")]

    train = maze_text("train", maze_size)
    colours, layout, both = (maze_text("novel", maze_size, g) for g in ("colours", "layout", "both"))
    assert both == maze_text("novel", maze_size)
    assert walls(colours) == walls(train) and colours != train
    assert walls(layout) == walls(both) != walls(train)
    assert wall_colours("novel", maze_size, "colours") == 2 * wall_colours("train", maze_size)
    assert wall_colours("novel", maze_size, "layout") == wall_colours("train", maze_size)
    with pytest.raises(ValueError, match="novelty"):
        maze_text("novel", maze_size, "walls")
    env = make_env("maze_novel", body="ball", maze_size=maze_size, novelty="colours", time_limit=1.0)
    assert env.n_wall_colours == 2 * wall_colours("train", maze_size) and "new colours" in env.description
    env.close()


@pytest.mark.parametrize("maze_size", SIZES)
def test_layouts_differ_and_every_spawn_reaches_a_goal_off_centre(maze_size):
    """Pins: train and novel layouts of a size share their shape but not their walls or dead ends (new corners);
    in every layout each P cell reaches G, G is adjacent to at most some spawns (at least one is 2+ moves away),
    and G is not the centre cell (the walker sits at the origin before its first spawn)."""
    train, novel = LAYOUTS[maze_size]["train"], LAYOUTS[maze_size]["novel"]
    assert [len(row) for row in grid(train)] == [len(row) for row in grid(novel)]
    assert cells(train, "*") != cells(novel, "*") and dead_ends(train) != dead_ends(novel)
    for layout in (train, novel):
        rows, dist = grid(layout), path_lengths(layout)
        spawns = [dist[cell] for cell in cells(layout, "P")]
        assert max(spawns) >= 2 and all(d >= 1 for d in spawns)
        assert cells(layout, "G")[0] != (len(rows) // 2, len(rows[0]) // 2)


@pytest.mark.parametrize("option,value,allowed", [("body", "snake", "ant, ball"),
                                                  ("maze_size", "huge", "large, small")])
def test_bad_body_or_size_names_the_option_and_allowed_values(option, value, allowed):
    """Pins: an unknown body or maze_size raises ValueError naming the option, the value and the allowed values."""
    for task in ("maze_train", "maze_novel"):
        with pytest.raises(ValueError, match=re.escape(f"{option}={value!r} is not valid; allowed values: {allowed}")):
            make_env(task, **{option: value})


@pytest.mark.parametrize("body", list(BODIES))
def test_touching_the_target_pays_one_and_ends_the_episode(body):
    """Pins: a walker moved onto the target (small training maze) gets reward 1 on that step, and the episode ends
    there as a terminal step (success ends the episode for good; only running out of time is not terminal)."""
    env = make_env("maze_train", body=body, maze_size="small", time_limit=5.0)
    env.reset()
    task, physics = env._env.task, env._env.physics
    walker, target = task._walker, task._target_position
    if body == "ball":  # on slide joints from the origin: their positions are the walker's xy
        walker.set_pose(physics, position=[target[0], target[1], 0.0])
    else:
        walker.shift_pose(physics, [*(target[:2] - physics.bind(walker.root_body).xpos[:2]), 0.0])
    obs = env.step(np.zeros(env.act_space.shape))
    assert obs["reward"] == 1 and obs["is_last"] and obs["is_terminal"]

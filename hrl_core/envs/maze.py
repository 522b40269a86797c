"""Maze navigation from egocentric pixels: a walker in a dm_control locomotion maze with coloured walls.

Two bodies: dm_control's Ant (Director's maze walker, 8 actions; the reference setting) and its rolling ball with a
head (2 actions: roll and steer). Either sees a 64x64 egocentric camera plus proprioception (every enabled non-image
observable, concatenated into obs["proprio"]). Two sizes: "large" 7x11 layouts (the reference) and "small" 7x7
ones, walls included, whose goal is 1 or 2 moves from some spawns and 6 or 7 from another. The task is
RepeatSingleGoalMaze: a target sphere at the layout's G cell; touching it gives reward 1 and ends the episode (its
max_repeats is 0); composer reports that with discount 1, and this env marks it terminal (is_terminal), unlike
running out of time. The walker spawns at one of the P cells, facing a random direction. Physics at 200 Hz, control
at 50 Hz, action repeat 2 by default; episodes last at most `time_limit` s.

Walls are coloured per segment: the maze is cut into sectors (2x2 for the training layouts, 2x4 for the novel ones)
and every wall cell in a sector gets that sector's flat colour, so a novel layout has twice the wall colours of
the training one of its size, and its corners (turns and dead ends) differ. The novel maze comes in three grades of
similarity to the training one (`novelty`): "colours" (the training layout coloured by the novel sectors: new wall
colours, same corners), "layout" (the novel layout coloured by the training sectors: new corners, the training
colours) and "both" (the default: new corners and twice the colours). The task renders its egocentric camera
once per agent step through the fast camera instead of once per physics-control step through its own observable.
"""

from __future__ import annotations

import numpy as np

from hrl_core.envs.base import Env, Space, flags
from hrl_core.envs.rendering import PixelCamera  # sets MUJOCO_GL before dm_control loads
from hrl_core.validation import check_choice, check_positive

import labmaze  # noqa: E402
from dm_control import composer, mjcf  # noqa: E402
from dm_control.locomotion.arenas import mazes  # noqa: E402
from dm_control.locomotion.props import target_sphere  # noqa: E402
from dm_control.locomotion.tasks import random_goal_maze  # noqa: E402
from dm_control.locomotion.walkers import ant, jumping_ball  # noqa: E402

# G is never the centre cell: until its first respawn the walker sits at the arena's origin, and a target there
# would count as reached at once.
LAYOUTS = {
    "large": {
        "train": (
            "***********\n"
            "*P  *     *\n"
            "* * * *** *\n"
            "* *   *   *\n"
            "* ***** * *\n"
            "*P      *G*\n"
            "***********\n"
        ),
        "novel": (
            "***********\n"
            "*P*       *\n"
            "* * ***** *\n"
            "* *   *   *\n"
            "* *** * ***\n"
            "*P    *  G*\n"
            "***********\n"
        ),
    },
    "small": {
        "train": (
            "*******\n"
            "*    P*\n"
            "* *** *\n"
            "* *P*G*\n"
            "* * *P*\n"
            "*     *\n"
            "*******\n"
        ),
        "novel": (
            "*******\n"
            "* *   *\n"
            "* * *P*\n"
            "* P *G*\n"
            "*** * *\n"
            "*    P*\n"
            "*******\n"
        ),
    },
}
SIZES = tuple(LAYOUTS)
SECTORS = {"train": (2, 2), "novel": (2, 4)}  # (rows, columns) of wall-colour sectors
NOVELTY = ("colours", "layout", "both")  # what the novel maze changes: (layout, sectors) it uses
NOVEL_PARTS = {"colours": ("train", "novel"), "layout": ("novel", "train"), "both": ("novel", "novel")}
PALETTE = (
    (0.85, 0.20, 0.20), (0.20, 0.60, 0.90), (0.95, 0.80, 0.15), (0.30, 0.75, 0.35),
    (0.65, 0.35, 0.85), (0.95, 0.55, 0.15), (0.15, 0.80, 0.80), (0.90, 0.45, 0.70),
)
WALL_CHARS = "12345678"
# Per body: cell size (m) and target sphere (touching it with any geom counts). 1 m cells suit the small ball
# (shell of radius 0.2, head at ~0.55 m) and let its random actions reach a goal 1-2 cells away in some short
# episodes. Either body touches its target within ~0.45 m of the goal cell's centre: the ant's 1 m up at its torso,
# the ball's lower but clear of the floor, which would touch it too.
BODIES = {"ant": {"xy_scale": 2.0, "target": {"radius": 0.4}},
          "ball": {"xy_scale": 1.0, "target": {"radius": 0.3, "height_above_ground": 0.4}}}


def coloured_layout(layout: str, sectors: tuple[int, int]) -> str:
    """Replaces each wall '*' by the digit of its sector, so each sector's walls get their own colour."""
    rows = layout.rstrip("\n").split("\n")
    height, width = len(rows), len(rows[0])
    n_rows, n_cols = sectors
    out = []
    for r, line in enumerate(rows):
        chars = []
        for c, ch in enumerate(line):
            if ch == "*":
                sector = (r * n_rows // height) * n_cols + (c * n_cols // width)
                ch = WALL_CHARS[sector]
            chars.append(ch)
        out.append("".join(chars))
    return "\n".join(out) + "\n"


def maze_text(layout: str, maze_size: str = "large", novelty: str = "both") -> str:
    """The layout with its walls replaced by sector colour digits; for the novel maze, `novelty` picks which of
    layout and colours are new (NOVEL_PARTS)."""
    walls, sectors = (layout, layout) if layout == "train" else NOVEL_PARTS[check_choice("novelty", novelty, NOVELTY)]
    return coloured_layout(LAYOUTS[maze_size][walls], SECTORS[sectors])


def wall_colours(layout: str, maze_size: str = "large", novelty: str = "both") -> int:
    """Distinct wall colours the layout really shows (a sector without walls would add none)."""
    return len(set(maze_text(layout, maze_size, novelty)) & set(WALL_CHARS))


class FlatColour(composer.Entity):
    """A composer entity holding one flat-coloured wall texture."""

    def _build(self, index: int):
        self._root = mjcf.RootElement(model=f"wall_colour_{index}")
        self._textures = [self._root.asset.add("texture", type="2d", builtin="flat", name=f"colour{index}",
                                               width=16, height=16, rgb1=PALETTE[index], rgb2=PALETTE[index])]

    @property
    def mjcf_model(self):
        return self._root

    @property
    def textures(self):
        return self._textures


class RollingBall(jumping_ball.RollingBallWithHead):
    """dm_control's rolling ball with a head, minus a warning on every reset: its initializer zeroes the velocity
    of a free joint, which this walker (on slide and hinge joints) lacks; a reset physics is at rest anyway."""

    def set_velocity(self, physics, velocity=None, angular_velocity=None):
        pass


class MazeEnv(Env):
    def __init__(self, layout: str = "train", seed: int = 0, action_repeat: int = 2, size: int = 64,
                 render: str = "fast", time_limit: float = 60.0, body: str = "ant", maze_size: str = "large",
                 novelty: str = "both"):
        super().__init__()
        check_positive("action_repeat", action_repeat)
        check_positive("time_limit", time_limit, integer=False)
        self.layout_name, self.action_repeat = layout, action_repeat
        self.body, self.maze_size = check_choice("body", body, BODIES), check_choice("maze_size", maze_size, SIZES)
        text = maze_text(layout, maze_size, novelty)
        chars = sorted(set(text) & set(WALL_CHARS))
        maze = labmaze.FixedMazeWithRandomGoals(entity_layer=text, num_spawns=text.count("P"),
                                                num_objects=1, random_state=np.random.RandomState(seed))
        arena = mazes.MazeWithTargets(maze=maze, xy_scale=BODIES[body]["xy_scale"], z_height=1.5,
                                      wall_textures={ch: FlatColour(WALL_CHARS.index(ch)) for ch in chars})
        walker = ant.Ant() if body == "ant" else RollingBall()
        task = random_goal_maze.RepeatSingleGoalMaze(
            walker=walker, maze_arena=arena, target=target_sphere.TargetSphere(**BODIES[body]["target"]),
            target_reward_scale=1.0, contact_termination=False,
            physics_timestep=0.005, control_timestep=0.02)
        walker.observables.egocentric_camera.enabled = False  # rendered once per agent step below instead
        self._env = composer.Environment(task, time_limit=time_limit, random_state=seed,
                                         strip_singleton_obs_buffer_dim=True)
        self._camera = PixelCamera(size, walker.egocentric_camera.full_identifier, render)
        spec = self._env.action_spec()
        self.act_space = Space(spec.shape, np.float32, float(spec.minimum.min()), float(spec.maximum.max()))
        self._proprio_keys = sorted(self._env.observation_spec())
        dim = sum(int(np.prod(self._env.observation_spec()[k].shape)) for k in self._proprio_keys)
        self.obs_space = {"image": Space((size, size, 3), np.uint8), "proprio": Space((dim,), np.float32)}
        self.n_wall_colours = len(chars)
        grade = "" if layout == "train" else f" (new {'layout and colours' if novelty == 'both' else novelty})"
        self.description = (f"{'Ant' if body == 'ant' else 'Rolling ball'} reaches a target in the {maze_size} "
                            f"{layout} maze{grade} from egocentric pixels + proprioception ({len(chars)} wall "
                            f"colours).")

    def _observe(self, ts, reward: float, first: bool, last: bool, terminal: bool) -> dict:
        proprio = np.concatenate([np.asarray(ts.observation[k], np.float32).ravel() for k in self._proprio_keys])
        obs = {"image": np.ascontiguousarray(self._camera.render(self._env.physics)), "proprio": proprio}
        obs.update(flags(reward, first, last, terminal))
        return obs

    def _reset(self) -> dict:
        return self._observe(self._env.reset(), 0.0, True, False, False)

    def _step(self, action) -> dict:
        reward = 0.0
        for _ in range(self.action_repeat):
            ts = self._env.step(action)
            reward += ts.reward or 0.0
            if ts.last():
                # Reaching the target ends the episode for good: a true terminal, so the continue head learns that
                # success ends it (the task itself keeps discount 1 there). Running out of time is not terminal.
                return self._observe(ts, reward, False, True, ts.discount == 0 or reward > 0)
        return self._observe(ts, reward, False, False, False)

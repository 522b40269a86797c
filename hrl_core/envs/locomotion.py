"""Pixel DeepMind Control locomotion, plain and speed-conditioned.

Speed-conditioned tasks ("walker_speed", "quadruped_speed", "cheetah_speed") draw a target speed v per episode
from a split ("train" or "ood", held out) of a named speed set (task option `speed_set`, SPEED_SETS) and reward being *near* v, not "at least v" as the suite's walk/run tasks do:

    move(vx, v) = tolerance(vx, bounds=(v, v), margin=m, value_at_margin=0.5, sigmoid="linear")

which is 1 at vx = v, 0.5 at |vx - v| = m and 0 from |vx - v| = 2m on, on both sides. The margin m is the one the
suite uses for the same domain's speed term (v/2 for walker, v for quadruped and cheetah), or the task option
`speed_margin` times v: the CPU study's cheetah uses v/2, since at margin v standing still earns half the reward at
every target and a policy that ignores the target earns about 0.7 of it. The posture terms are the suite's own:

    walker:    stand * (5 move + 1) / 6,  stand = (3 tolerance(torso_height, [1.2, inf), 0.6) + (1 + upright) / 2) / 4
    quadruped: upright * move,            upright = tolerance(torso_upright, [1, inf), linear, margin 2)
    cheetah:   move

Speed sets: "real" is each domain's real-scale set (for a GPU budget); the cheetah also has "cpu", the CPU study's
set: speeds that DreamerV3 reaches within about 25k frames (its published cheetah_run curve: 1.3 m/s at 20k frames,
2.4 m/s at 50k), spanning a factor of 5, with one held-out speed between the training speeds and one beyond them.

Composed tasks ("walker_speed_switch", "cheetah_speed_switch"): the target speed follows a `schedule` of speeds
within one episode, switching at equal fractions of the time limit (walker 2 -> 5 -> 1 m/s by default: three
8.33 s segments of a 25 s episode; each speed set has its own default, DEFAULT_SCHEDULES). Each speed is a training speed, but no training episode ever changes its target, so the sequence is new.
The task input (or the visual bar) shows the current target; the reward is the same speed reward. The last frame's
horizontal velocity is kept in `velocity` for measuring speed tracking.

Task conditioning modes:
    vector: obs["task"] = [v / max(the set's train speeds)], float32.
    reward: no task input; the target speed is known only through the reward.
    visual: the target speed is drawn into the pixels: the top 3 image rows hold a yellow bar whose length is
            v / max(the set's speeds) of the image width, on black. The agent sees the task the same way it sees the body.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hrl_core.envs.base import Env, Space, flags
from hrl_core.envs.rendering import PixelCamera
from hrl_core.validation import check_choice, check_positive

SUITE_TASKS = {
    "walker_stand": ("walker", "stand", "Walker stands upright (suite walker-stand)."),
    "walker_walk": ("walker", "walk", "Walker moves forward at >= 1 m/s (suite walker-walk)."),
    "walker_run": ("walker", "run", "Walker moves forward at >= 8 m/s (suite walker-run)."),
    "cheetah_run": ("cheetah", "run", "Cheetah runs forward at >= 10 m/s (suite cheetah-run)."),
    "quadruped_walk": ("quadruped", "walk", "Quadruped walks forward at >= 0.5 m/s (suite quadruped-walk)."),
    "quadruped_run": ("quadruped", "run", "Quadruped runs forward at >= 5 m/s (suite quadruped-run)."),
}
# Base suite task that supplies physics and initial states for each speed-conditioned domain.
SPEED_DOMAINS = {"walker": "walk", "quadruped": "walk", "cheetah": "run"}
# Target speeds (m/s) per domain and named set. Held-out ("ood") speeds lie between and beyond the training speeds
# (the real-scale sets also below them); a set's splits do not overlap.
SPEED_SETS = {
    "walker": {"real": {"train": (1.0, 2.0, 3.0, 5.0, 6.0), "ood": (0.5, 4.0, 8.0)}},
    "quadruped": {"real": {"train": (0.5, 1.0, 1.5, 2.5, 3.0), "ood": (0.25, 2.0, 4.0)}},
    "cheetah": {"real": {"train": (2.0, 4.0, 6.0, 10.0, 12.0), "ood": (1.0, 8.0, 15.0)},
                "cpu": {"train": (0.5, 1.0, 2.0, 2.5), "ood": (1.5, 3.0)}},
}
DEFAULT_SPEED_SET = "real"
SPEEDS = {domain: sets[DEFAULT_SPEED_SET] for domain, sets in SPEED_SETS.items()}  # the real-scale sets
SPEED_MARGIN = {"walker": 0.5, "quadruped": 1.0, "cheetah": 1.0}  # margin as a fraction of v
CONDITIONING = ("vector", "reward", "visual")
SPLITS = ("train", "ood")
CAMERAS = {"walker": 0, "cheetah": 0, "quadruped": 2}
DEFAULT_TIME_LIMIT = {"walker": 25.0, "quadruped": 20.0, "cheetah": 10.0}  # the suite's own episode lengths (s)
# A composed task's default schedule per (domain, speed set): training speeds in an order no training episode shows.
DEFAULT_SCHEDULES = {("walker", "real"): (2.0, 5.0, 1.0), ("cheetah", "real"): (4.0, 10.0, 2.0),
                     ("cheetah", "cpu"): (1.0, 2.5, 0.5)}
DEFAULT_SCHEDULE = DEFAULT_SCHEDULES["walker", "real"]


def speed_set(domain: str, name: str) -> dict:
    """{"train": speeds, "ood": speeds} of a domain's named speed set; a clear error for a set it does not have."""
    check_choice(f"speed_set ({domain})", name, SPEED_SETS[domain])
    return SPEED_SETS[domain][name]


def parse_schedule(schedule) -> tuple:
    """A speed schedule from a sequence of numbers or a string "2,5,1"; a clear error otherwise."""
    values = schedule.split(",") if isinstance(schedule, str) else schedule
    try:
        speeds = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        speeds = ()
    if not speeds or not all(np.isfinite(v) and v > 0 for v in speeds):
        raise ValueError(f"schedule={schedule!r} is not valid; it must be one or more positive speeds (m/s), "
                         f"e.g. [2, 5, 1] or \"2,5,1\"")
    return speeds


def composed_schedule(domain: str, speed_set: str = DEFAULT_SPEED_SET, schedule=None) -> tuple:
    """The targets a composed task switches between: `schedule` (parsed) or the (domain, speed set)'s default."""
    return DEFAULT_SCHEDULES[domain, speed_set] if schedule is None else parse_schedule(schedule)


def speed_move_reward(vx: float, target: float, margin_fraction: float) -> float:
    """Two-sided linear tolerance around the target speed (see the module docstring)."""
    from dm_control.utils import rewards

    margin = max(margin_fraction * abs(target), 1e-3)
    return float(rewards.tolerance(vx, bounds=(target, target), margin=margin, value_at_margin=0.5,
                                   sigmoid="linear"))


def forward_velocity(domain: str, physics) -> float:
    """The velocity the speed reward reads (m/s): horizontal for walker, torso x for quadruped, speed for cheetah."""
    if domain == "walker":
        return physics.horizontal_velocity()
    if domain == "quadruped":
        return physics.torso_velocity()[0]
    return physics.speed()


def speed_task_reward(domain: str, physics, target: float, margin_fraction: float | None = None) -> float:
    """The speed task's reward at `target`; `margin_fraction` (of the target) defaults to the domain's SPEED_MARGIN."""
    from dm_control.utils import rewards

    if domain not in SPEED_DOMAINS:
        raise ValueError(f"domain={domain!r} has no speed task; allowed values: {', '.join(SPEED_DOMAINS)}")
    margin_fraction = SPEED_MARGIN[domain] if margin_fraction is None else margin_fraction
    move = speed_move_reward(forward_velocity(domain, physics), target, margin_fraction)
    if domain == "walker":
        standing = rewards.tolerance(physics.torso_height(), bounds=(1.2, float("inf")), margin=0.6)
        upright = (1 + physics.torso_upright()) / 2
        stand = (3 * standing + upright) / 4
        return float(stand * (5 * move + 1) / 6)
    if domain == "quadruped":
        upright = rewards.tolerance(physics.torso_upright(), bounds=(1.0, float("inf")), sigmoid="linear",
                                    margin=2.0, value_at_margin=0)
        return float(upright * move)
    return move


def draw_speed_bar(image: np.ndarray, fraction: float) -> np.ndarray:
    image = image.copy()
    image[:3] = 0
    image[:3, : int(round(np.clip(fraction, 0.0, 1.0) * image.shape[1]))] = (255, 220, 0)
    return image


@dataclass(frozen=True)
class SpeedCommand:
    """What a speed-conditioned task commands, validated when made: a target drawn per episode from `split` of the
    named `speed_set` (or the one fixed `speed`), or a `schedule` of targets within the episode (composed tasks);
    how the agent is told (`conditioning`); and the reward's `margin` as a fraction of the target (None: the
    domain's SPEED_MARGIN)."""
    speed_set: str = DEFAULT_SPEED_SET
    split: str = "train"
    conditioning: str = "vector"
    speed: float | None = None
    schedule: tuple | None = None
    margin: float | None = None

    def __post_init__(self):
        check_choice("split", self.split, SPLITS)
        check_choice("conditioning", self.conditioning, CONDITIONING)
        if self.speed is not None and (isinstance(self.speed, bool) or not isinstance(self.speed, (int, float))):
            raise ValueError(f"speed={self.speed!r} is not valid; it must be a number (m/s) or None")
        if self.schedule is not None:
            object.__setattr__(self, "schedule", parse_schedule(self.schedule))
        if self.margin is not None:
            check_positive("speed_margin", self.margin, integer=False)


class DMCPixelEnv(Env):
    """A dm_control suite domain from pixels (`size` square) with action repeat; speed-conditioned when given a
    SpeedCommand."""

    def __init__(self, domain: str, task: str, seed: int = 0, action_repeat: int = 2, size: int = 64,
                 render: str = "fast", time_limit: float | None = None, command: SpeedCommand | None = None,
                 description: str = ""):
        super().__init__()
        from dm_control import suite

        check_positive("action_repeat", action_repeat)
        check_positive("size", size)
        self.domain, self.action_repeat, self.description = domain, action_repeat, description
        task_kwargs = {"random": seed}
        if time_limit is not None:
            task_kwargs["time_limit"] = check_positive("time_limit", time_limit, integer=False)
        self._env = suite.load(domain, task, task_kwargs=task_kwargs)
        self.control_timestep = float(self._env.control_timestep())  # seconds per physics-control step
        self._camera = PixelCamera(size, CAMERAS[domain], render)
        self._rng = np.random.RandomState(seed)
        self.command, self.speed_conditioned = command, command is not None
        self.speed_set = speed_set(domain, command.speed_set) if self.speed_conditioned else None
        self.target_speed, self.velocity = None, 0.0
        self.schedule = command.schedule if self.speed_conditioned else None
        self.time_limit = time_limit or DEFAULT_TIME_LIMIT.get(domain)
        if self.speed_conditioned:
            self.conditioning = command.conditioning
            self.speeds = self.speed_set[command.split] if command.speed is None else (float(command.speed),)
        spec = self._env.action_spec()
        self.act_space = Space(spec.shape, np.float32, float(spec.minimum.min()), float(spec.maximum.max()))
        self.obs_space = {"image": Space((size, size, 3), np.uint8)}
        if self.speed_conditioned and self.conditioning == "vector":
            self.obs_space["task"] = Space((1,), np.float32)

    def _observe(self, reward: float, first: bool, last: bool, terminal: bool) -> dict:
        image = self._camera.render(self._env.physics)
        obs = {}
        if self.speed_conditioned:
            if self.conditioning == "visual":
                all_speeds = self.speed_set["train"] + self.speed_set["ood"]
                image = draw_speed_bar(image, self.target_speed / max(all_speeds))
            elif self.conditioning == "vector":
                obs["task"] = np.array([self.target_speed / max(self.speed_set["train"])], np.float32)
        obs["image"] = np.ascontiguousarray(image)
        obs.update(flags(reward, first, last, terminal))
        return obs

    def _scheduled_speed(self) -> float:
        """The schedule's speed at the current physics time (equal segments of the time limit)."""
        segment = int(self._env.physics.data.time / self.time_limit * len(self.schedule) + 1e-9)
        return self.schedule[min(max(segment, 0), len(self.schedule) - 1)]

    def _reset(self) -> dict:
        self._env.reset()
        self.velocity = 0.0
        if self.schedule is not None:
            self.target_speed = self._scheduled_speed()
        elif self.speed_conditioned:
            self.target_speed = float(self.speeds[self._rng.randint(len(self.speeds))])
        return self._observe(0.0, True, False, False)

    def _step(self, action) -> dict:
        reward, last = 0.0, False
        for _ in range(self.action_repeat):
            ts = self._env.step(action)
            if self.speed_conditioned:
                reward += speed_task_reward(self.domain, self._env.physics, self.target_speed, self.command.margin)
            else:
                reward += ts.reward or 0.0
            if ts.last():
                last = True
                break
        self.velocity = float(forward_velocity(self.domain, self._env.physics))
        if self.schedule is not None:  # the next target shows in this observation and is rewarded from the next step
            self.target_speed = self._scheduled_speed()
        # Suite tasks end only by time limit, never by a terminal state.
        return self._observe(reward, False, last, False)

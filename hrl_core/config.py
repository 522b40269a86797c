"""Presets and options for training. Every option is validated; a bad one names itself and what it accepts.

Sizes follow DreamerV3 (S/M/L/XL from the paper; `size1m` from the newer release: deter 512 in 8 blocks, hidden 64,
stoch 32x4, CNN depth 4 with channel multipliers 2/3/4/4, MLP units 64). `tiny` is this workspace's CPU preset for
tests and the default notebooks; `cpu` is the preset for an hour of training on a 2-core CPU. Both agents
share the world model, batch, train ratio, discount and horizon; the horizon is 16 (Director's) rather than
DreamerV3's 15 so that the manager period K divides it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from hrl_core.cpu_study import IMAGE_SIZE as CPU_IMAGE_SIZE
from hrl_core.validation import check_choice, check_keys, check_positive

# "director+wr" is Director whose worker also gets the task reward (worker_rewards goal=1,extr=1 unless set, each
# reward with its own critic and normaliser, as Director's worker_rews): the row that separates "hierarchy" from
# "goal-only worker".
AGENTS = ("dreamer", "director", "director+wr")
DIRECTORS = ("director", "director+wr")
PARTS = {"dreamer": ("WM", "A", "V"), **{name: ("WM", "G", "M", "W", "V") for name in DIRECTORS}}
DIRECTOR_NORMS = ("std", "percentile")
MANAGER_ENTROPIES = ("per_slot", "summed")
DIRECTOR_OPTIMIZERS = ("director", "actor_critic")
DIRECTOR_CRITICS = ("ema", "target")
WORKER_BASELINES = ("stop", "grad")
# The worker's rewards: "separate", Director's: each reward of `worker_rewards` with a non-zero weight has its own
# critic and return normaliser, and the weights act on the normalised advantages; "summed", the earlier form: one
# goal critic on goal + worker_extrinsic x extr (the runs trained with it).
WORKER_CRITICS = ("separate", "summed")
WORKER_REWARDS = ("goal", "extr", "expl")
# Image sizes (pixels, square) for rendering, encoder and decoder: stride-2 stages down to 4x4 (6x6 at 48, as
# DreamerV3's `minres`); 32 and 48 drop the first encoder and last decoder stage (3 stages, cnn_channels[1:]).
IMAGE_SIZES = {64: (4, 4), 48: (3, 6), 32: (3, 4)}  # size: (stages, minres)
# Values of the Director fields for run folders written before those fields existed (the update they trained with).
LEGACY_DIRECTOR = {"director_norm": "percentile", "manager_entropy": "summed", "manager_unimix": 0.0,
                   "director_optimizer": "actor_critic"}
LEGACY_WORKER = {"worker_critics": "summed"}  # runs written before per-reward worker critics existed
# Every field of Director's update that shapes its learned state: a fine-tuning run inherits them from its source.
DIRECTOR_UPDATE_FIELDS = (*LEGACY_DIRECTOR, "director_critic", "critic_target_every", "worker_baseline",
                          "worker_rewards", "worker_critics", "worker_extrinsic", "goal_context")


def parse_weights(option: str, text: str, names) -> dict:
    """{name: weight} from "goal=1,extr=0.5"; a clear error naming the option and the allowed names otherwise."""
    weights = {}
    for part in str(text).split(","):
        name, _, value = part.partition("=")
        try:
            weight = float(value)
        except ValueError:
            weight = float("nan")
        if name.strip() not in names or not weight >= 0 or weight == float("inf") or name.strip() in weights:
            raise ValueError(f"{option}={text!r} is not valid; give NAME=WEIGHT pairs (weights >= 0) separated by "
                             f"commas, each name once, names among: {', '.join(names)} (e.g. goal=1,extr=1)")
        weights[name.strip()] = weight
    if not any(weights.values()):
        raise ValueError(f"{option}={text!r} is not valid; at least one weight must be > 0")
    return weights


@dataclass(frozen=True)
class Config:
    preset: str = "tiny"
    agent: str = "dreamer"
    # World model sizes.
    image_size: int = 64  # the rendered image's side (IMAGE_SIZES); the run's task renders at it
    deter: int = 128
    hidden: int = 64
    stoch: int = 8
    classes: int = 8
    blocks: int = 1
    cnn_channels: tuple = (8, 16, 24, 32)
    mlp_units: int = 128
    mlp_layers: int = 1
    unimix: float = 0.01
    free_nats: float = 1.0
    dyn_scale: float = 0.5
    rep_scale: float = 0.1
    # Replay and cadence.
    batch_size: int = 8
    batch_length: int = 16
    train_ratio: float = 64.0  # replayed steps per policy step
    num_envs: int = 2
    replay_capacity: int = 100_000
    # Actor-critic.
    horizon: int = 8
    discount: float = 1 - 1 / 333
    lam: float = 0.95
    actor_entropy: float = 3e-4
    slow_critic_fraction: float = 0.02
    return_norm_decay: float = 0.99
    wm_lr: float = 1e-4
    ac_lr: float = 3e-5
    wm_clip: float = 1000.0
    ac_clip: float = 100.0
    # Director.
    manager_period: int = 4  # K
    goal_codes: int = 8
    goal_classes: int = 8
    goal_kl_target: float = 10.0
    goal_context: bool = False  # Director's option: goals decoded given the state they are set from
    manager_entropy_target: float = 0.5  # fraction of the maximum entropy
    manager_entropy_init: float = 1.0  # initial entropy scale(s) (adapted from there); Director: 1
    # Director's own update (defaults) against the earlier, DreamerV3-flavoured one (see agents/director.py):
    director_norm: str = "std"  # "std": per-critic std return norm + advantage norm; "percentile": DreamerV3's
    manager_entropy: str = "per_slot"  # "per_slot": a scale per code slot on normalised entropy; "summed": one
    manager_unimix: float = 0.01  # uniform mix into the manager's code distribution
    director_optimizer: str = "director"  # Director heads: "director" Adam 1e-4/eps 1e-6/wd 1e-2; "actor_critic"
    director_critic: str = "ema"  # "ema": DreamerV3's critics (online values, regulariser to an EMA copy); "target":
    critic_target_every: int = 100  # ... Director's (values from a target copy, hard-copied every this many updates)
    worker_baseline: str = "stop"  # "stop": the worker's baseline is a constant; "grad": inside its gradient (Director)
    adapt_rate: float = 0.1  # Director's auto-adaptation: scale x or / (1 + rate) per update outside the band
    adapt_band: float = 0.1  # ... the band [target / (1 + band), target (1 + band)] where the scale holds still
    extrinsic_weight: float = 1.0
    exploration_weight: float = 0.1
    worker_rewards: str = "goal=1"  # weights of the worker's rewards, e.g. "goal=1,extr=1" (WORKER_REWARDS)
    worker_critics: str = "separate"  # WORKER_CRITICS
    worker_extrinsic: float = 0.0  # the "summed" form's task-reward weight
    worker_task_input: bool = False
    # Which parts learn (see PARTS); empty means all.
    train_parts: tuple = ()

    def __post_init__(self):
        check_choice("agent", self.agent, AGENTS)
        check_choice("image_size", self.image_size, IMAGE_SIZES)
        check_choice("director_norm", self.director_norm, DIRECTOR_NORMS)
        check_choice("manager_entropy", self.manager_entropy, MANAGER_ENTROPIES)
        check_choice("director_optimizer", self.director_optimizer, DIRECTOR_OPTIMIZERS)
        check_choice("director_critic", self.director_critic, DIRECTOR_CRITICS)
        check_choice("worker_baseline", self.worker_baseline, WORKER_BASELINES)
        if not 0 <= self.manager_unimix < 1:
            raise ValueError(f"manager_unimix={self.manager_unimix!r} is not valid; it must be in [0, 1)")
        check_choice("worker_critics", self.worker_critics, WORKER_CRITICS)
        weights = parse_weights("worker_rewards", self.worker_rewards, WORKER_REWARDS)
        if self.worker_critics == "summed":
            if self.agent == "director+wr" and not self.worker_extrinsic > 0:
                raise ValueError(f"worker_extrinsic={self.worker_extrinsic!r} is not valid for agent 'director+wr'; "
                                 "it must be > 0 (use agent 'director' for a goal-only worker)")
            if weights != {"goal": 1.0}:
                raise ValueError(f"worker_rewards={self.worker_rewards!r} is not valid with worker_critics='summed', "
                                 "which has one goal critic (goal=1); use worker_critics='separate'")
        else:
            if self.worker_extrinsic:
                raise ValueError(f"worker_extrinsic={self.worker_extrinsic!r} is not valid with worker_critics="
                                 "'separate'; it is the 'summed' form's weight: set worker_rewards (e.g. goal=1,extr=1)")
            if self.agent == "director+wr" and not weights.get("extr"):
                raise ValueError(f"worker_rewards={self.worker_rewards!r} is not valid for agent 'director+wr'; its "
                                 "extr weight must be > 0 (use agent 'director' for a worker without the task reward)")
        for name in ("deter", "hidden", "stoch", "classes", "blocks", "mlp_units", "mlp_layers", "batch_size",
                     "batch_length", "num_envs", "replay_capacity", "horizon", "manager_period", "goal_codes",
                     "goal_classes", "critic_target_every"):
            check_positive(name, getattr(self, name))
        for name in ("train_ratio", "manager_entropy_init", "adapt_rate"):
            check_positive(name, getattr(self, name), integer=False)
        if not 0 <= self.adapt_band:
            raise ValueError(f"adapt_band={self.adapt_band!r} is not valid; it must be a number >= 0")
        if self.deter % self.blocks:
            raise ValueError(f"deter={self.deter} is not valid with blocks={self.blocks}; deter must divide by blocks")
        if not isinstance(self.goal_context, bool):
            raise ValueError(f"goal_context={self.goal_context!r} is not valid; it must be true or false")
        if self.goal_context and self.batch_length <= self.manager_period:
            raise ValueError(f"goal_context=True is not valid with batch_length={self.batch_length}; its replay pairs "
                             f"(s_t, s_t+K) need batch_length > manager_period={self.manager_period}")
        if self.horizon % self.manager_period:
            raise ValueError(f"manager_period={self.manager_period} is not valid; it must divide horizon={self.horizon}")
        for part in self.train_parts:
            check_choice(f"train_parts ({self.agent})", part, PARTS[self.agent])
        if self.replay_capacity < self.batch_length * self.num_envs:
            raise ValueError(f"replay_capacity={self.replay_capacity} is not valid; it must hold at least "
                             f"batch_length x num_envs = {self.batch_length * self.num_envs} steps")

    @property
    def worker_reward_weights(self) -> dict:
        """{reward: weight} of the worker's rewards with a critic each: the non-zero ones of `worker_rewards`
        ("separate"), or the one summed goal reward ("summed")."""
        if self.worker_critics == "summed":
            return {"goal": 1.0}
        return {k: w for k, w in parse_weights("worker_rewards", self.worker_rewards, WORKER_REWARDS).items() if w}

    @property
    def image_channels(self) -> tuple:
        """The encoder's channels at this image size (the last `stages` of cnn_channels; the decoder mirrors them)."""
        return tuple(self.cnn_channels)[-IMAGE_SIZES[self.image_size][0]:]

    @property
    def image_minres(self) -> int:
        return IMAGE_SIZES[self.image_size][1]

    @property
    def parts(self) -> tuple:
        return self.train_parts or PARTS[self.agent]

    def replace(self, **changes) -> "Config":
        check_keys("config", changes, [f.name for f in dataclasses.fields(self)])
        return dataclasses.replace(self, **changes)


PRESETS = {
    "tiny": {},
    # For a 2-core CPU with no GPU: the tiny model with 2-layer MLP heads, a 16x16 batch, one update every 2 policy
    # steps and higher learning rates (3e-4 world model, 8e-5 actor-critic, as DreamerV2 on DMC) so that an hour
    # (about 15k policy steps) goes as far as it can; the reference runs add action repeat 4 (a task option). An
    # earlier, wider version (deter 256, horizon 16, batch 8x32, DreamerV3's learning rates) reached 1.16x the
    # random return on walker_speed in an hour (benchmarks/RESULTS.md).
    # Its image size is the CPU study's (hrl_core/cpu_study.py); runs written before it existed are 64x64.
    "cpu": dict(mlp_layers=2, batch_size=16, batch_length=16, train_ratio=128.0, wm_lr=3e-4, ac_lr=8e-5,
                image_size=CPU_IMAGE_SIZE),
    "size1m": dict(deter=512, hidden=64, stoch=32, classes=4, blocks=8, cnn_channels=(8, 12, 16, 16), mlp_units=64,
                   mlp_layers=2, batch_size=16, batch_length=64, train_ratio=512.0, num_envs=4,
                   replay_capacity=1_000_000, horizon=16, manager_period=8),
    "S": dict(deter=512, hidden=512, stoch=32, classes=32, cnn_channels=(32, 64, 128, 256), mlp_units=512,
              mlp_layers=2, batch_size=16, batch_length=64, train_ratio=512.0, num_envs=4,
              replay_capacity=1_000_000, horizon=16, manager_period=8),
    "M": dict(deter=1024, hidden=640, stoch=32, classes=32, cnn_channels=(48, 96, 192, 384), mlp_units=640,
              mlp_layers=3, batch_size=16, batch_length=64, train_ratio=512.0, num_envs=4,
              replay_capacity=1_000_000, horizon=16, manager_period=8),
    "L": dict(deter=2048, hidden=768, stoch=32, classes=32, cnn_channels=(64, 128, 256, 512), mlp_units=768,
              mlp_layers=4, batch_size=16, batch_length=64, train_ratio=512.0, num_envs=4,
              replay_capacity=1_000_000, horizon=16, manager_period=8),
    "XL": dict(deter=4096, hidden=1024, stoch=32, classes=32, cnn_channels=(96, 192, 384, 768), mlp_units=1024,
               mlp_layers=5, batch_size=16, batch_length=64, train_ratio=512.0, num_envs=4,
               replay_capacity=1_000_000, horizon=16, manager_period=8),
}


def make_config(preset: str = "tiny", **overrides) -> Config:
    check_choice("preset", preset, PRESETS)
    check_keys("config", overrides, [f.name for f in dataclasses.fields(Config)])
    overrides = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}  # from JSON / CLI
    if overrides.get("agent") == "director+wr":
        if overrides.get("worker_critics", "separate") == "summed":
            overrides.setdefault("worker_extrinsic", 1.0)
        else:
            overrides.setdefault("worker_rewards", "goal=1,extr=1")
    return Config(preset=preset, **{**PRESETS[preset], **overrides})

"""The CPU study's scale: the cheetah's named speed sets and its composed form, and the image size as a setting of
rendering, encoder and decoder alike."""

import json
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from hrl_core import envs, nets
from hrl_core.agents import make_agent
from hrl_core.config import make_config
from hrl_core.evaluate import evaluate
from hrl_core.learned import load_agent
from hrl_core.rundir import RunSpec
from hrl_core.train import Schedule, train
from tests.helpers import SMALL


def test_cheetah_speed_sets():
    """The CPU set trains at 0.5-2.5 m/s (a factor of 5) and holds out 1.5 (between) and 3 (beyond); the real-scale
    set stays the default. The task input is the target over the set's largest training speed."""
    train, ood = envs.speeds("cheetah_speed", "train", "cpu"), envs.speeds("cheetah_speed", "ood", "cpu")
    assert train == (0.5, 1.0, 2.0, 2.5) and max(train) / min(train) >= 4
    assert any(min(train) < v < max(train) for v in ood) and any(v > max(train) for v in ood)
    assert not set(train) & set(ood)
    assert envs.speeds("cheetah_speed", "train") == (2.0, 4.0, 6.0, 10.0, 12.0)
    env = envs.make_env("cheetah_speed", speed_set="cpu", seed=3)
    seen = set()
    for _ in range(6):
        obs = env.reset()
        seen.add(env.target_speed)
        assert obs["task"][0] == pytest.approx(env.target_speed / 2.5)
    assert seen <= set(train) and len(seen) > 1
    env.close()


def test_the_composed_cheetah_switches_within_the_cpu_training_speeds():
    env = envs.make_env("cheetah_speed_switch", speed_set="cpu", time_limit=0.3, action_repeat=5)
    assert env.schedule == (1.0, 2.5, 0.5) and set(env.schedule) <= set(envs.speeds("cheetah_speed", "train", "cpu"))
    targets = [env.reset()["task"][0]]
    while True:
        obs = env.step(np.zeros(env.act_space.shape, np.float32))
        targets.append(obs["task"][0])
        if obs["is_last"]:
            break
    assert sorted(set(np.round(np.array(targets) * 2.5, 3))) == [0.5, 1.0, 2.5]
    env.close()


@pytest.mark.parametrize("task,value", [("cheetah_speed", "gpu"), ("walker_speed", "cpu")])
def test_a_bad_speed_set_names_itself_and_creates_nothing(tmp_path, task, value):
    """One clear line naming the option and the sets the domain has; no run folder."""
    with pytest.raises(ValueError, match=f"speed_set .*={value!r} is not valid; allowed values: "):
        train(tmp_path / "run", RunSpec.create(task, env_options={"speed_set": value}, config=SMALL),
              Schedule(10), progress=False, parallel=False)
    assert not (tmp_path / "run").exists()
    result = subprocess.run([sys.executable, "-m", "hrl_core", "train", "--task", task, "--steps", "10",
                             "--logdir", str(tmp_path / "cli"), "--option", f"speed_set={value}"],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "speed_set" in result.stderr.strip().splitlines()[-1]
    assert not (tmp_path / "cli").exists()


@pytest.mark.parametrize("size,minres,stages", [(32, 4, 3), (48, 6, 3), (64, 4, 4)])
def test_image_size_sets_the_encoder_and_decoder(size, minres, stages):
    """Stride-2 stages down to 4x4 (6x6 at 48); the decoder reconstructs the size it was given, with gradients."""
    cfg = make_config("tiny", image_size=size)
    assert cfg.image_minres == minres and len(cfg.image_channels) == stages
    assert cfg.image_channels == tuple(cfg.cnn_channels)[-stages:]
    encoder = nets.ImageEncoder(cfg.image_channels, size)
    decoder = nets.ImageDecoder(cfg.image_channels, minres)
    images = jnp.zeros((2, 3, size, size, 3), jnp.uint8)
    enc_params = encoder.init(jax.random.PRNGKey(0), images)
    feat = encoder.apply(enc_params, images)
    assert feat.shape == (2, 3, minres * minres * cfg.image_channels[-1])
    dec_params = decoder.init(jax.random.PRNGKey(1), feat)
    assert decoder.apply(dec_params, feat).shape == (2, 3, size, size, 3)
    grads = jax.grad(lambda p: jnp.sum(decoder.apply(p, feat) ** 2))(dec_params)
    assert all(np.isfinite(np.asarray(g)).all() for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("value", [40, 128, "32"])
def test_a_bad_image_size_names_itself(value):
    with pytest.raises(ValueError, match=f"image_size={value!r} is not valid; allowed values: 64, 48, 32"):
        make_config("tiny", image_size=value)


def test_the_task_renders_at_the_model_size():
    """image_size sets the task's rendering (env option size), and a contradicting size is an error."""
    spec = RunSpec.create("cheetah_speed", config={"image_size": 32}, env_options={"speed_set": "cpu"})
    assert spec.env_options["size"] == 32 and spec.config.image_size == 32
    assert RunSpec.create("cheetah_speed", env_options={"size": 48}).config.image_size == 48
    assert "size" not in RunSpec.create("cheetah_speed").env_options  # 64: every task's default, as before
    with pytest.raises(ValueError, match="env option size=64 is not valid with image_size=32"):
        RunSpec.create("cheetah_speed", config={"image_size": 32}, env_options={"size": 64})


def test_a_run_loads_with_its_own_size_and_refuses_another(tmp_path):
    """A 32x32 run trains, loads and evaluates on its own task; on a task rendered at 64 it says what is wrong."""
    logdir = tmp_path / "run"
    spec = RunSpec.create("cheetah_speed", config={**SMALL, "image_size": 32},
                          env_options={"speed_set": "cpu", "time_limit": 0.2})
    train(logdir, spec, Schedule(20, log_every=10, prefill=16), parallel=False, progress=False)
    agent, state, run = load_agent(logdir)
    assert run.spec.config.image_size == 32 and agent.obs_space["image"].shape == (32, 32, 3)
    rows = evaluate(agent, state, "cheetah_speed", "train", 1, run.spec.env_options, speeds=[1.0])
    assert np.isfinite(rows[0]["mean_return"])
    with pytest.raises(ValueError, match="image_size=32 is the model's, but the images are 64x64"):
        evaluate(agent, state, "cheetah_speed", "train", 1, {**run.spec.env_options, "size": 64}, speeds=[1.0])
    with pytest.raises(ValueError, match="image_size=32 is the model's"):
        make_agent(run.spec.config, envs.make_env("cheetah_speed").obs_space, agent.act_space)


def test_the_speed_margin_stops_paying_for_standing_still():
    """At the cheetah's default margin (the target) a standing cheetah earns half the reward at every target; the CPU
    study's margin of half the target pays nothing for it, and the peak stays 1 at the target."""
    from hrl_core.envs.locomotion import speed_move_reward

    rewards = {}
    for margin in (None, 0.5):
        env = envs.make_env("cheetah_speed", speed_set="cpu", speed=2.0, action_repeat=1, speed_margin=margin)
        env.reset()
        steps = [env.step(np.zeros(env.act_space.shape, np.float32)) for _ in range(5)]
        assert abs(env.velocity) < 0.1  # standing still
        rewards[margin] = np.mean([s["reward"] for s in steps])
        env.close()
    assert rewards[None] == pytest.approx(0.5, abs=0.05) and rewards[0.5] == pytest.approx(0.0, abs=0.05)
    assert speed_move_reward(2.0, 2.0, 0.5) == pytest.approx(1.0)
    assert speed_move_reward(1.0, 2.0, 0.5) == pytest.approx(0.5)  # half at one margin (v/2) away


@pytest.mark.parametrize("value", [0, -0.5, "wide", True])
def test_a_bad_speed_margin_names_itself_and_creates_nothing(tmp_path, value):
    with pytest.raises(ValueError, match=f"speed_margin={value!r} is not valid; it must be a positive number"):
        train(tmp_path / "run", RunSpec.create("cheetah_speed", env_options={"speed_margin": value}, config=SMALL),
              Schedule(10), progress=False, parallel=False)
    assert not (tmp_path / "run").exists()


def test_a_speed_command_is_checked_when_made():
    from hrl_core.envs.locomotion import SpeedCommand

    assert SpeedCommand(schedule="1,2.5").schedule == (1.0, 2.5)
    for bad, name in [({"split": "test"}, "split"), ({"conditioning": "text"}, "conditioning"),
                      ({"speed": "fast"}, "speed"), ({"margin": 0}, "speed_margin")]:
        with pytest.raises(ValueError, match=f"^{name}="):
            SpeedCommand(**bad)


def test_the_evaluation_curve_has_the_speed_at_each_training_target(tmp_path, monkeypatch):
    """The curve records the achieved speed per training target, so the budget at which tracking starts reads off
    it; its points act under the schedule's `evaluate_policy` (the study's grids set claims.STUDY_POLICY)."""
    from hrl_core import train as train_module

    policies, point = [], train_module.evaluation_point
    monkeypatch.setattr(train_module, "evaluation_point", lambda *a: policies.append(a[-1]) or point(*a))
    spec = RunSpec.create("cheetah_speed", config={**SMALL, "image_size": 32},
                          env_options={"speed_set": "cpu", "time_limit": 0.2})
    train(tmp_path / "run", spec, Schedule(20, log_every=10, prefill=16, evaluate_every=10, evaluate_episodes=1,
                                           evaluate_policy="train"), parallel=False, progress=False)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    points = [r for r in records if "eval/return" in r]
    assert points and all(np.isfinite(r[f"eval/speed@{v:g}"]) for r in points for v in (0.5, 1.0, 2.0, 2.5))
    assert policies == ["train"] * len(points)


def test_the_study_command_is_the_pilots(tmp_path):
    """reference_command trains what the DreamerV3 pilots that fixed the settings trained: the same task options,
    image size and budget (reference/pilots/, records)."""
    import json as _json
    from pathlib import Path

    from hrl_core import cpu_study

    record = Path(__file__).parent.parent / "reference" / "pilots" / "cheetah_speed-dreamer-px32-m05-s0"
    config, summary = (_json.loads((record / name).read_text()) for name in ("config.json", "summary.json"))
    command = cpu_study.reference_command("cheetah_speed", "dreamer", 0)
    assert command.startswith("EVAL_EPISODES=10 scripts/reference_run.sh cheetah_speed dreamer 0 15000 ")
    options = dict(arg.split("=") for arg in command.split("--option ")[1:] for arg in [arg.split()[0]])
    assert {k: _json.loads(v) if v[0].isdigit() else v for k, v in options.items()} == \
        {k: v for k, v in config["env_options"].items() if k != "size"}
    assert config["config"]["image_size"] == make_config("cpu").image_size == cpu_study.IMAGE_SIZE
    assert summary["step"] == cpu_study.TASKS["cheetah_speed"]["steps"]
    assert "--config image_size=64" in cpu_study.reference_command("maze_train", "director", 1)
    with pytest.raises(ValueError, match="task='walker_speed' is not valid; allowed values: cheetah_speed"):
        cpu_study.reference_command("walker_speed", "dreamer", 0)

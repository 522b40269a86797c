import numpy as np
import pytest

from hrl_core.envs import BatchedEnv, make_env
from hrl_core.envs.locomotion import SPEEDS, speed_move_reward, speed_task_reward
from hrl_core.envs.maze import wall_colours


def rollout(env, steps, seed=0):
    rng = np.random.default_rng(seed)
    obs = [env.reset()]
    for _ in range(steps):
        obs.append(env.step(rng.uniform(env.act_space.low, env.act_space.high, env.act_space.shape)))
    return obs


@pytest.mark.parametrize("name,keys", [
    ("walker_walk", {"image"}),
    ("walker_speed", {"image", "task"}),
    ("quadruped_speed", {"image", "task"}),
    ("maze_train", {"image", "proprio"}),
])
def test_observation_shapes_and_dtypes(name, keys):
    env = make_env(name)
    obs = env.reset()
    assert set(obs) == keys | {"reward", "is_first", "is_last", "is_terminal"}
    assert obs["image"].shape == (64, 64, 3) and obs["image"].dtype == np.uint8
    assert obs["is_first"] and not obs["is_last"]
    for key in keys:
        assert obs[key].shape == env.obs_space[key].shape and obs[key].dtype == env.obs_space[key].dtype
    step = env.step(np.zeros(env.act_space.shape))
    assert not step["is_first"] and step["reward"].dtype == np.float32
    assert step["image"].std() > 0  # a real rendered frame, not a blank buffer


def test_same_seed_same_frames_and_rewards():
    a, b = rollout(make_env("walker_speed", seed=3), 10), rollout(make_env("walker_speed", seed=3), 10)
    c = rollout(make_env("walker_speed", seed=4), 10)
    assert all(np.array_equal(x["image"], y["image"]) and x["reward"] == y["reward"] for x, y in zip(a, b))
    assert any(not np.array_equal(x["image"], y["image"]) for x, y in zip(a, c))


def test_speed_reward_peaks_at_target_and_falls_on_both_sides():
    for v in (0.5, 1.0, 4.0, 8.0):
        peak = speed_move_reward(v, v, 0.5)
        assert peak == pytest.approx(1.0)
        assert speed_move_reward(v - 0.25 * v, v, 0.5) < peak
        assert speed_move_reward(v + 0.25 * v, v, 0.5) < peak
        assert speed_move_reward(v + 0.5 * v, v, 0.5) == pytest.approx(0.5)  # value at margin
        assert speed_move_reward(v - 0.5 * v, v, 0.5) == pytest.approx(0.5)
        assert speed_move_reward(v + 1.5 * v, v, 0.5) == pytest.approx(0.0)
    # Unlike the suite's "at least v" reward, going faster than the target is penalised.
    assert speed_move_reward(8.0, 1.0, 0.5) < speed_move_reward(1.0, 1.0, 0.5)


def test_speed_task_reward_peaks_at_the_walkers_actual_speed():
    """On a real walker rollout: (1) as a function of the target v, speed_task_reward peaks at v = the walker's
    actual horizontal speed vx and falls on both sides; vx is cross-checked against the finite-difference velocity
    of the walker's centre of mass, so the peak is where the body really moves; (2) the env's reward after a step
    (action repeat 1) is speed_task_reward of its physics at the episode's target speed, for two targets on the
    same physics."""
    env = make_env("walker_speed", speed=2.0, seed=1, action_repeat=1)
    twin = make_env("walker_speed", speed=5.0, seed=1, action_repeat=1)  # same seed and actions: same physics
    env.reset(), twin.reset()
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(30):
        action = rng.uniform(-1, 1, 6)
        obs, obs_twin = env.step(action), twin.step(action)
        physics = env._env.physics
        np.testing.assert_array_equal(physics.get_state(), twin._env.physics.get_state())
        assert obs["reward"] == pytest.approx(speed_task_reward("walker", physics, 2.0), rel=1e-6)
        assert obs_twin["reward"] == pytest.approx(speed_task_reward("walker", physics, 5.0), rel=1e-6)
        vx = float(physics.horizontal_velocity())
        probe = physics.copy(share_model=True)  # one more physics step on a copy: centre-of-mass velocity
        x0 = float(probe.named.data.subtree_com["torso"][0])
        probe.step()
        fd = (float(probe.named.data.subtree_com["torso"][0]) - x0) / probe.model.opt.timestep
        assert abs(fd - vx) < 0.1 + 0.1 * abs(vx)
        if abs(vx) < 0.2:  # the margin is half the target: too narrow to probe near standstill
            continue
        checked += 1
        peak = speed_task_reward("walker", physics, vx)
        for side in (-1, 1):
            near = speed_task_reward("walker", physics, vx + side * 0.25 * abs(vx))
            far = speed_task_reward("walker", physics, vx + side * 0.5 * abs(vx))
            assert peak > near > far, (vx, side, peak, near, far)
    assert checked >= 5


def test_train_and_ood_speeds_do_not_overlap():
    for domain, sets in SPEEDS.items():
        assert not set(sets["train"]) & set(sets["ood"])
        assert min(sets["ood"]) < min(sets["train"]) and max(sets["ood"]) > max(sets["train"])
        assert any(min(sets["train"]) < v < max(sets["train"]) for v in sets["ood"])  # one in between


def test_episode_speeds_come_from_the_split():
    env = make_env("walker_speed", split="ood", seed=1, time_limit=0.1)
    seen = set()
    for _ in range(12):
        env.reset()
        seen.add(env.target_speed)
    assert seen <= set(SPEEDS["walker"]["ood"]) and len(seen) > 1


def test_conditioning_modes():
    vector = make_env("walker_speed", speed=3.0).reset()
    assert vector["task"][0] == pytest.approx(3.0 / max(SPEEDS["walker"]["train"]))
    assert "task" not in make_env("walker_speed", conditioning="reward").reset()
    visual = make_env("walker_speed", conditioning="visual", speed=4.0).reset()["image"]
    bar = int(round(4.0 / max(SPEEDS["walker"]["train"] + SPEEDS["walker"]["ood"]) * 64))
    assert (visual[:3, :bar] == (255, 220, 0)).all() and (visual[:3, bar:] == 0).all()


def test_episode_ends_and_auto_resets():
    env = make_env("walker_walk", time_limit=0.2)  # 8 control steps -> 4 agent steps
    obs = rollout(env, 6)
    assert [o["is_last"] for o in obs[:6]] == [False, False, False, False, True, False]
    assert obs[5]["is_first"]


def test_both_mazes_build_and_novel_has_twice_the_wall_colours():
    train, novel = make_env("maze_train", time_limit=1.0), make_env("maze_novel", time_limit=1.0)
    assert novel.n_wall_colours == 2 * train.n_wall_colours == 2 * wall_colours("train")
    a, b = train.reset()["image"], novel.reset()["image"]
    assert a.shape == b.shape == (64, 64, 3)


def test_fast_render_matches_default_render():
    from hrl_core.bench import render_difference

    assert render_difference("walker_walk", steps=5) < 2.0


def test_batched_env_matches_single_envs():
    single = [rollout(make_env("walker_walk", seed=s, time_limit=1.0), 3) for s in (5, 6)]
    rng = np.random.default_rng(0)  # the same draws rollout() makes, shared by both environments
    actions = [rng.uniform(-1, 1, 6) for _ in range(3)]
    with BatchedEnv("walker_walk", 2, seed=5, parallel=True, time_limit=1.0) as env:
        batch = [env.reset()] + [env.step(np.stack([a, a])) for a in actions]
    for i in range(2):
        assert np.array_equal(batch[0]["image"][i], single[i][0]["image"])
        assert np.array_equal(batch[-1]["image"][i], single[i][-1]["image"])


@pytest.mark.parametrize("call,match", [
    (lambda: make_env("walker_fly"), "walker_speed"),
    (lambda: make_env("walker_speed", split="test"), "train, ood"),
    (lambda: make_env("walker_speed", conditioning="text"), "vector, reward, visual"),
    (lambda: make_env("walker_walk", colour="red"), "allowed options"),
    (lambda: make_env("walker_walk", render="pretty"), "fast, default"),
])
def test_bad_names_and_options_list_the_valid_ones(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_cli_envs_and_render(tmp_path, capsys):
    from hrl_core.cli import main

    assert main(["render", "walker_speed", "--steps", "4", "--out", str(tmp_path / "s.png"),
                 "--option", "conditioning=visual"]) == 0
    from PIL import Image

    assert Image.open(tmp_path / "s.png").size == (4 * 64, 64)
    assert main(["render", "walker_walk", "--steps", "3", "--out", str(tmp_path / "s.gif")]) == 0
    assert main(["render", "walker_walk", "--out", str(tmp_path / "s.txt")]) == 2

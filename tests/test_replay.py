import numpy as np

from hrl_core.replay import Replay


def make(capacity=20, envs=2):
    return Replay(capacity, envs, {"x": ((), np.int64), "image": ((4, 4, 3), np.uint8)}, seed=0)


def test_sequences_are_consecutive_within_a_stream_and_wrap():
    replay = make()
    for t in range(25):  # per-env capacity 10: wraps
        replay.add({"x": np.array([t, 100 + t]), "image": np.zeros((2, 4, 4, 3), np.uint8)})
    assert len(replay) == 20
    batch = replay.sample(64, 4)
    assert batch["x"].shape == (64, 4) and batch["image"].shape == (64, 4, 4, 4, 3)
    assert (np.diff(batch["x"], axis=1) == 1).all()  # never jumps across the ring's seam
    assert batch["x"].min() % 100 >= 15  # only the last 10 steps per stream remain


def test_memory_per_step_and_state_round_trip():
    replay = make()
    assert replay.bytes_per_step == 8 + 48
    for t in range(7):
        replay.add({"x": np.array([t, t]), "image": np.full((2, 4, 4, 3), t, np.uint8)})
    state, meta = replay.state_dict(), replay.meta()
    other = make()
    other.load_state_dict(state, meta)
    assert len(other) == len(replay)
    assert np.array_equal(other.sample(5, 3)["x"], replay.sample(5, 3)["x"])  # same data, same draws

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


# Incremental checkpoints: chunk files.

import json  # noqa: E402
import os  # noqa: E402

import pytest  # noqa: E402


def fill(replay, start, stop, seed=None):
    """Adds steps start..stop-1 with values that identify the step and stream."""
    rng = np.random.default_rng(start if seed is None else seed)
    for t in range(start, stop):
        replay.add({"x": np.array([t, 1000 + t]), "image": rng.integers(0, 255, (2, 4, 4, 3), dtype=np.uint8)})


def chunk_names(directory):
    return sorted(n for n in os.listdir(directory) if n.endswith(".npz"))


def assert_same(a, b):
    assert a.added == b.added and (a.pos == b.pos).all() and (a.size == b.size).all()
    for k in a.data:
        assert np.array_equal(a.data[k], b.data[k]), k
    for _ in range(3):
        x, y = a.sample(7, 3), b.sample(7, 3)
        assert all(np.array_equal(x[k], y[k]) for k in x)  # same sampler state


def test_chunk_round_trip_before_the_ring_fills(tmp_path):
    replay = make()
    fill(replay, 0, 7)
    meta = replay.save(tmp_path)
    assert json.loads(json.dumps(meta)) == meta and meta["format"] == "chunks" and meta["added"] == 7
    assert chunk_names(tmp_path) == ["000000000000-000000000007.npz"]
    with np.load(tmp_path / "000000000000-000000000007.npz") as f:  # a plain .npz, all keys, [envs, steps, ...]
        assert f["x"].shape == (2, 7) and f["image"].shape == (2, 7, 4, 4, 3)
        assert np.array_equal(f["x"][1], 1000 + np.arange(7))
    other = make()
    other.restore(tmp_path, meta)
    assert_same(replay, other)


def test_incremental_saves_with_wrap_around_restore_exactly(tmp_path):
    replay = make()  # 10 steps per stream
    metas = []
    for start, stop in ((0, 4), (4, 13), (13, 13), (13, 31), (31, 33), (33, 60)):  # 18 and 27 > 10 between saves
        fill(replay, start, stop)
        metas.append((replay.save(tmp_path), {k: v.copy() for k, v in replay.data.items()}))
        other = make()
        other.restore(tmp_path, metas[-1][0])
        assert_same(replay, other)
    # The next save after a restore continues the same history.
    other = make()
    other.restore(tmp_path, metas[-1][0])
    fill(replay, 60, 64)
    fill(other, 60, 64)
    meta = other.save(tmp_path)
    assert chunk_names(tmp_path)[-1] == "000000000060-000000000064.npz"
    third = make()
    third.restore(tmp_path, meta)
    assert all(np.array_equal(replay.data[k], third.data[k]) for k in replay.data)
    assert_same(other, third)  # (replay's sampler has moved on: it drew in the checks above)


def test_save_writes_only_the_new_steps(tmp_path):
    replay = make()
    fill(replay, 0, 12)
    replay.save(tmp_path)
    assert chunk_names(tmp_path) == ["000000000002-000000000012.npz"]  # only the last per_env steps are held
    fill(replay, 12, 15)
    replay.save(tmp_path)
    new = tmp_path / "000000000012-000000000015.npz"
    payload = 2 * 3 * replay.bytes_per_step
    assert payload <= new.stat().st_size < payload + 1000  # the 3 new steps plus zip and .npy headers
    before = chunk_names(tmp_path)
    replay.save(tmp_path)  # nothing new: no file
    assert chunk_names(tmp_path) == before


def test_stale_chunks_are_pruned_keeping_the_previous_save_restorable(tmp_path):
    replay = make()  # 10 steps per stream
    fill(replay, 0, 5)
    replay.save(tmp_path)
    fill(replay, 5, 9)
    previous = replay.save(tmp_path)
    fill(replay, 9, 16)
    replay.save(tmp_path)  # needs [6, 16); the previous save needs [0, 9): everything stays
    assert chunk_names(tmp_path) == ["000000000000-000000000005.npz", "000000000005-000000000009.npz",
                                     "000000000009-000000000016.npz"]
    other = make()
    other.restore(tmp_path, previous)  # as if this save's checkpoint never committed
    assert other.added == 9 and chunk_names(tmp_path)[-1] == "000000000005-000000000009.npz"

    fill(replay, 16, 19)
    replay.save(tmp_path, keep=1)  # needs [9, 19) only
    assert chunk_names(tmp_path) == ["000000000016-000000000019.npz"]  # the restore above dropped [9, 16)
    fill(replay, 19, 40)
    replay.save(tmp_path)  # keep=2: [30, 40) for this save, [9, 19) for the previous one
    assert chunk_names(tmp_path) == ["000000000016-000000000019.npz", "000000000030-000000000040.npz"]


def test_chunks_after_the_checkpoint_are_deleted(tmp_path):
    replay = make()
    fill(replay, 0, 6)
    meta = replay.save(tmp_path)
    expected = {k: v.copy() for k, v in replay.data.items()}
    fill(replay, 6, 9, seed=99)
    replay.save(tmp_path)  # killed before its checkpoint committed
    (tmp_path / ".000000000009-000000000011.npz.tmp").write_bytes(b"half")  # killed mid-write
    other = make()
    other.restore(tmp_path, meta)
    assert other.added == 6 and all(np.array_equal(other.data[k][:, :6], expected[k][:, :6]) for k in expected)
    assert os.listdir(tmp_path) == ["000000000000-000000000006.npz"]
    fill(other, 6, 8)
    other.save(tmp_path)
    assert chunk_names(tmp_path) == ["000000000000-000000000006.npz", "000000000006-000000000008.npz"]


def test_missing_chunk_is_a_clear_error(tmp_path):
    replay = make()
    for stop in (3, 6, 9):
        fill(replay, replay.added, stop)
        meta = replay.save(tmp_path)
    os.remove(tmp_path / "000000000003-000000000006.npz")
    with pytest.raises(FileNotFoundError, match=r"miss steps \[3, 6\)") as err:
        make().restore(tmp_path, meta)
    assert str(tmp_path) in str(err.value)
    os.remove(tmp_path / "000000000006-000000000009.npz")
    with pytest.raises(FileNotFoundError, match=r"miss steps \[3, 9\)"):
        make().restore(tmp_path, meta)
    with pytest.raises(ValueError, match="streams"):
        Replay(30, 2, make().spaces).restore(tmp_path, meta)


def test_first_chunk_save_after_an_older_format_restore_writes_the_whole_buffer(tmp_path):
    replay = make()
    fill(replay, 0, 23)
    old = make()
    old.load_state_dict(replay.state_dict(), replay.meta())
    meta = old.save(tmp_path)
    assert len(chunk_names(tmp_path)) == 1
    other = make()
    other.restore(tmp_path, meta)
    assert (other.pos == replay.pos).all() and (other.size == replay.size).all()
    for k in replay.data:
        assert np.array_equal(other.data[k], replay.data[k])
    assert np.array_equal(other.sample(5, 3)["x"], replay.sample(5, 3)["x"])

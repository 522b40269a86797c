"""Runs stored finished without their learned state (`hrl export --record-only`, reference/finetune/): the series
copies them without overwriting, 05 does not train a finished run again, a stored run that is not the asked-for run
is a clear error, and its stored evaluations stay reusable."""

import json

import numpy as np
import pytest

from hrl_core import learned, rundir, series
from hrl_core.checkpoint import Checkpointer
from hrl_core.evaluate import stored_evaluation
from hrl_core.rundir import RunSpec
from hrl_core.study import finished_as

OPTIONS = {"body": "ball", "maze_size": "small", "novelty": "both"}


def fake_run(folder, steps=200, source="elsewhere/maze_train-director-s0", seed=0):
    """A finished fine-tuning run's record (spec, summary, metrics, one evaluation) without training it."""
    spec = RunSpec.create("maze_novel", "director", seed, "cpu", OPTIONS, {"train_parts": ["WM", "M", "V"]},
                          init_from=source)
    folder.mkdir(parents=True)
    rundir.write_spec(folder, spec)
    rundir.write_summary(folder, {"step": steps, "updates": 85, "interrupted": False})
    (folder / "metrics.jsonl").write_text(json.dumps({"step": steps, "episode/return": 1.0}) + "\n")
    rundir.write_evaluation(rundir.evaluation_path(folder, "train"), {
        "task": spec.task, "env_options": spec.env_options, "split": "train", "policy": "eval", "step": steps,
        "results": [{"speed": None, "returns": [1.0, 0.0], "mean_return": 0.5}]})
    return spec


def checkpoint(folder, step):
    """Gives a run a real (tiny) checkpoint, as training would."""
    ckpt = Checkpointer(folder / "ckpt")
    ckpt.save(step, {"x": np.zeros(2, np.float32)}, None, {"counters": {"step": step}})
    ckpt.close()


def test_a_finished_run_is_not_trained_again_and_a_stored_one_cannot_continue(tmp_path):
    run = tmp_path / "run"
    spec = fake_run(run)
    assert not finished_as(tmp_path / "none", spec, 200)  # nothing there: train it
    # The same run, its source in another copy of reference/: finished, not trained again.
    moved = RunSpec.create("maze_novel", "director", 0, "cpu", OPTIONS, {"train_parts": ["WM", "M", "V"]},
                           init_from="reference/maze_train-director-s0")
    assert finished_as(run, moved, 200) and finished_as(run, spec, 100)
    # Without a checkpoint it cannot continue to more steps, nor be another run.
    with pytest.raises(ValueError, match=r"fewer steps than this one \(steps=300\)"):
        finished_as(run, spec, 300)
    other = RunSpec.create("maze_novel", "director", 0, "cpu", OPTIONS, {"train_parts": ["WM"]},
                           init_from=spec.init_from)
    with pytest.raises(ValueError, match="other settings"):
        finished_as(run, other, 200)
    with pytest.raises(ValueError, match="other settings"):  # another source run
        finished_as(run, RunSpec.create("maze_novel", "director", 0, "cpu", OPTIONS, {"train_parts": ["WM", "M", "V"]},
                                        init_from="reference/maze_train-director-s1"), 200)
    (run / "ckpt").mkdir()  # an empty checkpoint folder (left by a failed load) does not make it resumable
    assert rundir.is_record(run)
    with pytest.raises(ValueError, match="fewer steps"):
        finished_as(run, spec, 300)
    with pytest.raises(FileNotFoundError, match="stored without its learned state"):
        learned.load_agent(run)
    checkpoint(run, 200)  # a run with its checkpoint resumes as before
    assert not rundir.is_record(run)
    assert not finished_as(run, spec, 300) and not finished_as(run, other, 200)


def test_the_series_copies_stored_runs_and_leaves_existing_ones_alone(tmp_path):
    reference, out = tmp_path / "reference", tmp_path / "out"
    for seed in (0, 1):
        fake_run(reference / series.STORED_RUNS / f"finetune-s{seed}", seed=seed)
    (reference / series.STORED_RUNS / "notes").mkdir()  # not a run
    fake_run(out / "finetune-s1", steps=500, seed=1)  # trained on here since: kept
    checkpoint(out / "finetune-s1", 500)
    assert [p.name for p in series.copy_stored_runs(reference, out)] == ["finetune-s0"]
    assert rundir.trained_steps(out / "finetune-s0") == 200 and rundir.trained_steps(out / "finetune-s1") == 500
    assert series.copy_stored_runs(reference, out) == [] and series.copy_stored_runs(tmp_path / "none", out) == []
    # A stored run regenerated since: the earlier copy (still a record) is replaced, and no partial copy is left.
    (reference / series.STORED_RUNS / "finetune-s0" / "metrics.jsonl").write_text('{"step": 200}\n')
    assert [p.name for p in series.copy_stored_runs(reference, out)] == ["finetune-s0"]
    assert (out / "finetune-s0" / "metrics.jsonl").read_text() == '{"step": 200}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out", "reference"]


def test_a_record_only_export_keeps_its_evaluations_reusable(tmp_path):
    fake_run(tmp_path / "run")
    out = learned.export_run(tmp_path / "run", tmp_path / "export", learned=False)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "eval_train.json", "metrics.jsonl", "summary.json"]
    assert stored_evaluation(out, "train", 2)["results"][0]["mean_return"] == 0.5  # at the summary's step
    assert stored_evaluation(out, "train", 3) is None  # other episode counts are not this evaluation
    with pytest.raises(ValueError, match="exists already"):
        learned.export_run(tmp_path / "run", out, learned=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="finished its steps"):
        learned.export_run(tmp_path / "empty", tmp_path / "export2", learned=False)
    rundir.write_summary(tmp_path / "run", {"step": 150, "updates": 60, "interrupted": True})
    with pytest.raises(ValueError, match="not one stopped by a signal"):
        learned.export_run(tmp_path / "run", tmp_path / "export3", learned=False)
    rundir.write_summary(tmp_path / "run", {"step": 300, "updates": 110, "interrupted": False})  # trained on
    out = learned.export_run(tmp_path / "run", tmp_path / "export4", learned=False)
    assert not (out / "eval_train.json").exists()  # the evaluation of step 200 is not the record's

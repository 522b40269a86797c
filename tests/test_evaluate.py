import functools
import json

import jax
import numpy as np
import pytest

from hrl_core.cli import main
from hrl_core.grid import Grid
from hrl_core.rundir import RunSpec
from hrl_core.train import Schedule, train
from tests.helpers import SMALL


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("eval") / "run"
    train(logdir, RunSpec.create("walker_speed", config=SMALL, env_options={"time_limit": 0.5}), Schedule(8),
          parallel=False, progress=False)
    return logdir


def test_random_baseline_uses_the_runs_episodes_and_is_repeatable(run):
    """`hrl eval --policy random`: the uniform random policy on the run's task, speeds and evaluation seeds, written
    beside the trained evaluation; the same seeds give the same returns."""
    results = []
    for _ in range(2):
        assert main(["eval", "--logdir", str(run), "--split", "train", "--episodes", "1", "--policy", "random"]) == 0
        results.append(json.loads((run / "eval_train_random.json").read_text()))
    assert results[0]["policy"] == "random" and results[0]["results"] == results[1]["results"]
    assert [r["speed"] for r in results[0]["results"]] == [1.0, 2.0, 3.0, 5.0, 6.0]
    assert main(["eval", "--logdir", str(run), "--split", "train", "--episodes", "1"]) == 0
    trained = json.loads((run / "eval_train.json").read_text())
    assert trained["policy"] == "eval" and len(trained["results"]) == 5
    assert all(np.isfinite(r["mean_return"]) for r in trained["results"])


def test_a_stored_evaluation_is_reused_only_when_it_is_the_same_evaluation(run, monkeypatch):
    """reuse=True reads the run's stored evaluation instead of recomputing it, and only when it is exactly the one
    that would be computed (same checkpoint, task, options, policy and episodes): it equals a fresh evaluation."""
    from hrl_core import evaluate, rundir

    options, results = rundir.read_spec(run).env_options, {}
    for policy in ("eval", "random"):
        stored = evaluate.evaluate_run(run, "train", 1, policy=policy)  # writes eval_train[_random].json
        assert stored["env_options"] == options
        assert evaluate.evaluate_run(run, "train", 1, policy=policy, write=False)["results"] == stored["results"]
        results[policy] = stored["results"]
    with monkeypatch.context() as patch:  # a reused evaluation loads no agent
        patch.setattr(evaluate, "load_agent", lambda *a, **k: pytest.fail("the stored evaluation was not reused"))
        for policy in ("eval", "random"):
            assert evaluate.evaluate_run(run, "train", 1, policy=policy, reuse=True)["results"] == results[policy]
    for split, episodes, policy in (("train", 2, "eval"), ("ood", 1, "eval"), ("train", 1, "mode")):
        assert evaluate.stored_evaluation(run, split, episodes, policy) is None
    # An evaluation written with other options (hrl eval --option) is not the run's own: it is recomputed.
    evaluate.evaluate_run(run, "train", 1, env_options={"time_limit": 0.25})
    assert evaluate.stored_evaluation(run, "train", 1) is None
    fresh = evaluate.evaluate_run(run, "train", 1, reuse=True, write=False)
    assert fresh["env_options"] == options and fresh["results"] == results["eval"]


def test_the_gate_plays_the_training_speeds_on_episodes_of_its_own(run, tmp_path):
    """split="gate": the training speeds again, on environment seeds of their own (envs.seeds.GATE_OFFSET), stored
    beside the measures' evaluations and read back like them: a gate never reuses a measure's episodes."""
    import shutil

    from hrl_core import evaluate

    run = shutil.copytree(run, tmp_path / "run")  # the module's run keeps its own evaluation files
    measure = evaluate.evaluate_run(run, "train", 1, policy="random", write=False)
    gate = evaluate.evaluate_run(run, "gate", 1, policy="random")
    assert gate["split"] == "gate" and (run / "eval_gate_random.json").exists()
    assert [r["speed"] for r in gate["results"]] == [r["speed"] for r in measure["results"]]
    assert [r["returns"] for r in gate["results"]] != [r["returns"] for r in measure["results"]]
    assert evaluate.stored_evaluation(run, "gate", 1, "random") == gate
    assert evaluate.stored_evaluation(run, "train", 1, "random") != gate


def test_bad_policy_names_the_choices(run, capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--logdir", str(run), "--policy", "greedy"])
    assert "random" in capsys.readouterr().err


def test_frames_strip_and_export_load_like_the_run(run, tmp_path):
    """`hrl eval --frames` writes the first episode as a strip; `hrl export` writes a small copy without optimiser
    state or replay that loads (fresh optimiser states) and evaluates to the same returns as the run."""
    from hrl_core.learned import load_agent

    strip = tmp_path / "strip.png"
    assert main(["eval", "--logdir", str(run), "--episodes", "1", "--frames", str(strip), "--out",
                 str(tmp_path / "a.json")]) == 0
    from PIL import Image

    assert Image.open(strip).size[1] == 64
    out = tmp_path / "exported"
    assert main(["export", "--logdir", str(run), "--out", str(out)]) == 0
    assert {"config.json", "metrics.jsonl", "summary.json"} <= {p.name for p in out.iterdir()}
    step = json.loads((run / "summary.json").read_text())["step"]
    sizes = [sum(p.stat().st_size for p in (folder / "ckpt" / str(step) / "state").rglob("*") if p.is_file())
             for folder in (run, out)]
    assert sizes[1] < 0.8 * sizes[0]  # no Adam moments (orbax's per-array overhead weighs on a model this small)
    assert list((run / "replay").glob("*.npz")) and not (out / "replay").exists()  # replay chunks stay behind
    assert not (out / "ckpt" / str(step) / "replay").exists()
    _, state, _ = load_agent(run)
    agent, exported, _ = load_agent(out)
    for name in ("params", "slow_critic", "retnorm"):
        for a, b in zip(jax.tree.leaves(state[name]), jax.tree.leaves(exported[name])):
            assert np.array_equal(np.asarray(a), np.asarray(b))
    assert all(not np.asarray(x).any() for x in jax.tree.leaves(exported["opt"]) if np.asarray(x).dtype != np.int32)
    assert main(["eval", "--logdir", str(out), "--episodes", "1", "--out", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / f).read_text())["results"] for f in ("a.json", "b.json"))
    assert a == b


def test_a_float16_export_stores_rounded_weights_and_evaluations_of_itself(run, tmp_path):
    """`hrl export --precision float16`: the weights (arrays of 2+ dimensions) are stored rounded to float16 and load
    as float32 equal to the run's weights rounded once; biases, norms, normalisers and scales load exactly. The run's
    own learned-policy evaluations are not of those weights, so only the random policy's travel; the export's own
    evaluation reproduces from its files."""
    from hrl_core import learned, rundir

    for policy in ("eval", "random"):
        assert main(["eval", "--logdir", str(run), "--episodes", "1", "--policy", policy]) == 0
    full, half = tmp_path / "full", tmp_path / "half"
    assert main(["export", "--logdir", str(run), "--out", str(full)]) == 0
    assert main(["export", "--logdir", str(run), "--out", str(half), "--precision", "float16"]) == 0
    step = json.loads((run / "summary.json").read_text())["step"]
    sizes = [sum(p.stat().st_size for p in (folder / "ckpt" / str(step) / "state").rglob("*") if p.is_file())
             for folder in (full, half)]
    assert sizes[1] < sizes[0]  # (52-54% at the cpu preset, RESULTS; orbax's compression and overhead vary here)
    assert stored_dtypes(half) == {("float16", True), ("float32", False)}  # (dtype, weight): weights only rounded
    assert stored_dtypes(full) == {("float32", True), ("float32", False)}
    _, state, _ = learned.load_agent(run)
    assert sorted(p.name for p in half.glob("eval_*.json")) == ["eval_train_random.json"]
    _, loaded, info = learned.load_agent(half)
    assert info.meta["precision"] == "float16"
    rounded = 0
    for name in ("params", "slow_critic", "retnorm"):
        for a, b in zip(jax.tree.leaves(state[name]), jax.tree.leaves(loaded[name])):
            a, b = np.asarray(a), np.asarray(b)
            assert b.dtype == a.dtype
            expected = a.astype(np.float16).astype(a.dtype) if a.ndim >= 2 else a
            assert np.array_equal(b, expected)
            rounded += a.ndim >= 2 and not np.array_equal(a, b)
    assert rounded  # the weights really are rounded
    evaluations = [_evaluate_into(half, tmp_path / f"{i}.json") for i in range(2)]
    assert evaluations[0] == evaluations[1]
    with pytest.raises(SystemExit):
        main(["export", "--logdir", str(run), "--out", str(tmp_path / "x"), "--precision", "int8"])
    with pytest.raises(ValueError, match="precision='float16' is not valid for a record"):
        learned.export_run(run, tmp_path / "record", learned=False, precision="float16")
    with pytest.raises(ValueError, match="precision='bfloat16' is not valid"):
        learned.export_run(run, tmp_path / "y", precision="bfloat16")


def stored_dtypes(export) -> set:
    """{(dtype as stored, whether the array has 2+ dimensions)} of an export's checkpoint, read without a template."""
    import orbax.checkpoint as ocp

    from hrl_core.checkpoint import Checkpointer

    ckpt = Checkpointer(export / "ckpt")
    try:
        state = ckpt.manager.restore(ckpt.latest_step(), args=ocp.args.Composite(state=ocp.args.StandardRestore()))
    finally:
        ckpt.close()
    return {(str(np.asarray(x).dtype), np.ndim(x) >= 2) for x in jax.tree.leaves(state["state"])}


def _evaluate_into(logdir, out):
    assert main(["eval", "--logdir", str(logdir), "--episodes", "1", "--out", str(out)]) == 0
    return json.loads(out.read_text())["results"]


def test_per_run_analyses_are_stored_and_read_only_when_they_match(run, tmp_path, monkeypatch):
    """02's perturbed rollouts, 05's zero-shot evaluations and 06's composed-task rows, written into each run with
    store=True (`hrl notebooks --param store=True`), are read back instead of computed, with no agent loaded, when their parameters and the
    run's step match, and equal a fresh computation; reading stores nothing, and other parameters or another step
    compute afresh."""
    import shutil

    from hrl_core import evaluate, learned, rundir, study

    spec = rundir.read_spec(run)
    runs = tmp_path / "runs"
    copy = rundir.run_path(runs, spec.task, spec.agent, spec.seed)
    shutil.copytree(run, copy)
    grid = Grid(runs, spec.task, spec.agent, spec.seed)
    measure = functools.partial(study.decision_responses, grid, 2, progress=False)
    compose = functools.partial(study.composition_grid, grid, 1, [1.0, 2.0], 0.5, progress=False)
    zero_shot = functools.partial(study.zero_shot_grid, grid, spec.task, 1, {"time_limit": 0.5})
    fresh, zero_fresh = measure(4), zero_shot()
    assert not list(copy.glob("analysis_*.json"))
    np.testing.assert_equal(measure(4, store=True), fresh)
    rows = compose(store=True)
    np.testing.assert_equal(zero_shot(store=True), zero_fresh)
    assert sorted(p.name for p in copy.glob("analysis_*.json")) == [
        "analysis_composition.json", "analysis_composition_random.json", "analysis_decision_response.json",
        "analysis_zero_shot.json", "analysis_zero_shot_random.json"]

    def refuse(*args, **kwargs):
        raise AssertionError("a stored analysis was computed again")

    with monkeypatch.context() as patch:
        patch.setattr(evaluate, "load_agent", refuse)
        patch.setattr(study, "load_agent", refuse)
        patch.setattr(study, "_composition_row", refuse)
        np.testing.assert_equal(measure(4), fresh)
        np.testing.assert_equal(compose(), rows)
        np.testing.assert_equal(zero_shot(), zero_fresh)
        with pytest.raises(AssertionError, match="computed again"):
            measure(3)  # another window
        with pytest.raises(AssertionError, match="computed again"):
            study.zero_shot_grid(grid, spec.task, 2, {"time_limit": 0.5})  # other episodes
        # A record (no learned state) keeps its analyses: the series reads it like the run.
        records = tmp_path / "records"
        learned.export_run(copy, rundir.run_path(records, spec.task, spec.agent, spec.seed), learned=False)
        stored_grid = Grid(records, spec.task, spec.agent, spec.seed)
        np.testing.assert_equal(study.decision_responses(stored_grid, 2, 4, progress=False), fresh)
        np.testing.assert_equal(study.composition_grid(stored_grid, 1, [1.0, 2.0], 0.5, progress=False), rows)
        np.testing.assert_equal(study.zero_shot_grid(stored_grid, spec.task, 1, {"time_limit": 0.5}), zero_fresh)
        stored = json.loads(rundir.analysis_path(copy, "composition").read_text())
        rundir.analysis_path(copy, "composition").write_text(json.dumps({**stored, "step": stored["step"] - 1}))
        with pytest.raises(AssertionError, match="computed again"):
            compose()  # of another checkpoint
    with pytest.raises(FileNotFoundError, match="stored without its learned state"):  # and says why it cannot load
        learned.load_agent(rundir.run_path(records, spec.task, spec.agent, spec.seed))


def test_a_run_folder_is_never_overwritten_and_an_export_is_not_resumed(run, tmp_path):
    """Training into a folder that holds a run needs resume; an exported run (no optimiser state or replay) cannot
    be resumed, only started from with init_from. Both fail before anything is written."""
    before = (run / "metrics.jsonl").read_text()
    with pytest.raises(ValueError, match="holds a run already"):
        train(run, RunSpec.create("walker_speed", config=SMALL), Schedule(16), parallel=False, progress=False)
    assert (run / "metrics.jsonl").read_text() == before
    out = tmp_path / "exported"
    assert main(["export", "--logdir", str(run), "--out", str(out)]) == 0
    with pytest.raises(ValueError, match="is an export"):
        train(out, RunSpec.create("walker_speed", config=SMALL), Schedule(16), resume=True, parallel=False,
              progress=False)

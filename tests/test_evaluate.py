import json

import numpy as np
import pytest

from hrl_core.cli import main
from hrl_core.train import train
from tests.helpers import SMALL


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    logdir = tmp_path_factory.mktemp("eval") / "run"
    train("walker_speed", logdir, steps=8, config=SMALL, env_options={"time_limit": 0.5}, parallel=False,
          progress=False)
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


def test_bad_policy_names_the_choices(run, capsys):
    with pytest.raises(SystemExit):
        main(["eval", "--logdir", str(run), "--policy", "greedy"])
    assert "random" in capsys.readouterr().err

"""Horizon measures, goal traces, the goal browser, figures and the study helpers, on small or synthetic data."""

import json

import jax
import numpy as np
import pytest

from hrl_core import claims, rundir, series, study
from hrl_core.agents import make_agent
from hrl_core.analysis.goals import goal_columns, split_episodes
from hrl_core.analysis.horizon import decision_response, discount_horizon, horizon_table, l90
from hrl_core.config import make_config
from hrl_core.envs import make_env
from hrl_core.grid import Grid
from hrl_core.viz import figures
from hrl_core.viz.widgets import goal_browser
from tests.helpers import SMALL


def test_horizon_table_by_hand():
    assert discount_horizon(0.99) == pytest.approx(100.0)
    rows = horizon_table(0.99, episode_steps=100, imagination_horizon=16, k_values=[1, 3, 8])
    assert [r["decisions_per_episode"] for r in rows] == [100, 34, 13]
    assert [r["credit_horizon_decisions"] for r in rows] == pytest.approx([100.0, 100 / 3, 12.5])
    assert [r["imagination_decisions"] for r in rows] == pytest.approx([16.0, 16 / 3, 2.0])
    with pytest.raises(ValueError, match="discount=1"):
        discount_horizon(1)


def test_l90():
    assert l90([1.0, 0, 0, 0]) == 0
    assert l90([0.25, 0.25, 0.25, 0.25]) == 3
    assert l90([0.5, 0.45, 0.05]) == 1
    assert l90([0.0, 0.0]) is None


@pytest.mark.parametrize("agent_name", ["dreamer", "director"])
def test_decision_response_is_zero_before_the_perturbation_and_counts_decisions(agent_name):
    cfg = make_config("tiny", agent=agent_name, **SMALL)
    make = lambda: make_env("walker_speed", seed=5, time_limit=1.0)  # 20 agent steps
    env = make()
    agent = make_agent(cfg, env.obs_space, env.act_space)
    state = agent.init(jax.random.PRNGKey(0))
    result = decision_response(agent, state, make, perturbations=3, window=8, seed=0, progress=False)
    period = cfg.manager_period if agent_name == "director" else 1
    assert result["period"] == period and result["episode_steps"] == 20
    assert result["decisions_per_episode"] == -(-20 // period)
    assert all(t0 % period == 0 for t0 in result["starts"])
    assert len(result["response"]) == 8 and min(result["response"]) >= 0
    # an untrained policy still moves the walker, so a random decision changes later rewards
    assert sum(result["response"]) > 0 and result["l90_steps"] is not None
    # equal perturbations: Director's one goal code holds K steps; the flat agent gets K random actions
    assert result["span"] == cfg.manager_period
    assert 0 <= result["tail_fraction"] <= 1 and result["decayed"] == (result["tail_fraction"] < 0.1)


def test_flat_perturbation_lasts_k_steps():
    """The flat agent's perturbation replaces K = 4 decisions in a row: its rollout differs from the unperturbed one
    at the K perturbed steps' actions, so rewards after t0 + 1 can differ, and each perturbed step counts a decision."""
    from hrl_core.analysis.horizon import rollout_rewards

    cfg = make_config("tiny", agent="dreamer", **SMALL)
    make = lambda: make_env("walker_speed", seed=5, time_limit=1.0)  # noqa: E731
    env = make()
    agent = make_agent(cfg, env.obs_space, env.act_space)
    state = agent.init(jax.random.PRNGKey(0))
    key = jax.random.PRNGKey(3)
    one = rollout_rewards(agent, state, make, 12, 0, perturb_at=4, perturb_key=key, perturb_steps=1)
    four = rollout_rewards(agent, state, make, 12, 0, perturb_at=4, perturb_key=key, perturb_steps=4)
    assert one["decisions"] == four["decisions"] == 12
    assert np.allclose(one["rewards"][:5], four["rewards"][:5])  # the same first random action at t0
    assert not np.allclose(one["rewards"][5:], four["rewards"][5:])


def synthetic_trace(steps=23, period=4, first=(0, 13)):
    rng = np.random.default_rng(0)
    is_first = np.zeros(steps, bool)
    is_first[list(first)] = True
    t = np.concatenate([np.arange(first[1]), np.arange(steps - first[1])])
    return {"image": rng.integers(0, 255, (steps, 8, 8, 3), dtype=np.uint8),
            "goal_image": rng.integers(0, 255, (steps, 8, 8, 3), dtype=np.uint8),
            "state_image": rng.integers(0, 255, (steps, 8, 8, 3), dtype=np.uint8),
            "is_first": is_first, "decision": t % period == 0, "reward": rng.uniform(size=steps),
            "goal_reward": rng.uniform(size=steps), "goal_distance": rng.uniform(size=steps),
            "code": rng.integers(0, 4, (steps, 3))}


def test_split_episodes_and_goal_columns():
    episodes = split_episodes(synthetic_trace())
    assert [len(e["image"]) for e in episodes] == [13, 10]
    cols = goal_columns(episodes[0], period=4, columns=8)
    assert cols["steps"] == [0, 4, 8]  # 12 + 4 runs past the episode's last step
    assert np.array_equal(cols["reached"][1], episodes[0]["image"][8])
    with pytest.raises(ValueError, match="no complete goal period"):
        goal_columns({k: v[:3] for k, v in episodes[1].items()}, period=4)


def test_goal_browser_follows_its_sliders():
    episodes = split_episodes(synthetic_trace())
    browser = goal_browser(episodes, classes=4)
    (episode, time), panels, code, info = browser.children[0].children, browser.children[1], *browser.children[2:]
    frame = panels.children[0].children[1]
    first = frame.value
    time.value = 5
    assert frame.value != first and "step 5 of 12" in info.value and "goal held for 1 steps" in info.value
    episode.value = 1
    assert time.max == 9 and "step 5 of 9" in info.value
    assert code.value.count("<span") == 3
    with pytest.raises(ValueError, match="Director traces"):
        goal_browser([{"image": episodes[0]["image"]}], classes=4)


def test_figures_and_save(tmp_path):
    records = [[{"step": s, "episode/return": s * (1 + seed)} for s in (10, 20, 30)] for seed in range(2)]
    fig = figures.curves_figure({"walker_speed": {"dreamer": records, "director": [[{"step": 5}]]}})
    names = [t.name for t in fig.data]
    assert "dreamer (n=2)" in names and any("no episode/return" in a.text for a in fig.layout.annotations)
    written = figures.save_figure(fig, tmp_path, "curves", png=False)
    assert written == [tmp_path / "curves.html"] and (tmp_path / "plotly.min.js").exists()
    rows = [{"agent": "dreamer", "seed": 0, "split": split, "speed": v, "mean_return": v}
            for split, speeds in (("train", (1.0, 2.0)), ("ood", (4.0,))) for v in speeds]
    fig = figures.generalization_figure(rows)  # the training range the rows' own training split spans
    assert fig.layout.shapes[0].x0 == 1.0 and fig.layout.shapes[0].x1 == 2.0
    assert list(fig.data[-1].x) == [4.0]  # held-out speeds marked


def test_resample_carries_values_forward():
    assert np.allclose(figures.resample([10, 20], [1.0, 2.0], [5, 10, 15, 25])[1:], [1.0, 1.0, 2.0])
    assert np.isnan(figures.resample([10, 20], [1.0, 2.0], [5])[0])


def test_steps_to_threshold_and_summary():
    records = [{"step": s, "episode/return": r} for s, r in ((10, 0.0), (20, 3.0), (30, 6.0), (40, 9.0))]
    assert claims.steps_to_threshold(records, 3.0, smooth=2) == 30
    assert claims.steps_to_threshold(records, 3.0, smooth=1) == 20
    assert claims.steps_to_threshold(records, 100.0) is None
    rows = [{"agent": "a", "split": "train", "mean_return": 4.0}, {"agent": "a", "split": "ood", "mean_return": 2.0}]
    assert claims.generalization_summary(rows)["a"] == {"train": 4.0, "ood": 2.0, "ood_over_train": 0.5}


def test_series_names_runs_and_errors(tmp_path):
    assert series.notebook_names(["04", "01"]) == ["01_train", "04_generalization"]
    assert series.notebook_names(["03_goal_decoding"]) == ["03_goal_decoding"]
    with pytest.raises(ValueError, match="--only='9' is not valid; allowed values: 01, 02"):
        series.notebook_names(["9"])
    with pytest.raises(rundir.MissingRun, match="run notebooks/01_train.ipynb first"):
        rundir.require_run(tmp_path, "walker_speed", "director", 0)
    with pytest.raises(ValueError, match="variants='nope' is not valid"):
        study.finetune_grid(Grid(tmp_path, "maze_train", "director", 0), "maze_novel", 10, variants=["nope"])
    with pytest.raises(ValueError, match=r"start from trained \['director', 'dreamer'\] runs.*add \['director'\]"):
        study.finetune_grid(Grid(tmp_path, "maze_train", "dreamer", 0), "maze_novel", 100)
    assert study.source_agents(["director: scratch", "dreamer: all"]) == ["dreamer"]
    # Tiny preset: one 16-step sequence per environment (2) before the first update; a budget inside it trains nothing.
    assert study.finetune_prefill("tiny") == 32
    with pytest.raises(ValueError, match="steps=32 is not valid for fine-tuning at the tiny preset.*must be > 32"):
        study.finetune_grid(Grid(tmp_path, "maze_train", ["director", "dreamer"], 0), "maze_novel", 32)
    with pytest.raises(ValueError, match="preset='huge' is not valid"):
        series.run_series("huge")
    with pytest.raises(ValueError, match="unknown notebook parameter option.* stpes; allowed options: .*steps"):
        series.run_series("tiny", out=tmp_path, overrides={"stpes": 10})
    assert json.loads(series.write_metrics(tmp_path, {"x": np.float32(1.5)}).read_text()) == {"x": 1.5}


def test_series_on_a_folder_of_trained_runs(tmp_path):
    """--runs: the folder's series.json gives the preset and parameters; runs are read there, fine-tuning runs and
    outputs go under OUT; a folder without series.json is a clear error."""
    with pytest.raises(FileNotFoundError, match="runs=.* has no series.json"):
        series.run_series(runs=tmp_path, out=tmp_path / "out")
    (tmp_path / "series.json").write_text(json.dumps({"preset": "cpu", "parameters": {"seeds": [0]}, "extra": 1}))
    with pytest.raises(ValueError, match="unknown .*series.json option.* extra"):
        series.reference_settings(tmp_path)
    out = tmp_path / "out"
    values = series.parameters_for("05_finetune_ablation", "cpu", out, {"seeds": [0]}, runs=tmp_path)
    assert values["runs"] == str(tmp_path) and values["finetune_runs"] == str(out / "runs")
    assert values["preset"] == "cpu" and values["seeds"] == [0]
    assert series.parameters_for("01_train", "tiny", out)["runs"] == str(out / "runs")
    # A series that trains its own runs starts from the tiny settings; one on stored runs from the notebook's own.
    assert series.parameters_for("02_horizon_analysis", "tiny", out)["window"] == 24
    assert "window" not in series.parameters_for("02_horizon_analysis", "cpu", out, runs=tmp_path)
    assert series.parameters_for("02_horizon_analysis", "S", out)["window"] == 64  # the real scale's on top


def test_committed_notebooks_have_one_parameters_cell_and_no_outputs():
    import nbformat

    for name in series.NOTEBOOKS:
        book = nbformat.read(series.NOTEBOOK_DIR / f"{name}.ipynb", as_version=4)
        tagged = [c for c in book.cells if "parameters" in c.metadata.get("tags", [])]
        assert len(tagged) == 1, name
        assigned = [line.split("=")[0].strip() for line in tagged[0].source.splitlines() if "=" in line]
        assert series.declared_parameters(name) == assigned, name  # papermill parses every parameter line
        assert "out" in assigned and ("runs" in assigned or name == "07_findings"), name  # 07 reads only out
        code = [c for c in book.cells if c.cell_type == "code"]
        assert all(not c.get("outputs") and c.get("execution_count") is None for c in code)


def test_generalization_claims_measure_retention_and_need_learning():
    """Claim (b) as retention: each run's held-out return over its own training-speed return, interpolation (held-out
    speeds inside the training range) and extrapolation (outside) as separate rows. Director keeps 0.9 and 0.6 of its
    training return, DreamerV3 0.5 and 0.3, over 4 seeds (smallest p 0.029): both rows supported once both agents
    pass the gate checked at the training speeds; when it fails, "not learned" naming who fell short."""
    from hrl_core.claims import generalization_claims, retention_scores

    def rows_for(train_multiple):
        rows = []
        for agent, inside, outside in (("director", 0.9, 0.6), ("dreamer", 0.5, 0.3)):
            for seed in range(4):
                train = train_multiple * 10 * (1 + 0.1 * seed)
                rows += [{"agent": agent, "seed": seed, "split": "train", "speed": v, "mean_return": train}
                         for v in (1.0, 3.0)]
                rows += [{"agent": agent, "seed": seed, "split": "ood", "speed": 2.0, "mean_return": inside * train},
                         {"agent": agent, "seed": seed, "split": "ood", "speed": 0.5, "mean_return": outside * train},
                         {"agent": agent, "seed": seed, "split": "ood", "speed": 5.0, "mean_return": outside * train}]
        return rows

    agents = {"director": {}, "dreamer": {}}
    passed = {"learned": True, "agents": agents, "failed": {}}
    failed = {"learned": False, "agents": agents, "failed": {"director": "director did not track the commanded speed"}}
    assert np.allclose(retention_scores(rows_for(5.0), "director", True), 0.9)
    assert np.allclose(retention_scores(rows_for(5.0), "dreamer", False), 0.3)
    interp, extrap = generalization_claims(rows_for(5.0), passed, "test", reps=200)
    assert "interpolation" in interp["claim"] and "extrapolation" in extrap["claim"]
    assert interp["verdict"] == extrap["verdict"] == "supported"
    below = generalization_claims(rows_for(2.0), failed, "test", reps=200)[0]
    assert below["verdict"] == "not learned (director did not track the commanded speed)"


def test_finetuning_runs_share_their_sources_image_size_and_update_rate(tmp_path, monkeypatch):
    """Every fine-tuning run of a seed, the scratch variants too, trains at that seed's source image size and train
    ratio (not the preset's), so the variants differ only in what they start from and what learns."""
    for agent in ("director", "dreamer"):
        source = rundir.run_path(tmp_path, "maze_train", agent, 0)
        (source / "ckpt").mkdir(parents=True)
        (source / "ckpt" / "1").write_text("")
        config = vars(make_config("cpu", agent=agent, image_size=64, train_ratio=64.0))
        (source / "config.json").write_text(json.dumps({"task": "maze_train", "agent": agent, "seed": 0,
                                                        "env_options": {"body": "ball"}, "config": config}))
    trained = {}
    monkeypatch.setattr(study, "_training_job", lambda specs, schedule, progress: trained.update(specs))
    monkeypatch.setattr(study, "run_jobs", lambda *args, **kwargs: None)
    variants = ["director: WM+M (worker frozen)", "dreamer: all", "director: scratch", "dreamer: scratch"]
    study.finetune_grid(Grid(tmp_path, "maze_train", ["director", "dreamer"], 0, "cpu"), "maze_novel", 300, variants,
                        out_runs=tmp_path / "finetuned")
    assert len(trained) == 4
    for spec in trained.values():
        assert (spec.config.image_size, spec.config.train_ratio) == (64, 64.0)
        assert spec.env_options["body"] == "ball"
    assert make_config("cpu").train_ratio != 64.0  # the preset's own would differ


def test_finetune_results_refuse_a_run_without_updates(tmp_path):
    """A fine-tuning run that made no update is its source unchanged: reading it as fine-tuned is an error."""
    run = tmp_path / "finetune-maze_novel-both-dreamer-all-s0"
    run.mkdir()
    rundir.write_summary(run, {"step": 100, "updates": 0})
    with pytest.raises(RuntimeError, match="made no updates in its 100 steps"):
        study.finetune_results({("dreamer: all", "both", 0): run}, 1, 2.0, progress=False)


def test_speed_tracking_gate_by_hand():
    """A run tracks speed when its achieved speed rises with the target and its mean relative error is below half
    the target: achieved (0.8, 1.7, 2.5) at targets (1, 2, 3) -> slope 0.85, error (0.2 + 0.15 + 0.1667) / 3. A
    walker that stands at 0.1 m/s whatever the target earns posture reward but does not track."""
    def rows(achieved):
        return [{"speed": float(v), "mean_forward_speed": a, "mean_return": 50.0} for v, a in zip((1, 2, 3), achieved)]

    out = claims.speed_tracking(rows((0.8, 1.7, 2.5)))
    assert out["slope"] == pytest.approx(0.85) and out["relative_error"] == pytest.approx((0.2 + 0.15 + 0.5 / 3) / 3)
    assert out["tracks"]
    assert not claims.speed_tracking(rows((0.1, 0.1, 0.1)))["tracks"]
    with pytest.raises(ValueError, match="no forward speeds"):
        claims.speed_tracking([{"speed": 1.0, "mean_return": 1.0}, {"speed": 2.0, "mean_return": 1.0}])


def test_evaluations_record_forward_speeds():
    """Each evaluated speed row carries every episode's mean forward speed (the random policy on a short walker)."""
    from hrl_core.evaluate import evaluate

    rows = evaluate(None, None, "walker_speed", "train", 2, env_options={"time_limit": 0.2}, speeds=[1.0],
                    policy="random")
    assert len(rows[0]["forward_speeds"]) == 2 and np.isfinite(rows[0]["mean_forward_speed"])
    assert abs(rows[0]["mean_forward_speed"]) < 1.0  # a random walker does not walk


def test_finetune_threshold_is_fixed_by_the_random_policy_and_censors(tmp_path, monkeypatch):
    """The threshold is threshold_factor x the random policy's mean success on the grade (0.2 and 0.1 over the two
    seeds: 2 x 0.15 = 0.3), whatever the runs reach. Seed 0's running mean of 3 logged successes passes 0.3 at step
    30; seed 1 never does within its budget and is censored (None), not scored as the budget."""
    paths = {}
    for seed, successes in ((0, [0.0, 0.5, 0.5, 1.0]), (1, [0.0, 0.0, 0.0, 0.5])):
        run = tmp_path / f"run-s{seed}"
        run.mkdir()
        rundir.write_summary(run, {"step": 40, "updates": 12})
        (run / "metrics.jsonl").write_text("\n".join(json.dumps({"step": 10 * (i + 1), "episode/return": v})
                                                     for i, v in enumerate(successes)))
        paths["dreamer: all", "both", seed] = run
    chance = {"run-s0": 0.2, "run-s1": 0.1}

    def fake_eval(path, split, episodes, policy="eval", reuse=False):
        value = chance[path.name] if policy == "random" else 0.5
        return {"results": [{"mean_return": value}]}
    monkeypatch.setattr(study, "evaluate_run", fake_eval)
    rows = study.finetune_results(paths, 4, 2.0, progress=False)
    assert [r["threshold"] for r in rows] == pytest.approx([0.3, 0.3])
    assert rows[0]["reached"] and rows[0]["steps_to_threshold"] == 30
    assert not rows[1]["reached"] and rows[1]["steps_to_threshold"] is None
    assert claims.steps_summary(rows) == [{"novelty": "both", "variant": "dreamer: all", "runs": 2, "reached": 1,
                                          "median_steps": None, "budget": 40}]
    with pytest.raises(ValueError, match="threshold_factor=0"):
        study.finetune_results(paths, 4, 0, progress=False)

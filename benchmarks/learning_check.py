"""Learning check: the tiny preset on walker_stand from pixels vs a uniform random policy, same eval seeds.

    python benchmarks/learning_check.py --steps 8000 --logdir outputs/runs/learning_check

Writes the training curve (metrics.jsonl), eval returns and the random baseline to LOGDIR/learning_check.json.
"""

import argparse
import json
import time

import numpy as np


def random_returns(task, episodes, seed, options):
    from hrl_core.envs import make_env

    env = make_env(task, seed=seed, **options)
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(episodes):
        env.reset()
        total, done = 0.0, False
        while not done:
            obs = env.step(rng.uniform(env.act_space.low, env.act_space.high, env.act_space.shape))
            total, done = total + float(obs["reward"]), bool(obs["is_last"])
        out.append(total)
    return out


def main():
    import hrl_core
    from hrl_core.evaluate import evaluate
    from hrl_core.learned import load_agent
    from hrl_core.rundir import RunSpec, read_metrics
    from hrl_core.train import Schedule, train

    p = argparse.ArgumentParser()
    p.add_argument("--task", default="walker_stand")
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--episodes", type=int, default=4)
    p.add_argument("--logdir", default="outputs/runs/learning_check")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    hrl_core.enable_compilation_cache()
    start = time.time()
    train(args.logdir, RunSpec.create(args.task, seed=args.seed),
          Schedule(args.steps, checkpoint_every=2000, log_every=500), resume=True)
    train_minutes = (time.time() - start) / 60
    agent, state, _ = load_agent(args.logdir)
    trained = evaluate(agent, state, args.task, None, args.episodes, seed=1234)[0]["returns"]
    baseline = random_returns(args.task, args.episodes, 1234, {})
    curve = [(r["step"], r["episode/return"]) for r in read_metrics(args.logdir) if "episode/return" in r]
    result = {"task": args.task, "steps": args.steps, "train_minutes": round(train_minutes, 1),
              "trained_mean": float(np.mean(trained)), "trained": trained,
              "random_mean": float(np.mean(baseline)), "random": baseline, "curve": curve}
    with open(f"{args.logdir}/learning_check.json", "w") as f:
        json.dump(result, f, indent=1)
    print(json.dumps({k: v for k, v in result.items() if k != "curve"}, indent=1))


if __name__ == "__main__":
    main()

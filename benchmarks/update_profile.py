"""Where one update's time goes: each piece of the train step jitted and timed on its own, on the same replay-shaped
batch and parameters, against the whole update.

    python benchmarks/update_profile.py [--preset cpu] [--agent dreamer|director] [--repeats 10]

Prints a markdown table: milliseconds per call (median of `repeats` after compiling) and the share of the whole
update. The pieces overlap (the actor's gradient runs the imagination again; the whole update fuses across
pieces), so the shares need not sum to 100%. Run it with nothing else on the machine.
"""

from __future__ import annotations

import argparse
import statistics
import time

import jax
import jax.numpy as jnp


def timed(fn, *args, repeats: int = 10) -> float:
    """Median milliseconds of jit(fn)(*args) after a compile and a warm-up call."""
    compiled = jax.jit(fn).lower(*args).compile()
    jax.block_until_ready(compiled(*args))
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(compiled(*args))
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def pieces(agent, state, batch, key) -> dict:
    """{piece: (fn, args)} of one agent's update, each a pure function of arrays."""
    from hrl_core import nets
    from hrl_core.agents import common
    from hrl_core.world_model import WorldModel, features, imagine, observe, start_continue, world_model_loss

    params, wm = state["params"], agent.wm
    tm = common.time_major(batch)
    k_wm, k_img = jax.random.split(key)
    _, (post, _) = world_model_loss(wm, params["wm"], tm, k_wm)
    start = jax.tree.map(lambda x: x.reshape(-1, *x.shape[2:]), post)
    task = tm["task"].reshape(-1, agent.task_dim) if agent.task_dim else None
    cfg = agent.cfg

    def encoder(p):
        return jnp.mean(wm.apply(p, tm, method=WorldModel.embed) ** 2)

    def posterior_scan(p, embed):
        state0 = wm.initial(tm["action"].shape[1:-1])
        _, states, post_logits, _ = observe(wm, p, embed, tm["action"], tm["is_first"], tm.get("task"), state0, k_wm)
        return jnp.mean(states["deter"] ** 2) + jnp.mean(post_logits)

    def decoder(p, feat):
        return jnp.mean(wm.apply(p, feat, method=WorldModel.decode)["image"] ** 2)

    embed = wm.apply(params["wm"], tm, method=WorldModel.embed)
    feat = features(post, tm.get("task"))
    out = {
        "world model: loss and gradient": (jax.value_and_grad(lambda p: world_model_loss(wm, p, tm, k_wm)[0]),
                                           (params["wm"],)),
        "  image encoder, forward and backward": (jax.value_and_grad(encoder), (params["wm"],)),
        "  posterior scan (16 steps), forward and backward": (jax.value_and_grad(posterior_scan), (params["wm"], embed)),
        "  image decoder, forward and backward": (jax.value_and_grad(decoder), (params["wm"], feat)),
    }
    if hasattr(agent, "actor"):
        def rollout(actor_params):
            def act(carry, latent, t, k):
                mean, std = agent.actor.apply(actor_params, features(nets.sg(latent), task))
                return common.sample_action(k, mean, std), carry, {}
            states, _, _ = imagine(wm, params["wm"], start, task, cfg.horizon, act, (), k_img)
            return jnp.mean(states["deter"])

        def actor(actor_params):
            return agent.actor_loss(actor_params, params["wm"], params["critic"], state["retnorm"], start, task,
                                    k_img, start_continue(tm))[0]
        returns_args = (jnp.ones((cfg.horizon, start["deter"].shape[0])),) * 2 + (jnp.ones((cfg.horizon + 1,
                                                                                           start["deter"].shape[0])),)
        out.update({
            "imagination (8 steps from 256 starts), forward": (rollout, (params["actor"],)),
            "actor: imagination, returns, loss and gradient": (jax.value_and_grad(actor), (params["actor"],)),
            "lambda-returns": (lambda r, c, v: nets.lambda_returns(r, v, c, cfg.discount, cfg.lam), returns_args),
        })
    else:
        def worker(worker_params):
            return agent.worker_loss(worker_params, params, state, start, task, k_img, start_continue(tm))[0]

        def goal_ae(p):
            return agent.goal_ae_loss(p, start["deter"], state["adapt"]["goal_kl"], k_img)[0]
        out.update({
            "goal autoencoder: loss and gradient": (jax.value_and_grad(goal_ae), (params["goal_ae"],)),
            "worker: imagination with the manager, returns, loss and gradient":
                (jax.value_and_grad(worker), (params["worker"],)),
        })
    out["whole update"] = (agent.train_step, (state, batch, key))
    return out


def setup(agent_name: str, preset: str = "cpu"):
    """(agent, initial state, replay-shaped random batch) of a walker_speed agent at `preset`, action repeat 4."""
    from hrl_core.agents import make_agent
    from hrl_core.config import make_config
    from hrl_core.envs import make_env
    from hrl_core.batches import random_batch

    cfg = make_config(preset, agent=agent_name)
    env = make_env("walker_speed", action_repeat=4)
    agent = make_agent(cfg, env.obs_space, env.act_space)
    batch = jax.device_put(random_batch(env.obs_space, env.act_space, cfg))
    env.close()
    return agent, agent.init(jax.random.PRNGKey(0)), batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="cpu")
    parser.add_argument("--agent", default="dreamer", choices=("dreamer", "director"))
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    agent, state, batch = setup(args.agent, args.preset)
    cfg = agent.cfg
    rows = {name: timed(fn, *fn_args, repeats=args.repeats)
            for name, (fn, fn_args) in pieces(agent, state, batch, jax.random.PRNGKey(1)).items()}
    whole = rows["whole update"]
    print(f"{args.preset} preset, {args.agent}, batch {cfg.batch_size}x{cfg.batch_length}, horizon {cfg.horizon}, "
          f"PRNG {jax.config.jax_default_prng_impl}\n")
    print("| piece | ms | share of the update |\n|---|---|---|")
    for name, ms in rows.items():
        print(f"| {name.strip()}{' (part of the above)' if name.startswith('  ') else ''} | {ms:.1f} | "
              f"{ms / whole:.0%} |")


if __name__ == "__main__":
    main()

"""Measurements behind `hrl bench`: environment throughput (and, with the agents, training speed)."""

from __future__ import annotations

import re
import time

import numpy as np


def env_steps_per_second(task: str, num_envs: int = 1, parallel: bool = False, seconds: float = 5.0,
                         **options) -> float:
    """Agent steps per second (summed over environments) under a uniform random policy, after one warm-up step."""
    from hrl_core.envs import BatchedEnv

    with BatchedEnv(task, num_envs, seed=0, parallel=parallel, **options) as env:
        rng = np.random.default_rng(0)
        space = env.act_space
        env.reset()
        env.step(rng.uniform(space.low, space.high, (num_envs, *space.shape)))
        steps, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            env.step(rng.uniform(space.low, space.high, (num_envs, *space.shape)))
            steps += num_envs
        return steps / (time.perf_counter() - start)


def render_difference(task: str = "walker_walk", steps: int = 20, seed: int = 0) -> float:
    """Mean absolute pixel difference (0-255) between the fast and dm_control's default render, same states."""
    from hrl_core.envs import make_env

    fast, default = make_env(task, seed=seed, render="fast"), make_env(task, seed=seed, render="default")
    rng = np.random.default_rng(seed)
    diffs = [np.abs(fast.reset()["image"].astype(float) - default.reset()["image"].astype(float)).mean()]
    for _ in range(steps):
        action = rng.uniform(fast.act_space.low, fast.act_space.high, fast.act_space.shape)
        diffs.append(np.abs(fast.step(action)["image"].astype(float) - default.step(action)["image"].astype(float)).mean())
    return float(np.mean(diffs))


def bench_envs(tasks, seconds: float = 5.0, num_envs: int = 2) -> list[dict]:
    rows = []
    for task in tasks:
        single = env_steps_per_second(task, 1, False, seconds)
        batched = env_steps_per_second(task, num_envs, True, seconds)
        rows.append({"task": task, "single_steps_per_s": round(single, 1),
                     f"batched{num_envs}_steps_per_s": round(batched, 1), "speedup": round(batched / single, 2)})
    return rows


def matmul_peak_gflops(n: int | None = None, repeats: int | None = None) -> float:
    """The default device's float32 matmul rate through XLA (GFLOP/s), the peak the update's rate is compared with.

    Each product waits on the one before (its result is the next input, and the loop blocks on every result), so
    what is timed is the GEMM itself: on a GPU, dispatch is asynchronous, and a loop that blocks only at the end
    times how fast calls are queued. The size and count default to 2048 x 10 on a CPU and 8192 x 20 elsewhere, where
    a 2048 product takes too little time to reach the device's rate. Matmuls run at the configured precision
    (`jax_default_matmul_precision`: on NVIDIA GPUs float32 runs as TF32 unless it is "float32")."""
    import jax
    import jax.numpy as jnp

    cpu = jax.default_backend() == "cpu"
    n = n or (2048 if cpu else 8192)
    repeats = repeats or (10 if cpu else 20)
    a = jax.random.normal(jax.random.PRNGKey(0), (n, n), jnp.float32) / n**0.5  # stays O(1) when multiplied on
    f = jax.jit(lambda x: x @ a)
    x = f(a).block_until_ready()
    start = time.perf_counter()
    for _ in range(repeats):
        x = f(x).block_until_ready()
    return 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9


def xla_flops(compiled) -> float:
    """The FLOPs XLA's cost_analysis() reports for a compiled computation (a while-loop body counts once)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost.get("flops", float("nan")))


def unrolled_flops(fn, *args) -> tuple[float, float, int]:
    """FLOPs of `fn(*args)` counted on a copy traced inside `nets.unrolled_scans()`, so that every `nets.scan`
    iteration is in the graph; XLA's count of the ordinary (rolled) compilation has each scan body once.

    The copy is compiled for counting only, never run. Returns (flops, seconds to lower and compile, loops left in
    the counted HLO besides the random-number generator's: 0 means every scan was unrolled). JAX lowers threefry
    on CPU as a 5-round loop of uint32 operations, which stays rolled; it is about 0.2% of the tiny update's count."""
    import jax

    from hrl_core import nets

    start = time.perf_counter()
    with nets.unrolled_scans():  # a fresh function, so jit traces again (its cache is keyed on the function)
        lowered = jax.jit(lambda *a: fn(*a)).lower(*args)
    # The count is taken on the optimised HLO, before code generation: skipping LLVM's optimisations leaves it
    # unchanged (checked on the tiny and size1m updates) and halves the compile time of the large unrolled graph.
    compiled = lowered.compile(compiler_options={"xla_backend_optimization_level": 0,
                                                 "xla_llvm_disable_expensive_passes": True})
    seconds = time.perf_counter() - start
    return xla_flops(compiled), seconds, loops_left(compiled.as_text())


def loops_left(hlo_text: str) -> int:
    """While loops in optimised HLO text, not counting those of JAX's random-number generator."""
    loops = [line for line in hlo_text.splitlines() if " while(" in line]
    return sum(not re.search(r"threefry|jit\(_(uniform|random_bits|gumbel|normal)", line) for line in loops)


def bench_train(preset: str = "tiny", agent: str = "dreamer", task: str = "walker_speed", updates: int = 5,
                seeds: int = 1, count_flops: bool = True, image_size: int | None = None) -> dict:
    """Updates/s of the jitted train step on a replay-shaped batch, policy steps/s implied by the train ratio,
    FLOPs per update, the fraction of the measured matmul peak, and peak memory.

    With `seeds` > 1 the update is the seed-vectorized one training uses (`jax.vmap` of train_step over stacked
    states, sharded over the local devices as in `train_seeds`): `updates_per_s` is then the rate of group updates,
    which is each seed's rate, and `total_updates_per_s` the seeds' updates together. FLOPs are counted for one
    seed's update (x seeds for the group's work).

    FLOPs per update are counted on a copy of the update compiled with every scan unrolled (`unrolled_flops`):
    XLA's cost_analysis() of the compiled (rolled) update counts each scan body once rather than once per step,
    an undercount kept as `flops_per_update_xla_rolled` for comparison. The timed update is the rolled one, and
    `peak_rss_mb` is read before the counting copy is compiled (`flop_count_peak_rss_mb` after); on an accelerator
    `peak_device_mb` is its allocator's peak. `image_size` overrides the preset's (the task renders at it)."""
    import resource

    import jax

    from hrl_core.agents import make_agent
    from hrl_core.batches import random_batch, seed_sharding, stack, unstack
    from hrl_core.config import make_config
    from hrl_core.envs import make_env
    from hrl_core.validation import check_positive

    check_positive("seeds", seeds)
    cfg = make_config(preset, agent=agent, **({} if image_size is None else {"image_size": image_size}))
    env = make_env(task, size=cfg.image_size)
    ag = make_agent(cfg, env.obs_space, env.act_space)
    sharding = seed_sharding(seeds)
    place = (lambda tree: jax.device_put(tree, sharding)) if sharding is not None else (lambda tree: tree)
    init = jax.jit(ag.init)
    states = [init(jax.random.PRNGKey(i)) for i in range(seeds)]
    state = place(stack(states))
    batch = place(stack([random_batch(env.obs_space, env.act_space, cfg, seed=i) for i in range(seeds)]))
    keys = lambda i: place(jax.random.split(jax.random.PRNGKey(i), seeds))  # noqa: E731
    step = jax.jit(jax.vmap(ag.train_step))
    start = time.perf_counter()
    compiled = step.lower(state, batch, keys(0)).compile()
    compile_s = time.perf_counter() - start
    rolled_flops = xla_flops(compiled) / seeds
    state, metrics = compiled(state, batch, keys(1))
    jax.block_until_ready(metrics)
    start = time.perf_counter()
    for i in range(updates):
        state, metrics = compiled(state, batch, keys(i))
    jax.block_until_ready(metrics)
    per_update = (time.perf_counter() - start) / updates
    params = sum(int(x.size) for x in jax.tree.leaves(states[0]["params"]))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # before the (larger) counting compile
    device_stats = jax.local_devices()[0].memory_stats() or {}
    row = {"preset": preset, "agent": agent, "task": task, "image_size": cfg.image_size, "params": params,
           "seeds": seeds,
           "devices": 1 if sharding is None else len(sharding.device_set),
           "batch": f"{cfg.batch_size}x{cfg.batch_length}", "compile_s": round(compile_s, 1),
           "updates_per_s": round(1 / per_update, 3), "total_updates_per_s": round(seeds / per_update, 3),
           "policy_steps_per_s": round(cfg.batch_size * cfg.batch_length / cfg.train_ratio / per_update, 2),
           "flops_per_update_xla_rolled": rolled_flops, "peak_rss_mb": round(rss_mb, 1)}
    if "peak_bytes_in_use" in device_stats:
        row["peak_device_mb"] = round(device_stats["peak_bytes_in_use"] / 2**20, 1)
    if count_flops:
        peak = matmul_peak_gflops()
        flops, count_compile_s, loops = unrolled_flops(ag.train_step, states[0], unstack(batch, 0),
                                                       jax.random.PRNGKey(0))
        row.update({"flops_per_update": flops, "flop_count_compile_s": round(count_compile_s, 1),
                    "flop_count_loops_left": loops, "achieved_gflops": round(seeds * flops / per_update / 1e9, 1),
                    "matmul_peak_gflops": round(peak, 1),
                    "fraction_of_peak": round(seeds * flops / per_update / 1e9 / peak, 3),
                    "flop_count_peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)})
    return row



def group_matches_alone(preset: str = "tiny", agent: str = "dreamer", task: str = "walker_speed", seeds: int = 2,
                        updates: int = 2) -> dict:
    """The last seed of a vmapped group of `seeds` against the same seed updated alone, same batches and keys: the
    largest parameter difference after `updates` updates. On a CPU the two agree to float rounding; on an NVIDIA GPU
    only at `jax_default_matmul_precision=float32` (its float32 default, TF32, rounds products to 10 mantissa bits),
    which is why tests/test_seeds.py needs JAX_DEFAULT_MATMUL_PRECISION=float32 there."""
    import jax
    import numpy as np

    from hrl_core.agents import make_agent
    from hrl_core.batches import random_batch, stack
    from hrl_core.config import make_config
    from hrl_core.envs import make_env
    from hrl_core.validation import check_positive

    check_positive("seeds", seeds)
    check_positive("updates", updates)
    cfg = make_config(preset, agent=agent)
    env = make_env(task, size=cfg.image_size)
    ag = make_agent(cfg, env.obs_space, env.act_space)
    init = jax.jit(ag.init)
    states = [init(jax.random.PRNGKey(i)) for i in range(seeds)]
    batches = [random_batch(env.obs_space, env.act_space, cfg, seed=i) for i in range(seeds)]
    group_step, alone_step = jax.jit(jax.vmap(ag.train_step)), jax.jit(ag.train_step)
    group, alone, group_batch = stack(states), states[-1], stack(batches)
    for u in range(updates):
        keys = jax.random.split(jax.random.PRNGKey(1000 + u), seeds)
        group, _ = group_step(group, group_batch, keys)
        alone, _ = alone_step(alone, batches[-1], keys[-1])
    pairs = list(zip(jax.tree.leaves(group["params"]), jax.tree.leaves(alone["params"])))
    diff = max(float(np.max(np.abs(np.asarray(g)[-1] - np.asarray(a)))) for g, a in pairs)
    scale = max(float(np.max(np.abs(np.asarray(a)))) for _, a in pairs)
    return {"check": "group_vs_alone", "preset": preset, "agent": agent, "seeds": seeds, "updates": updates,
            "backend": jax.default_backend(), "matmul_precision": str(jax.config.jax_default_matmul_precision),
            "max_abs_param_diff": diff, "max_abs_param": scale, "bitwise_equal": diff == 0.0}

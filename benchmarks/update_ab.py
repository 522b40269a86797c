"""Milliseconds per cpu-preset update with the `hrl_core` of another source tree, for back-to-back comparisons with
an earlier revision (same machine, same virtual environment):

    git worktree add /tmp/before REV
    for r in 1 2; do for tree in /tmp/before .; do python benchmarks/update_ab.py $tree dreamer 8; done; done

Prints one JSON line per call. It builds the agent the way both old and new trees can (`make_config`, `make_env`,
`make_agent`, the replay-shaped random batch), so it runs against revisions older than `update_profile.setup`.
"""

import json
import statistics
import sys
import time

tree, agent_name = sys.argv[1], sys.argv[2]
updates = int(sys.argv[3]) if len(sys.argv) > 3 else 10
sys.path.insert(0, tree)  # that tree's hrl_core, ahead of the installed one

import jax  # noqa: E402

from hrl_core.agents import make_agent  # noqa: E402
from hrl_core.config import make_config  # noqa: E402
from hrl_core.envs import make_env  # noqa: E402

try:
    from hrl_core.batches import random_batch
except ImportError:  # revisions before hrl_core/batches.py
    from hrl_core.train import random_batch

cfg = make_config("cpu", agent=agent_name)
env = make_env("walker_speed", action_repeat=4)
agent = make_agent(cfg, env.obs_space, env.act_space)
state = agent.init(jax.random.PRNGKey(0))
batch = jax.device_put(random_batch(env.obs_space, env.act_space, cfg))
env.close()
step = jax.jit(agent.train_step).lower(state, batch, jax.random.PRNGKey(0)).compile()
jax.block_until_ready(step(state, batch, jax.random.PRNGKey(1)))
times = []
for i in range(updates):
    start = time.perf_counter()
    jax.block_until_ready(step(state, batch, jax.random.PRNGKey(i)))
    times.append(time.perf_counter() - start)
print(json.dumps({"tree": tree, "hrl_core": sys.modules["hrl_core"].__file__, "agent": agent_name,
                  "median_ms": round(1000 * statistics.median(times), 1)}))

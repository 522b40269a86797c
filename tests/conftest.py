import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# The tests run a few updates each of many small configurations, so compiling is most of their time. XLA's CPU
# backend without LLVM's optimisation passes compiles the update about 2x faster and runs it about 3x slower: the
# same operations in the same order (float rounding aside, ~1e-7). Subprocesses the tests start inherit it.
os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_backend_optimization_level=0".strip()

import hrl_core  # noqa: E402  after the environment above

hrl_core.enable_compilation_cache()

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import hrl_core  # noqa: E402  after the environment above

hrl_core.enable_compilation_cache()

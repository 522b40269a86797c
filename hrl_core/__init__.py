"""hrl-workspace core: pixel world-model agents (flat DreamerV3 and hierarchical Director) and their study tools."""

__version__ = "0.1.0"


def _enable_compilation_cache() -> None:
    """Persist XLA compilations across processes (runs, notebooks, tests): the tiny update compiles in ~15 s."""
    import os

    import jax

    path = os.environ.get("HRL_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "hrl-workspace", "jax"))
    if path and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)


_enable_compilation_cache()

"""hrl-workspace core: pixel world-model agents (flat DreamerV3 and hierarchical Director) and their study tools.

Importing the package does no work: it loads neither JAX nor the physics (environment worker processes import it
too). Entry points (the `hrl` command, the notebooks, the tests, grid workers) call `enable_compilation_cache()`."""

__version__ = "0.1.0"


def enable_compilation_cache() -> str | None:
    """Persist XLA compilations across processes (runs, notebooks, tests; the tiny update compiles in ~15 s) in
    $HRL_JAX_CACHE (default ~/.cache/hrl-workspace/jax; empty: off). Returns the folder in use, or None. A folder
    set already (by JAX's own configuration) is kept."""
    import os

    import jax

    path = os.environ.get("HRL_JAX_CACHE", os.path.join(os.path.expanduser("~"), ".cache", "hrl-workspace", "jax"))
    if path and not jax.config.jax_compilation_cache_dir:
        jax.config.update("jax_compilation_cache_dir", path)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 1.0)
    return jax.config.jax_compilation_cache_dir or None

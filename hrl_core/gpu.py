"""A GPU that JAX does not use: `make install` on a GPU machine without `JAX=cuda12` gives CPU-only JAX, which trains
100x slower and turns seed grouping off (`--vectorize auto`), with nothing said. The `hrl` command calls
`warn_if_cpu_only()` once at its start to say so in one line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

HINT = "install JAX with CUDA: make install JAX=cuda12 (docs/gpu.md)"


def listed_gpus() -> list[str]:
    """The GPUs `nvidia-smi -L` lists ("GPU 0: NVIDIA H200 (UUID: ...)"); empty without nvidia-smi or when it fails
    (no driver, no device)."""
    path = shutil.which("nvidia-smi")
    if path is None:
        return []
    try:
        done = subprocess.run([path, "-L"], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return []
    return [line.strip() for line in done.stdout.splitlines() if line.startswith("GPU ")] if done.returncode == 0 else []


def cpu_only_warning() -> str | None:
    """One line when nvidia-smi lists a GPU but JAX's default backend is the CPU; None otherwise, and when the CPU was
    chosen on purpose ($JAX_PLATFORMS without cuda/gpu). JAX is imported only once a GPU is listed."""
    gpus = listed_gpus()
    chosen = os.environ.get("JAX_PLATFORMS", "").strip()
    if not gpus or (chosen and not any(p in chosen for p in ("cuda", "gpu"))):
        return None
    import jax

    if jax.default_backend() != "cpu":
        return None
    name = gpus[0].split(":", 1)[-1].split("(UUID")[0].strip()
    return (f"hrl: warning: nvidia-smi lists {len(gpus)} GPU{'s' if len(gpus) > 1 else ''} ({name}) but JAX "
            f"{jax.__version__} runs on the CPU; {HINT}")


def warn_if_cpu_only(stream=None) -> bool:
    """Print `cpu_only_warning()` to stderr when there is one; whether it did."""
    message = cpu_only_warning()
    if message:
        print(message, file=stream or sys.stderr, flush=True)
    return message is not None

#!/usr/bin/env bash
# Idempotent set-up: the Debian GL libraries for headless rendering, Chromium for PNG figures (kaleido), then
# .venv with the pinned packages.
#
# JAX=cpu|cuda12|cuda13 picks the JAX build: cpu, or the same jax/jaxlib with NVIDIA's CUDA plugin and libraries
# from pip (pyproject.toml's extras; driver >= 525 for cuda12, >= 580 for cuda13). Unset, it keeps the build installed
# last (so `make test` after `make install JAX=cuda12` stays on CUDA), else cpu.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
JAX=${JAX:-$(cat "$VENV/.jax-build" 2>/dev/null || echo cpu)}
case $JAX in
  cpu | cuda12 | cuda13) ;;
  *) echo "error: JAX=$JAX is not valid; allowed values: cpu, cuda12, cuda13" >&2; exit 2 ;;
esac
APT_PACKAGES="libegl1 libegl-mesa0 libgl1-mesa-dri libopengl0 libosmesa6"
OPTIONAL_APT_PACKAGES="chromium"  # without it, figures are written as HTML only

missing=""
for pkg in $APT_PACKAGES; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends $missing
  else
    echo "error: missing Debian packages for headless rendering:$missing" >&2
    echo "install them with: sudo apt-get install$missing" >&2
    exit 1
  fi
fi

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq --no-install-recommends $OPTIONAL_APT_PACKAGES >/dev/null; } ||
      echo "note: could not install $OPTIONAL_APT_PACKAGES; figures will be HTML only" >&2
  else
    echo "note: no Chromium; figures will be HTML only (sudo apt-get install $OPTIONAL_APT_PACKAGES for PNGs)" >&2
  fi
fi

PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)-$JAX"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  # Another build's plugin would stay loaded (a CPU install keeping a CUDA plugin still runs on the GPU): remove it.
  others=$("$VENV/bin/python" -m pip list --format=freeze 2>/dev/null | grep -oE '^jax-cuda1[23]-(plugin|pjrt)' |
           grep -v "^jax-$JAX-" || true)
  [ -z "$others" ] || "$VENV/bin/python" -m pip uninstall -q -y $others
  extras=test
  [ "$JAX" = cpu ] || extras="test,$JAX"
  "$VENV/bin/python" -m pip install -q -e ".[$extras]"
  "$VENV/bin/python" -m pip check
  rm -f "$VENV"/.installed-*
  echo "$JAX" > "$VENV/.jax-build"
  touch "$stamp"
fi
# A GPU that this JAX does not use is the one mistake that costs 100x: say so here, and `hrl` says so at each start.
if nvidia-smi -L 2>/dev/null | grep -q '^GPU '; then
  backend=$(JAX_PLATFORMS= "$VENV/bin/python" -c 'import jax; print(jax.default_backend())' 2>/dev/null || echo none)
  if [ "$backend" = cpu ]; then
    if [ "$JAX" = cpu ]; then
      echo "note: nvidia-smi lists a GPU but JAX is the CPU build: make install JAX=cuda12 (or cuda13, driver >= 580)" >&2
    else
      echo "warning: JAX=$JAX is installed but JAX still runs on the CPU; check the driver (nvidia-smi) and docs/gpu.md" >&2
    fi
  fi
fi
echo "environment ready: $VENV (JAX build: $JAX)"

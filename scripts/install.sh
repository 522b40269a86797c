#!/usr/bin/env bash
# Idempotent set-up: the Debian GL libraries for headless rendering, Chromium for PNG figures (kaleido), then
# .venv with the pinned packages.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
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
stamp="$VENV/.installed-$(sha1sum pyproject.toml | cut -c1-12)"
if [ ! -f "$stamp" ]; then
  "$VENV/bin/python" -m pip install -q --upgrade pip
  "$VENV/bin/python" -m pip install -q -e ".[test]"
  "$VENV/bin/python" -m pip check
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi
echo "environment ready: $VENV"

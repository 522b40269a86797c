# make demo: the main job (the notebook series on the repository's trained reference runs, then one tiny training
# notebook that shows training works from scratch); make test: the developer's test suite (under 20 minutes);
# make test-slow: the long checks (marked slow: the notebook series, real training, Ray, the GPU check, the browser);
# make check: both (CI).
VENV ?= .venv
export MUJOCO_GL ?= egl

.PHONY: install demo test test-slow check bench lab clean

# JAX=cpu|cuda12|cuda13 picks the JAX build (default: the one installed last, else cpu); docs/gpu.md.
install:
	@JAX=$(JAX) bash scripts/install.sh

# The tiny half trains one walker run per agent: the whole tiny series (make test-slow runs it) learns nothing and would
# take most of the demo's time.
demo: install
	$(VENV)/bin/hrl notebooks --runs reference
	$(VENV)/bin/hrl notebooks --preset tiny --only 01 --param 'tasks=["walker_speed"]' --param 'seeds=[0]'

# The developer suite on TEST_WORKERS processes (pytest-xdist), a test file per process: most of a test's time is one
# XLA compile, which uses one core. Each process peaks near 5 GB.
TEST_WORKERS ?= 2

test: install
	$(VENV)/bin/python -m pytest -q -n $(TEST_WORKERS) --dist loadfile -m "not slow" tests

test-slow: install
	$(VENV)/bin/python -m pytest -q -m slow tests

check: test test-slow

bench: install
	$(VENV)/bin/hrl bench envs

# JupyterLab on the workspace with its own settings (lab/): notebooks folder open, venv kernel, no news pop-ups.
lab: install
	$(VENV)/bin/jupyter lab --config=lab/jupyter_lab_config.py $(LAB_ARGS)

clean:
	rm -rf outputs/* .pytest_cache

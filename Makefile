# make demo: the main job (the notebook series end to end on the tiny preset, then on the repository's trained
# reference runs); make test: the test suite.
VENV ?= .venv
export MUJOCO_GL ?= egl

.PHONY: install demo test bench lab clean

install:
	@bash scripts/install.sh

demo: install
	$(VENV)/bin/hrl notebooks --preset tiny
	$(VENV)/bin/hrl notebooks --runs reference

test: install
	$(VENV)/bin/python -m pytest -q tests

bench: install
	$(VENV)/bin/hrl bench envs

# JupyterLab on the workspace with its own settings (lab/): notebooks folder open, venv kernel, no news pop-ups.
lab: install
	$(VENV)/bin/jupyter lab --config=lab/jupyter_lab_config.py $(LAB_ARGS)

clean:
	rm -rf outputs/* .pytest_cache

# make demo: the main job (a small, real, end-to-end run on the tiny preset); make test: the test suite.
VENV ?= .venv
export MUJOCO_GL ?= egl

.PHONY: install demo test bench clean

install:
	@bash scripts/install.sh

demo: install
	$(VENV)/bin/hrl demo

test: install
	$(VENV)/bin/python -m pytest -q tests

bench: install
	$(VENV)/bin/hrl bench envs

clean:
	rm -rf outputs/* .pytest_cache

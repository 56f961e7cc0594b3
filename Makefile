# mcuforge: `make demo` (set up + default pipeline) and `make test` (set up + the whole suite, as CI runs it).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIPELINE ?= fashion
PYTEST_WORKERS ?= 2

.PHONY: demo test setup system-deps venv clean

demo: setup
	$(BIN)/doit run pipeline=$(PIPELINE)

test: setup
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --durations=15

setup: system-deps venv

system-deps:
	@bash scripts/system-deps.sh

venv: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	touch $@

clean:
	rm -rf build

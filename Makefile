# The README's commands. Every target creates venv/ (the folder Pulumi.yaml's
# `virtualenv: venv` uses), installs the requirement files and the project itself in editable
# mode (one import root, see pyproject.toml) when any of them change.
PYTHON ?= python3
VENV := venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JUPYTER_STAMP := $(VENV)/.installed-jupyter
# The directories the type checker reads (pyproject.toml's [tool.pyright] holds its settings).
TYPED := __main__.py infra function local bench notebooks/runbook_lib

.PHONY: test lint typecheck bench demo local jupyter clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt -e .
	touch $(STAMP)

# Interactive Jupyter (jupyterlab) on top of the test tools: only `make local` needs it.
$(JUPYTER_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[jupyter]'
	touch $(JUPYTER_STAMP)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(MAKE) --no-print-directory typecheck

typecheck: $(STAMP)
	$(BIN)/pyright $(TYPED)

test: lint
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python -m bench

demo: $(STAMP)
	$(BIN)/python -m local.demo $(ARGS)

jupyter: $(JUPYTER_STAMP)

local: $(JUPYTER_STAMP)
	$(BIN)/python -m local.serve $(ARGS)

clean:
	rm -rf $(VENV) out .pytest_cache .ruff_cache

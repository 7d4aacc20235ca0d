# Two commands set everything up on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.PHONY: demo test lint typecheck pytest bench docs clean install

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev,optuna,dask,plot,bench,ray,mpi]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/python -m nes_asktell demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy checks the package as it is installed: integrations/ becomes nes_asktell/integrations/
# (pyproject's package-dir mapping), so the lazy names of nes_asktell/__init__.py resolve.
typecheck: $(STAMP)
	rm -rf .typecheck && mkdir -p .typecheck
	cp -R nes_asktell .typecheck/nes_asktell
	cp -R integrations .typecheck/nes_asktell/integrations
	cd .typecheck && ../$(BIN)/mypy --config-file ../pyproject.toml -p nes_asktell

# One BLAS thread per process: the suite runs many small products, often several processes
# at once (dask workers, Optuna processes), where BLAS threads only contend for the 2 cores.
pytest: $(STAMP)
	OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 $(BIN)/python -m pytest $(PYTEST_ARGS)

test: lint typecheck pytest

bench: $(STAMP)
	$(BIN)/python -m benchmarks

$(VENV)/.installed-docs: $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	touch $@

docs: $(VENV)/.installed-docs
	$(BIN)/sphinx-build -W --keep-going -b html docs docs/_build/html

clean:
	rm -rf $(VENV) docs/_build .mypy_cache .ruff_cache .pytest_cache .hypothesis .typecheck

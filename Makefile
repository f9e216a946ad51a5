# odenet: `make reproduce` runs the main job, `make test` the lint and the test suite.
# Both install what they need into .venv first (or into the active virtual environment).
SHELL := /bin/bash
VENV ?= $(if $(VIRTUAL_ENV),$(VIRTUAL_ENV),.venv)
PY := $(VENV)/bin/python
STAMP := $(VENV)/.odenet-installed

.PHONY: install lint test test-slow test-all reproduce reproduce-quick bench clean

install: $(STAMP)

$(STAMP): pyproject.toml requirements-dev.txt
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e . 2>&1 | grep -v "is ignored: it is neither" || true
	$(PY) -c "import torch, torchdiffeq, scipy, h5py, filelock, matplotlib, xarray, h5netcdf, meshio, vtk, hypothesis, odenet, solvers, analysis"
	$(PY) -m ruff --version && $(PY) -m mypy --version
	@touch $(STAMP)

# ruff over the whole tree, mypy over the packages solvers/, odenet/ and analysis/ (config: pyproject.toml)
lint: install
	$(PY) -m ruff check solvers odenet analysis scripts tests
	$(PY) -m mypy solvers odenet analysis

test: lint
	$(PY) -m pytest -m "not slow" -q

test-slow: install
	$(PY) -m pytest -m slow -q || [ $$? -eq 5 ]  # exit 5: no slow test collected

test-all: install
	$(PY) -m pytest -q

reproduce: install
	$(PY) scripts/reproduce_paper.py --out results --overwrite

reproduce-quick: install
	$(PY) scripts/reproduce_paper.py --quick --out results-quick --overwrite

bench: install
	$(PY) scripts/bench_solvers.py

clean:
	rm -rf results results-quick .pytest_cache .mypy_cache .ruff_cache build *.egg-info

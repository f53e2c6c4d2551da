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
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: setup demo test test-all ui show bench clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q $(TORCH_SPEC)
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: setup
	$(BIN)/dagster asset materialize -m dagster_project.definitions --select 'not group:adaptation' > $(DAGSTER_HOME)/demo.log 2>&1 \
		|| (tail -n 60 $(DAGSTER_HOME)/demo.log; exit 1)
	$(BIN)/python -m dagster_project.show

test: setup
	$(BIN)/python -m pytest -q

test-all: setup
	$(BIN)/python -m pytest -q -m ''

ui: setup
	$(BIN)/dagster dev -h $(HOST) -p $(PORT)

show: setup
	$(BIN)/python -m dagster_project.show

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
	rm -rf data $(DAGSTER_HOME)/storage $(DAGSTER_HOME)/history $(DAGSTER_HOME)/schedules $(DAGSTER_HOME)/demo.log

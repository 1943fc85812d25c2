# Two commands do all set-up: `make run` (the dashboard on the demo screen) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

.PHONY: run test test-fast lint bench clean-data

$(STAMP): requirements.txt requirements-dev.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	@rm -f $(VENV)/.installed-*
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/python -m speclet_core serve

test: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadfile  # two processes; a file's tests stay together (shared fixtures)

test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not slow and not e2e and not docker"

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy speclet_core model_store

# Each benchmark is a script (see docs/benchmarks.md); this runs the quick ones and merges the write-ups.
bench: $(STAMP)
	$(BIN)/python benchmarks/bench_ranking.py
	$(BIN)/python benchmarks/bench_queue.py
	$(BIN)/python benchmarks/collect_docs.py

clean-data:
	rm -rf .speclet-data

# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch (on disk on the project's machines); users with GPUs install their own first.
TORCH ?= torch==2.13.0
RUN_DIR ?= runs/tiny
PRESET ?= tiny

.PHONY: demo test test-all install bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q "$(TORCH)"
	$(BIN)/pip install -q -e ".[test]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/ptft prepare $(PRESET)
	$(BIN)/ptft run $(PRESET) --out $(RUN_DIR)
	$(BIN)/ptft export $(RUN_DIR) --format csv
	$(BIN)/ptft analyze $(RUN_DIR) --out $(RUN_DIR)/analysis
	$(BIN)/ptft report $(RUN_DIR) --out $(RUN_DIR)/report.html
	@echo
	@echo "Results:  $(RUN_DIR)/results.sqlite (table: $(RUN_DIR)/results.csv)"
	@echo "Analyses: $(RUN_DIR)/analysis/summary.md"
	@echo "Report:   $(RUN_DIR)/report.html"

# The suite a change must pass: under ~15 minutes on 2 cores.
test: install
	$(BIN)/python -m pytest -q -m "not slow"

# Everything, the slow checks included.
test-all: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python bench/train_throughput.py
	$(BIN)/python bench/eval_throughput.py
	$(BIN)/python bench/engine.py

clean:
	rm -rf $(VENV) runs .pytest_cache

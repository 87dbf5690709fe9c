# Two entry points for a fresh machine: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The CPU build of torch (on disk on the project's machines); users with GPUs install their own first.
TORCH ?= torch==2.13.0
RUN_DIR ?= runs/tiny
PRESET ?= tiny
# Every other dependency at the version the suite was run with (`make lock` refreshes it).
LOCK := requirements.lock
UV ?= uv==0.13.9
# Where the lock resolves torch: its CPU build, so that no CUDA wheels (nvidia-*) enter the lock.
# The project's machines have the wheel on disk; elsewhere point it at a folder or an index page
# that holds the CPU wheel of $(TORCH) (PyTorch publishes one).
TORCH_WHEELS ?= /opt/wheels

.PHONY: demo demo-figure test test-all install lock bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# torch first (its own dependencies held to the lock), then exactly the lock, then ptft itself.
$(VENV)/.installed: pyproject.toml $(LOCK) | $(BIN)/python
	$(BIN)/pip install -q -c $(LOCK) "$(TORCH)"
	$(BIN)/pip install -q -r $(LOCK)
	$(BIN)/pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

# Resolves pyproject.toml's ranges (the `test` extra included) for Python 3.11 into $(LOCK);
# torch is resolved with them but left out of the file, since `make install` installs $(TORCH).
lock: | $(BIN)/python
	$(BIN)/pip install -q "$(UV)"
	echo "$(TORCH)" | $(BIN)/uv pip compile pyproject.toml - --extra test --python-version 3.11 \
		--find-links $(TORCH_WHEELS) --no-emit-package torch --custom-compile-command "make lock" -o $(LOCK)

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

# After `make demo`: the README's figure of what the demo finds, from the demo's own output.
demo-figure:
	cp $(RUN_DIR)/analysis/findings.png docs/img/demo-findings.png

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
	$(BIN)/python bench/methods.py

clean:
	rm -rf $(VENV) runs .pytest_cache

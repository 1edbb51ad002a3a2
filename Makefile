# The README's quick start: `make demo` and `make test`. Both create .venv if missing.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PLUGINS := $(wildcard plugins/autodag-*)
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit slow bench docs clean

$(STAMP): pyproject.toml $(wildcard plugins/autodag-*/pyproject.toml)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,viz,onnx,docs,fusion]' $(foreach p,$(PLUGINS),-e ./$(p))
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/autodag demo

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

# The slow cases (pytest -m slow: long loop graphs, the suite under foreign plugins) run
# in `make slow`, which CI runs after `make test`.
unit: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n auto

slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -n auto

# The documentation site, built offline into site/ (warnings are errors).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

test: lint typecheck unit

# Benchmarks W1-W5 against hand-written baselines (and peers, with '.[bench]'); writes
# benchmarks/RESULTS.md. BENCH_ARGS=--quick for a run of a few minutes.
bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) autodag-demo site

# Two entry points: `make run` and `make test`; both create the virtual environment they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean reference-tools

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/value-exporter demo

lint: $(STAMP)
	$(VENV)/bin/ruff check exporter tests benchmarks
	$(VENV)/bin/mypy exporter

# Real Prometheus 3.x tools (promtool, Prometheus, Alertmanager) that tests compare against.
# A failed download does not stop `make test`: those tests then skip, or fail under .ci/run.
reference-tools:
	-./scripts/fetch-prometheus.sh

test: lint reference-tools
	$(VENV)/bin/pytest -q

bench: $(STAMP)
	$(PY) benchmarks/bench_parse.py
	$(PY) benchmarks/bench_engine.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

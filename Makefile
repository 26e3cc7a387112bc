# Two entry points: `make run` and `make test`; both create the virtual environment they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: run test lint bench clean reference-tools dashboards

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
	-./scripts/install-browser.sh
	$(VENV)/bin/pytest -q

# Regenerate the committed Grafana dashboards from rules/; CI (tests/test_dashboards.py)
# fails when grafana/dashboards/ differs from what this writes.
dashboards: $(STAMP)
	$(VENV)/bin/value-exporter dashboards rules/*.yaml -o grafana/dashboards

# Every benchmark, side by side with prometheus_client and a real Prometheus (fetched by
# reference-tools), in one table; rewrites benchmarks/results.md (about 10 minutes).
bench: $(STAMP) reference-tools
	$(PY) benchmarks/run_all.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# containerkit developer entry points. `make help` lists them.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=

.PHONY: help setup tools docker run-dags test check unit bench clean compose-env

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*##/\t/'

$(VENV)/.installed: pyproject.toml constraints.txt
	@command -v uv >/dev/null || python3 -m pip install -q --user uv==0.13.8 || python3 -m pip install -q uv==0.13.8
	@UV=$$(command -v uv || echo $$HOME/.local/bin/uv); \
	  [ -x $(PY) ] || $$UV venv -q --python python3.11 $(VENV); \
	  $$UV pip install -q --python $(PY) -c constraints.txt -e '.[celery,postgres,dev]'
	@touch $@

setup: $(VENV)/.installed  ## create .venv with the pinned dependencies (constraints.txt)

# Peer linters used only by cross-check tests; checkov cannot share a venv with Airflow 3.3 (cachetools).
.venv-tools/.installed: tools-requirements.in tools-constraints.txt $(VENV)/.installed
	@UV=$$(command -v uv || echo $$HOME/.local/bin/uv); \
	  [ -x .venv-tools/bin/python ] || $$UV venv -q --python python3.11 .venv-tools; \
	  $$UV pip install -q --python .venv-tools/bin/python -c tools-constraints.txt -r tools-requirements.in
	@touch $@

tools: .venv-tools/.installed  ## the checkov tool venv for cross-check tests

docker: setup  ## install/start a Docker engine, compose plugin and base images where possible
	@bash scripts/setup-docker.sh

run-dags: docker  ## the main job: run every reference DAG on an embedded Airflow (SQLite) and print a table
	@$(PY) scripts/run_reference_dags.py

compose-env:  ## write .env for `docker compose up` from this host (socket gid, uid, local images) and the dev secrets
	@python3 scripts/compose_env.py

check: setup  ## ruff, mypy and the layer contracts (import-linter)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	cd provider && ../$(VENV)/bin/mypy --config-file ../pyproject.toml
	cd provider && ../$(VENV)/bin/lint-imports ../pyproject.toml --no-cache

test: docker tools check  ## set up everything and run the whole test suite (what CI runs)
	$(VENV)/bin/pytest -q -p no:cacheprovider --durations=15 $(PYTEST_ARGS)

unit: setup  ## fast unit tests only
	$(VENV)/bin/pytest -q tests/unit $(PYTEST_ARGS)

bench: docker  ## print the benchmark ratios
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(PY) $$b || exit 1; done

clean:  ## remove the venv and caches
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info provider/*.egg-info

# seglake — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
ARGS   ?=
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
WHEEL   := dist/seglake-$(VERSION)-py3-none-any.whl

.DEFAULT_GOAL := help
.PHONY: help setup run test test-slow test-cluster test-deploy lint bench bench-offers bench-scale package docs clean screenshot

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  make %-12s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[spark,dev]'
	touch $@

setup: $(VENV)/.installed ## create .venv, install seglake + dev tools, cache the Delta jars (idempotent)
	$(PY) -m seglake.session --resolve

run: setup ## run the pipeline on the local lake (./lake), generating a sample lake first if empty
	$(PY) -m jobs.run $(ARGS)

test: setup ## run the test suite (pytest, one local Spark session; the slow and cluster tests aside)
	$(PY) -m pytest -q -m "not slow and not cluster" $(ARGS)

test-slow: setup ## run the slow tests (whole real data sets)
	$(PY) -m pytest -q -m slow $(ARGS)

test-cluster: package ## the built package in a fresh virtualenv outside the checkout, and spark-submit to a standalone Spark cluster on 127.0.0.1
	$(PY) -m pytest -q -m cluster $(ARGS)

# The deploy artefacts' tests run in their own venv (Airflow, its Spark provider and
# databricks-sdk: see deploy/requirements.txt), pinned by deploy/constraints-<python>.txt when
# there is one for this Python. --noconftest: tests/conftest.py needs pyspark, which this venv lacks.
DEPLOY_VENV := .venv-deploy
DEPLOY_PYVER = $(shell $(PYTHON) -c 'import sys; print("%d.%d" % sys.version_info[:2])')
DEPLOY_CONSTRAINTS = $(wildcard deploy/constraints-$(DEPLOY_PYVER).txt)

$(DEPLOY_VENV)/.installed: deploy/requirements.txt $(wildcard deploy/constraints-*.txt)
	rm -rf $(DEPLOY_VENV)
	$(PYTHON) -m venv $(DEPLOY_VENV)
	$(DEPLOY_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DEPLOY_VENV)/bin/python -m pip install --quiet -r deploy/requirements.txt $(addprefix -c ,$(DEPLOY_CONSTRAINTS))
	touch $@

test-deploy: $(DEPLOY_VENV)/.installed ## test the Airflow DAG and the Databricks job (own venv: .venv-deploy)
	SEGLAKE_REQUIRE_DEPLOY=1 $(DEPLOY_VENV)/bin/python -m pytest -q --noconftest tests/test_deploy.py $(ARGS)

lint: setup ## ruff (lint + format check) and mypy (strict on transforms/)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check seglake jobs transforms tests bench deploy
	$(VENV)/bin/mypy

bench: setup ## benchmarks: throughput vs. an independent engine, next-best-offer hit rate; writes BENCHMARKS.md
	$(PY) -m bench.run $(ARGS)

bench-scale: setup ## the whole pipeline at 250M receipts against 50M: per-stage times, ratio, peak disk (hours; resumes at the stage it was in; ARGS="--receipts 2M --base 1M" to try it small); writes BENCHMARKS.md
	$(PY) -m bench.scale $(ARGS)

bench-offers: setup ## next-best-offer hit@3 vs. popularity on the Complete Journey sample (5-20 min; ARGS="--data online_retail": Online Retail products, 30 min); writes BENCHMARKS.md
	$(PY) -m bench.offers $(ARGS)

# The zip is the wheel's content without its metadata: the same code and the same conf/ (as seglake/conf).
package: setup ## dist/: the wheel (conf/ as package data), seglake-pyfiles.zip (--py-files) and seglake_submit.py (the entry script)
	rm -rf build $(WHEEL) dist/seglake-pyfiles.zip dist/seglake_submit.py
	$(PY) -m pip wheel --quiet --no-deps -w dist .
	mkdir -p build/pyfiles
	$(PY) -m zipfile -e $(WHEEL) build/pyfiles
	rm -rf build/pyfiles/*.dist-info
	cd build/pyfiles && zip -qrX ../../dist/seglake-pyfiles.zip seglake jobs transforms
	cp seglake/submit.py dist/seglake_submit.py

clean: ## remove the local lake, reports, caches and build output (keeps .venv)
	rm -rf lake reports build dist bench/out .pytest_cache .ruff_cache spark-warehouse *.egg-info
	rm -rf .venv-deploy

# Debian's chromium (apt-get install chromium); the latest report of the local lake, whole page
screenshot: ## docs/report_screenshot.png: the latest report of ./lake in headless Chromium
	report=$$(ls -t lake/reports/segmentation_*.html | head -1) && \
	chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,7000 \
		--screenshot=$(CURDIR)/docs/report_screenshot.png "file://$(CURDIR)/$$report"

docs: setup ## rewrite the README's table reference from the column comments
	$(PY) -m jobs.docs --readme

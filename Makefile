# stockstream — the two commands a fresh machine needs: `make run` and `make test`.
# Both set everything up themselves and are fast the second time (venv, pip cache, ~/.m2).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test test-deploy deploy-deps setup lock system-deps kafka-jars lint typecheck unit integration test-chaos soak bench bench-quick clean stack-down deploy-tools spark-jars

setup: system-deps $(STAMP) kafka-jars deploy-tools spark-jars

system-deps:
	@ops/setup/system-deps.sh

## The versions that were tested, not the newest the ranges allow: requirements/lock.txt (base + dev + spark,
## Linux x86_64, Python 3.11, hashes checked), tools.lock.txt (pip, setuptools, uv). `make lock` refreshes them.
$(STAMP): pyproject.toml requirements/lock.txt requirements/tools.lock.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --require-hashes -r requirements/tools.lock.txt
	$(BIN)/python -m pip install -q --require-hashes -r requirements/lock.txt
	$(BIN)/python -m pip install -q --no-deps --no-build-isolation -e .
	@touch $(STAMP)

LOCK_FLAGS = --python-version 3.11.2 --python-platform x86_64-manylinux_2_28 --generate-hashes \
	--custom-compile-command "make lock" $(if $(UPGRADE),--upgrade)

## Re-resolve the locks from pyproject.toml (+ requirements/constraints.txt): pins kept where they still fit,
## `make lock UPGRADE=1` takes the newest allowed. Needs only PyPI: uv comes pinned from tools.lock.txt.
lock:
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --require-hashes -r requirements/tools.lock.txt
	$(BIN)/uv pip compile -q requirements/tools.in $(LOCK_FLAGS) -o requirements/tools.lock.txt
	$(BIN)/uv pip compile -q pyproject.toml --extra dev --extra spark -c requirements/constraints.txt \
		$(LOCK_FLAGS) -o requirements/lock.txt
	$(BIN)/uv pip compile -q pyproject.toml -c requirements/lock.txt $(LOCK_FLAGS) -o requirements/runtime.lock.txt
	$(BIN)/uv pip compile -q pyproject.toml --extra spark -c requirements/lock.txt $(LOCK_FLAGS) \
		-o requirements/spark.lock.txt

## Pinned deploy-check tools (kustomize, compose-go and BuildKit checkers, ops/tools/*) in .stack/tools.
deploy-tools:
	@mkdir -p .stack/tools
	@go build -C ops/tools/kustomize -o $(CURDIR)/.stack/tools/kustomize sigs.k8s.io/kustomize/kustomize/v5
	@go build -C ops/tools/composecheck -o $(CURDIR)/.stack/tools/composecheck .
	@go build -C ops/tools/dockerfilecheck -o $(CURDIR)/.stack/tools/dockerfilecheck .

kafka-jars: $(STAMP)
	@$(BIN)/python -c "from stockstream.stack.services import Kafka, StackSettings; Kafka(StackSettings()).resolve_jars()"

spark-jars: $(STAMP)
	@$(BIN)/python -c "from spark_jobs.jars import resolve_spark_jars; resolve_spark_jars()"

## The main job: local stack + the whole pipeline on the built-in simulator feed. Ctrl-C stops it.
run: setup
	$(BIN)/stockstream run

## Lint, types and every test tier against the real local stack, on TEST_WORKERS pytest workers (pytest-xdist;
## a test file is one worker's, see tests/conftest.py; TEST_WORKERS=0 runs them in this one process).
TEST_WORKERS ?= 4
test: setup lint typecheck
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder \
		-m "not chaos_full and not soak_full and not containers"

## The images built and run for real with podman (no Docker engine needed): both images, a pipeline
## in containers vs the local stack, a backfill in the Spark image, play kube (docs/deploy.md). Long:
## image builds (cached under podman afterwards) and two Spark backfills.
test-deploy: setup deploy-deps
	$(BIN)/python -m pytest -s -q -p no:cacheprovider -m containers tests/integration/deploy

deploy-deps:
	@ops/setup/deploy-deps.sh

## The full chaos run (200k ticks, every fault, ~25 min; figures in bench/results/chaos-full-<date>.json, which
## docs/chaos.md quotes: `.venv/bin/python -m bench.figures update --run bench/results/chaos-full-<date>.json`).
test-chaos: setup
	$(BIN)/python -m pytest -s -q -p no:cacheprovider -m chaos_full tests/chaos

## The 30-minute soak at 500 ticks/s (bench/results/soak-<date>.json + .png).
soak: setup
	$(BIN)/python -m bench.soak

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy

## Every benchmark, each figure beside its same-run baseline: bench/results/<date>.json + docs/benchmarks.md;
## then the figures of README.md and docs/*.md that quote the previous run are rewritten from this one
## (bench/figures.py; it lists what it kept on an older file and the prose naming the old run, to read again).
bench: setup
	@$(BIN)/stockstream stack up
	$(BIN)/python -m bench.run_all

## The same at small sizes (a few minutes; figures only indicative): bench/results/<date>-quick.json.
bench-quick: setup
	@$(BIN)/stockstream stack up
	BENCH_QUICK=1 $(BIN)/python -m bench.run_all

stack-down: $(STAMP)
	$(BIN)/stockstream stack down

clean: stack-down
	rm -rf .stack .pytest_cache .mypy_cache .ruff_cache

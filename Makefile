# Backlot: `make run` runs the product on its embedded default; `make test` runs the whole suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PYTEST_ARGS ?=

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

.PHONY: uv
uv: ## Install uv (the Python package manager) if it is missing
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 || python3 -m pip install --quiet uv

.PHONY: sync
sync: uv ## Install the locked Python dependencies into .venv
	@$(UV) sync --frozen --quiet

.PHONY: run
run: sync ## Run the whole product on this machine (SQLite, embedded broker, local driver)
	@$(UV) run --frozen backlot run

.PHONY: migrate
migrate: sync ## Bring the control-plane database to the newest migration
	@$(UV) run --frozen backlot migrate

.PHONY: test-deps
test-deps: ## Install the Debian packages the tests need (PostgreSQL, Redis, Chromium)
	@bash infra/testenv/install.sh

.PHONY: services-up
services-up: test-deps ## Start the test PostgreSQL and Redis on loopback
	@python3 -m infra.testenv.services up

.PHONY: services-down
services-down: ## Stop the test PostgreSQL and Redis
	@python3 -m infra.testenv.services down

.PHONY: cluster-build
cluster-build: ## Build the test cluster's binaries from pinned sources (cached; a cold build takes ~15 min)
	@bash infra/cluster/build.sh

.PHONY: cluster-up
cluster-up: cluster-build sync ## Start the real test cluster (etcd, apiserver, controllers, kwok) on loopback
	@$(UV) run --frozen python -m infra.cluster.cluster up

.PHONY: cluster-down
cluster-down: ## Stop the test cluster (its certificates and data are kept)
	@$(UV) run --frozen python -m infra.cluster.cluster down

.PHONY: helm-build
helm-build: ## Build the pinned Helm binary for the chart tests (cached; ~80 s cold)
	@bash infra/deploy/build-helm.sh

.PHONY: catalog-client
catalog-client: ## Install the pinned @backstage/catalog-client for the catalog conformance tests (cached)
	@bash tests/tenant_runtime/conformance/install-client.sh >/dev/null

.PHONY: dex-build
dex-build: ## Build the pinned Dex (the OpenID provider of the SSO tests; cached; ~90 s cold)
	@bash infra/dex/build.sh

.PHONY: stripe-build
stripe-build: ## Build Stripe's official stripe-mock for the billing tests (cached; seconds)
	@bash infra/stripe/build.sh

.PHONY: promtool-build
promtool-build: ## Build the pinned promtool that checks the alert rules (cached; several minutes cold)
	@bash infra/alerts/build-promtool.sh >/dev/null

.PHONY: test
test: test-deps sync cluster-build helm-build catalog-client dex-build stripe-build promtool-build ## Install what the tests need, start the servers, run the suite
	@python3 -m infra.testenv.services up
	@$(UV) run --frozen pytest -m "not bench" $(PYTEST_ARGS)

.PHONY: bench-catalog
bench-catalog: sync ## Catalog benchmark on PostgreSQL (10k; BACKLOT_BENCH_CATALOG_SIZES=10000,100000 for 100k)
	@python3 -m infra.testenv.services up
	@PYTEST_XDIST_WORKER=$${PYTEST_XDIST_WORKER:-bench} $(UV) run --frozen pytest tests/bench/test_catalog_scale.py -m bench -s -p no:cacheprovider

.PHONY: lint
lint: sync ## ruff (lint and format) and mypy
	@$(UV) run --frozen ruff check .
	@$(UV) run --frozen ruff format --check .
	@$(UV) run --frozen mypy

.PHONY: format
format: sync ## Format and fix what ruff can
	@$(UV) run --frozen ruff format .
	@$(UV) run --frozen ruff check --fix .

.PHONY: bench
bench: sync ## Run the benchmarks and print their figures
	@$(UV) run --frozen pytest tests/bench -m bench -s

# Entry points for people and CI. Every target installs what it needs first (scripts/bootstrap.sh):
# deploy, preview and destroy only the program's dependencies; the others the test tooling too.
SHELL := /bin/bash
export PATH := $(CURDIR)/.tools/bin:$(PATH)

STACK ?= dev
PYTEST_ARGS ?=

.PHONY: help setup lock deploy preview destroy test test-unit test-chart test-cluster test-e2e test-project bench lint format docs chart clean

help: ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

setup: ## install the virtualenv (program + test tooling), helm, kubectl and actionlint
	@scripts/bootstrap.sh dev

lock: ## regenerate requirements.lock and requirements-dev.lock (hashes) after editing requirements*.txt
	@scripts/lock.sh

deploy: ## deploy STACK (default dev) with pulumi up (no kube context: onto a local simulated cluster)
	@scripts/pulumi.sh up $(STACK)

preview: ## show what pulumi up would change on STACK
	@scripts/pulumi.sh preview $(STACK)

destroy: ## delete everything STACK created (and the local simulated cluster make deploy started)
	@scripts/pulumi.sh destroy $(STACK)

test: ## run every test tier (project, chart, unit, backup, cluster, e2e), then report each
	@scripts/test.sh $(PYTEST_ARGS)

test-unit: ## the Pulumi program under mocks
	@scripts/test.sh tests/unit $(PYTEST_ARGS)

test-chart: ## the chart rendered by the real helm and validated
	@scripts/test.sh tests/chart $(PYTEST_ARGS)

test-cluster: ## the chart installed into a local kube-apiserver with simulated nodes
	@scripts/test.sh tests/cluster $(PYTEST_ARGS)

test-e2e: ## the real Pulumi engine deploying the stacks onto the local control plane
	@scripts/test.sh tests/e2e $(PYTEST_ARGS)

test-project: ## lint, docs and tooling checks
	@scripts/test.sh tests/project $(PYTEST_ARGS)

bench: setup ## pulumi up / preview against helm install / dry-run on the local control plane
	@.venv/bin/python -m bench.run

lint: setup ## ruff, yamllint and actionlint
	@.venv/bin/ruff check . && .venv/bin/ruff format --check . && .venv/bin/yamllint -s . && actionlint

format: setup ## apply ruff's formatting and safe fixes
	@.venv/bin/ruff check --fix . && .venv/bin/ruff format .

docs: setup ## regenerate the generated docs (values reference; config reference from the settings models)
	@.venv/bin/python scripts/gen_values_reference.py && .venv/bin/python scripts/gen_config_reference.py

chart: ## package the chart into dist/ (helm lint --strict, helm package)
	@scripts/bootstrap.sh tools && scripts/chart-package.sh

clean: ## remove the virtualenv and the project's tools (not the shared Go tool cache)
	rm -rf .venv .tools .pytest_cache .ruff_cache dist

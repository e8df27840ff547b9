# The two commands that matter: `make up` (the platform on this machine) and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help
NPM_STAMP := node_modules/.package-lock.json

.PHONY: help deps build typecheck lint unit test tools clients image crds servers servers-down up down soak bench clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-13s %s\n", $$1, $$2}'

$(NPM_STAMP): package.json package-lock.json
	@echo "==> installing npm dependencies (npm ci)"
	npm ci --no-audit --no-fund
	@touch $@

deps: $(NPM_STAMP) ## Install npm dependencies

build: deps ## Compile every entry point into dist/
	npm run build --silent

typecheck: deps ## Type-check sources and tests (tsc --noEmit)
	npm run typecheck --silent

lint: deps ## ESLint (typescript-eslint strict, type-checked) and Prettier's check; `npm run format` fixes
	npm run lint --silent

unit: deps ## Unit tests only (no servers)
	npx jest --selectProjects unit

tools: ## Build helm, kubeconform, skaffold and promtool from the Go module proxy (cached; first time ~9 min)
	bash test/servers/tools.sh build

image: ## Build the product image from the Dockerfile with buildah (needs root; first time ~70 s with its base)
	bash test/servers/image.sh build

clients: ## Build the real clients' Python environment (Feast SDK, schemathesis) from PyPI (cached; first time ~30 s)
	bash test/clients/python-env.sh build

test: build typecheck lint tools clients ## Every test: unit, then integration against the real servers it starts
	@mkdir -p .local
	npx jest --selectProjects unit --json --outputFile=.local/jest-unit.json
	@# --forceExit: a client library's idle timer (seen once: kafkajs or undici keep-alive, not
	@# reproducible with --detectOpenHandles) must not hold CI after every suite has reported.
	npx jest --selectProjects integration --runInBand --forceExit --json --outputFile=.local/jest-integration.json
	@node test/support/print-summary.js .local/jest-unit.json .local/jest-integration.json

crds: build ## Regenerate crds/featuregroup.yaml (and the chart's copy) from the zod schema
	node dist/crds/generate.js
	node dist/crds/generate.js --out charts/feature-store/crds/featuregroup.yaml

servers: ## Start local Postgres, Kafka and kube-apiserver+etcd (fetched or built and cached on first use)
	bash test/servers/up.sh

servers-down: ## Stop the local servers
	bash test/servers/down.sh

# MODE=local (default): the components as local processes, consumers run by the local runner.
# MODE=pods: the same platform on real pods (test node, image built with buildah, helm install).
MODE ?= local

up: build ## The whole platform on this machine, examples/ applied, a served feature shown (MODE=pods: on real pods, needs root)
ifeq ($(MODE),pods)
	bash test/servers/pods.sh demo
else
	bash test/servers/stack.sh up
endif

down: ## Stop what `make up` started (MODE=pods for the pods)
ifeq ($(MODE),pods)
	bash test/servers/pods.sh down
else
	bash test/servers/stack.sh down
endif

soak: build ## The long fault and hostile-input suite; prints the table (FUZZ_RUNS=20000)
	bash test/soak.sh

bench: build ## Benchmarks (figures printed and written to bench/results/)
	bash bench/run.sh

clean: ## Remove build output and local server state (the server cache in ~/.cache stays)
	rm -rf dist .local

# gate — Makefile. Every target is commented; run `make help` for the list.
#
#   make run     the embedded demo: broker, demo workers and traffic in one process
#   make test    install system deps if missing, then go vet and go test -race
#                (the library module and the dashboards and deploy modules)
#   make bench   benchmarks with -benchmem
#   make fuzz    each fuzz target for $(FUZZTIME)
#   make compare gate vs NATS vs zmq_proxy in separate processes; rewrites BENCHMARKS.md

GO       ?= go
PKGS     ?= ./...
# Modules nested in the repository whose tests need heavy dependencies
# (Prometheus' PromQL parser, compose-go) the library module must not
# require. vet, test and lint run in each of them too.
SUBMODS  ?= dashboards deploy
FUZZTIME ?= 30s
# Stamp the binaries with the commit (`gatectl version`, gaterpc_build_info):
# `go run` records no VCS data of its own. Empty when git is missing.
LDFLAGS  ?= -X github.com/gaterpc/gate/telemetry.revision=$(shell git rev-parse HEAD 2>/dev/null)
# Test timeout per package; CI budget is 90 minutes for everything.
TESTFLAGS ?= -race -count=1 -timeout 15m
# staticcheck runs from the Go module proxy at this pinned version.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

# Extra flags of `make compare` (cd bench && go run . -h lists them).
COMPARE_FLAGS ?=

.PHONY: help deps run test vet bench bench-smoke fuzz lint generate check-generated compare capacity

help: ## list targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

deps: ## install libzmq3-dev, zlib1g-dev, pkg-config and prometheus (promtool, e2e) with apt-get when missing (root), else print the command and fail
	@if pkg-config --exists libzmq zlib 2>/dev/null && command -v promtool >/dev/null && command -v prometheus >/dev/null; then exit 0; fi; \
	pkgs="libzmq3-dev zlib1g-dev pkg-config prometheus"; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "deps: installing $$pkgs"; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y $$pkgs >/dev/null 2>&1 || \
		{ apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y $$pkgs >/dev/null; } || exit 1; \
	else \
		echo "deps: libzmq is missing. Run: sudo apt-get install -y $$pkgs" >&2; exit 1; \
	fi

run: deps ## run the embedded demo (broker + demo workers + light traffic) on local defaults
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/gatectl demo

vet: ## go vet over everything (library module, then each of SUBMODS)
	$(GO) vet $(PKGS)
	@for m in $(SUBMODS); do echo "vet $$m"; (cd $$m && $(GO) vet ./...) || exit 1; done

test: deps vet ## deps, go vet, then go test -race over everything, SUBMODS included (CI runs this)
	$(GO) test $(TESTFLAGS) $(PKGS)
	@for m in $(SUBMODS); do echo "test $$m"; (cd $$m && $(GO) test $(TESTFLAGS) ./...) || exit 1; done
	$(MAKE) --no-print-directory capacity
	$(MAKE) --no-print-directory bench-smoke

bench-smoke: deps ## run every benchmark for one iteration, without timing, so that a broken benchmark fails the build
	@out=$$($(GO) test -run '^$$' -bench . -benchtime 1x $(PKGS) 2>&1) || { echo "$$out"; exit 1; }; \
	echo "bench-smoke: every benchmark ran once"

CAPACITY_STEPS ?= 500000

capacity: deps ## the broker's capacity/flow invariant, CAPACITY_STEPS randomized steps per mode (2 modes) without -race (the race run above does fewer)
	GATE_CAPACITY_STEPS=$(CAPACITY_STEPS) $(GO) test -count=1 -timeout 10m -run '^TestCapacityInvariantRandomized$$' ./broker

bench: deps ## run every benchmark once with -benchmem (compare runs with benchstat)
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)

fuzz: deps ## run each fuzz target for FUZZTIME (make fuzz FUZZTIME=5m)
	@for p in $$($(GO) list $(PKGS)); do \
		for f in $$($(GO) test -list '^Fuzz' $$p 2>/dev/null | grep '^Fuzz'); do \
			echo "fuzz $$p $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$p || exit 1; \
		done; \
	done

compare: deps ## benchmark gate against NATS and zmq_proxy (~9 min on 2 cores, of which ~3 min are the 1 GiB slow reader and the 60 s paused stream), write BENCHMARKS.md and docs/compare.png (make compare COMPARE_FLAGS='-rounds 1 -duration 500ms')
	$(GO) build -o bench/bin/gate-broker ./cmd/gate-broker
	$(GO) build -o bench/bin/gate-demo-worker ./cmd/gate-demo-worker
	cd bench && $(GO) build -o bin/compare . && ./bin/compare -gate-broker bin/gate-broker -gate-demo-worker bin/gate-demo-worker \
		-md ../BENCHMARKS.md -png ../docs/compare.png -json-file bin/compare.json $(COMPARE_FLAGS)

lint: deps ## gofmt -s -l, go vet, staticcheck (after deps: both compile the cgo bindings), tidy go.mod in every module (root, bench, SUBMODS)
	@out=$$(gofmt -s -l .); if [ -n "$$out" ]; then echo "gofmt -s would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) run $(STATICCHECK) $(PKGS)
	@for m in $(SUBMODS); do echo "vet+staticcheck $$m"; (cd $$m && $(GO) vet ./... && $(GO) run $(STATICCHECK) ./...) || exit 1; done
	@$(GO) mod tidy -diff || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	@for m in bench $(SUBMODS); do \
		(cd $$m && $(GO) mod tidy -diff) || { echo "$$m/go.mod/go.sum are not tidy: cd $$m && go mod tidy"; exit 1; }; \
	done
	@if $(GO) list -m all | grep -E '^github.com/(prometheus/prometheus|compose-spec/compose-go)'; then \
		echo "the library module must not require the modules above: move their users into a SUBMODS module"; exit 1; fi

generate: ## regenerate the committed Grafana dashboards (dashboards/*.json; the dashboards module)
	cd dashboards && $(GO) generate .

check-generated: generate ## fail when the committed dashboards differ from the generator
	git diff --exit-code -- dashboards/

# The compose stack on a real Docker engine, without an image registry
# (deploy/README.md). COMPOSE_TIMEOUT bounds the go test: a cold run
# compiles the gate image from scratch in a container.
COMPOSE_TIMEOUT ?= 40m

.PHONY: compose-images compose-test

compose-images: ## build the local base images (build, runtime, prometheus) from Debian packages with debootstrap, once (root)
	@GO=$(GO) deploy/compose-images.sh >/dev/null

compose-test: ## build the image on local Debian base images, start the compose stack (no ui profile) and test it (go test in the deploy module, GATE_COMPOSE_TEST=1)
	@set -e; t0=$$(date +%s); images=$$(GO=$(GO) deploy/compose-images.sh); eval "$$images"; \
	echo "compose-test: base images ready in $$(( $$(date +%s) - t0 ))s"; \
	export GO_IMAGE RUNTIME_IMAGE PROMETHEUS_IMAGE GATE_COMPOSE_TEST=1; \
	cd deploy && $(GO) test -count=1 -v -timeout $(COMPOSE_TIMEOUT) -run '^TestComposeStack$$' .

# Long runs with real processes on 127.0.0.1 (internal/soak, cmd gate-soak);
# the test run covers small sizes. SOAK_FLAGS passes extra flags.
SOAK_FLAGS ?=

.PHONY: soak scale churn

soak: deps ## 1,000,000 echo calls + 10,000 streams through gate-broker and 2 gate-demo-workers; RSS/goroutines sampled; fails on any error or growth
	$(GO) run ./internal/soak/cmd/gate-soak soak $(SOAK_FLAGS)

scale: deps ## 1,000 idle workers + 10,000 idle clients (4 peer processes) on one broker; reports its idle CPU and RSS
	$(GO) run ./internal/soak/cmd/gate-soak scale $(SOAK_FLAGS)

churn: deps ## 5 waves of 5,000 clients that connect, call and leave; the broker's RSS after each wave
	$(GO) run ./internal/soak/cmd/gate-soak churn $(SOAK_FLAGS)

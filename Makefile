# The two set-up commands are `make run` and `make test` (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run test build vet fmt-check lint-openapi bench bench-go bench-load soak services docker-test chromium screenshots fuzz

## run: start Postgres if it is down, then the whole service (HTTP on :8080,
## embedded NATS, audit integrator, relay), creating and migrating the database.
run: services
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/docket serve

## test: formatting, vet, and every test with the race detector, against the
## real Postgres and NATS (started first when down), and the consoles'
## browser tests in Debian's Chromium (installed first when missing;
## their screenshots go to a temporary folder, never docs/; those of a
## failure to a temporary folder the test names).
test: services chromium fmt-check vet
	$(GO) test -race -count=1 -timeout 20m ./...

services:
	@scripts/services-up

chromium:
	@scripts/chromium-up

## screenshots: the consoles over the browser test's seeded data, as PNGs
## under docs/screenshots (referenced by the README).
screenshots: services chromium
	DOCKET_SCREENSHOTS=$(CURDIR)/docs/screenshots $(GO) test -count=1 -run 'InBrowser$$' ./api/console/

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/docket ./cmd/docket

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: the Go benchmarks (ratios against raw Postgres in the same run)
## and the whole-service load test; results in bench-results.txt and
## bench-results.json.
bench: bench-go bench-load

REDOCLY ?= @redocly/cli@2.77.0

## lint-openapi: Redocly's recommended ruleset (.redocly.yaml) over the
## document the server serves (written by the api tests); needs Node and
## npm. `make test` checks the key rules in Go (TestOpenAPILint).
lint-openapi:
	@mkdir -p bin
	DOCKET_OPENAPI_OUT=$(CURDIR)/bin/openapi.json $(GO) test -count=1 -run '^TestOpenAPILint$$' ./api/
	npx --yes $(REDOCLY) lint --config .redocly.yaml bin/openapi.json

bench-go: services
	$(GO) test -run '^$$' -bench . -timeout 30m ./... | tee bench-results.txt

BENCH_PG       ?= postgres://postgres@127.0.0.1:5432
BENCH_DBNAME   ?= docket_bench
BENCH_ADDR     ?= 127.0.0.1:18080
BENCH_NATS     ?= 127.0.0.1:14223
BENCH_DURATION ?= 30s
BENCH_CLIENTS  ?= 32
BENCH_MIX      ?= decisions=70,appeals=10,claims=10,reads=10

## bench-load: the whole-service load test: a fresh `docket serve` on its
## own database, the standard mix at 32 clients, then raw INSERTs at the
## same concurrency; table on stdout, JSON in bench-results.json.
bench-load: services
	$(GO) build -o bin/docket ./cmd/docket
	@if command -v psql >/dev/null; then psql -q '$(BENCH_PG)/postgres' -c 'DROP DATABASE IF EXISTS $(BENCH_DBNAME) WITH (FORCE)'; fi
	@data=$$(mktemp -d); db='$(BENCH_PG)/$(BENCH_DBNAME)?sslmode=disable'; \
	DATABASE_URL=$$db DOCKET_DATA_DIR=$$data DOCKET_EMBEDDED_NATS_ADDR=$(BENCH_NATS) DOCKET_LOG_LEVEL=warn \
	  bin/docket serve --addr $(BENCH_ADDR) 2>bin/bench-server.log & pid=$$!; \
	trap 'kill $$pid; wait $$pid; rm -rf $$data' EXIT; \
	DATABASE_URL=$$db bin/docket bench --wait 30s --url http://$(BENCH_ADDR) --nats-url nats://$(BENCH_NATS) --data-dir $$data \
	  --duration $(BENCH_DURATION) --clients $(BENCH_CLIENTS) --mix $(BENCH_MIX) \
	  --baseline --out bench-results.json --log-level warn

CRASH_KILLS    ?= 300
CRASH_DURATION ?= 10m
CLUSTER_ROUNDS ?= 10
CUT_ROUNDS     ?= 20

## soak: long-running tests kept out of `make test`, among them the crash
## harness's long forms (TestSoakCrash, two serves, and TestSoakReplicas,
## three: at least CRASH_KILLS SIGKILLs over at least CRASH_DURATION each;
## `make test` runs the short forms, 20 and 9 kills) and the NATS cluster
## test's (TestSoakNATSCluster: CLUSTER_ROUNDS rounds of a follower's and
## then the stream leader's loss with the nodes SIGKILLed, then as many shut
## down in-process; `make test`: one round, SIGKILLed) and the cut-off
## test's (TestSoakReplicaCutOff: CUT_ROUNDS cuts of the integrator's and
## the relay's holder from Postgres in turn; `make test`: two).
soak: services
	DOCKET_SOAK=1 CRASH_KILLS=$(CRASH_KILLS) CRASH_DURATION=$(CRASH_DURATION) CLUSTER_ROUNDS=$(CLUSTER_ROUNDS) CUT_ROUNDS=$(CUT_ROUNDS) \
	  $(GO) test -race -count=1 -timeout 60m -run Soak ./...

## docker-test: build the image and start the compose stack where a Docker
## engine exists (this project's CI machine has none; `make test` checks the
## files offline), wait until docket is ready, then remove it all.
DOCKER_PROJECT ?= docket-test
docker-test:
	@command -v docker >/dev/null && docker info >/dev/null 2>&1 || { echo "docker-test: needs a running Docker engine"; exit 1; }
	export POSTGRES_PASSWORD=$$(openssl rand -hex 16) DOCKET_NATS_PASSWORD=$$(openssl rand -hex 16) \
		DOCKET_READER_PASSWORD=$$(openssl rand -hex 16) DOCKET_VERSION=$(VERSION); \
	trap 'docker compose -p $(DOCKER_PROJECT) down -v' EXIT; \
	docker compose -p $(DOCKER_PROJECT) up --build -d && \
	for i in $$(seq 120); do curl -fsS http://127.0.0.1:8080/readyz >/dev/null 2>&1 && break; sleep 1; done && \
	curl -fsS http://127.0.0.1:8080/readyz && \
	docker compose -p $(DOCKER_PROJECT) exec -T docket docket version

## fuzz: every Fuzz target (found with go test -list) in FUZZ_PKGS, each for
## FUZZTIME; the seed corpora (f.Add and testdata/fuzz) already run as
## ordinary tests in `make test`. New failing inputs land in the package's
## testdata/fuzz/FuzzXxx/. Ends with the executions per target.
## FUZZMINIMIZETIME bounds the minimizing of each new input, which is not
## counted as executions (the default 60s starved FuzzVerifyBundle, whose
## goroutines make coverage vary from run to run).
FUZZTIME         ?= 30s
FUZZMINIMIZETIME ?= 2s
FUZZ_PKGS        ?= ./api ./appeals ./appeals/dsa ./audit

fuzz: services
	@summary=$$(mktemp); out=$$(mktemp); trap 'rm -f $$summary $$out' EXIT; \
	for pkg in $(FUZZ_PKGS); do \
	  for t in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz'); do \
	    echo "fuzz: $$pkg $$t for $(FUZZTIME)"; \
	    if ! $(GO) test -run '^$$' -fuzz "^$$t\$$" -fuzztime $(FUZZTIME) -fuzzminimizetime $(FUZZMINIMIZETIME) $$pkg >$$out 2>&1; then cat $$out; exit 1; fi; \
	    execs=$$(grep -o 'execs: [0-9]*' $$out | tail -1 | cut -d' ' -f2); \
	    printf '%-10s %-26s %10s\n' $$pkg $$t $$execs >>$$summary; \
	  done; \
	done; \
	echo; echo "executions per target in $(FUZZTIME):"; cat $$summary

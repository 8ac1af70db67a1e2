# The two set-up commands are `make run` and `make test` (see README.md).
GO      ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)

.PHONY: run test build vet fmt-check bench soak services

## run: start Postgres if it is down, then the whole service (HTTP on :8080,
## embedded NATS, audit integrator, relay), creating and migrating the database.
run: services
	$(GO) run -ldflags "$(LDFLAGS)" ./cmd/docket serve

## test: formatting, vet, and every test with the race detector, against the
## real Postgres and NATS (started first when down).
test: services fmt-check vet
	$(GO) test -race -count=1 -timeout 20m ./...

services:
	@scripts/services-up

build:
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/docket ./cmd/docket

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: the Go benchmarks (domain vs raw INSERT ratios, integration, proofs,
## relay, exports) and the whole-service load test; results in bench-results*.
bench: services
	$(GO) test -run '^$$' -bench . -benchtime 3s -timeout 30m ./... | tee bench-results.txt

## soak: long-running tests kept out of `make test`.
soak: services
	DOCKET_SOAK=1 $(GO) test -race -count=1 -timeout 60m -run Soak ./...

# opentact-facade. The two commands a newcomer needs: `make run` and
# `make test`. Every tool comes through the Go module proxy: buf, the protoc
# plugins and grpcurl are pinned in tools/go.mod and run with `go tool`.

SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
TOOL    := $(GO) tool -modfile=tools/go.mod
BUF     := $(TOOL) buf
BIN     ?= bin
PKG     := github.com/opentact-facade/opentact-facade
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
LDFLAGS := -X $(PKG)/internal/version.Version=$(VERSION) -X $(PKG)/internal/version.Commit=$(COMMIT)

.PHONY: build generate check-generated lint test run clean

## build: both binaries into bin/
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## generate: regenerate gen/ from proto/ (commit the result)
generate:
	$(BUF) generate

## check-generated: fail if gen/ differs from what `make generate` produces
check-generated:
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate --output "$$tmp"; \
	diff -r gen "$$tmp/gen" || { echo 'gen/ is stale: run `make generate` and commit it' >&2; exit 1; }

## lint: buf lint, go vet, gofmt, and a tidy go.mod
lint:
	$(BUF) lint
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) mod tidy -diff

## test: everything CI runs: lint, the gen/ freshness check, and the tests with -race
test: lint check-generated
	$(GO) test -race -count=1 ./...

## run: the facade against the offline sandbox, with ready-to-paste calls
run: build
	@$(TOOL) grpcurl -version >/dev/null 2>&1 || true # build grpcurl now, so the printed command answers at once
	BIN=$(BIN) scripts/run-local.sh

clean:
	rm -rf $(BIN)

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

# The OpenAPI document protoc-gen-openapiv2 writes (every service merged
# into one), and its copy embedded in the binary (served at GET
# /openapi.json).
OPENAPI_GEN   := gen/openapiv2/opentact.swagger.json
OPENAPI_EMBED := internal/openapi/openapi.json

# Imported protos come from Go modules, through the module proxy (buf's
# schema registry is not used); copied, never committed:
# buf/validate/validate.proto from protovalidate, google/api's HTTP
# annotations from grpc-gateway v1, which carries them.
PROTOVALIDATE := github.com/bufbuild/protovalidate@v1.2.2
GOOGLEAPIS    := github.com/grpc-ecosystem/grpc-gateway@v1.16.0
PROTODEPS     := .cache/protodeps
VALIDATE_PROTO := $(PROTODEPS)/buf/validate/validate.proto
HTTP_PROTO     := $(PROTODEPS)/google/api/annotations.proto
# Only our own files are generated and linted.
BUF_PATHS     := --path proto/opentact

# Fuzz targets as package:FuzzName. `make test` runs each for FUZZ_SMOKE,
# a count of inputs rather than a time: Go 1.26's fuzzing coordinator can
# fail a target with "context deadline exceeded" as a -fuzztime duration
# ends on a loaded machine (go.dev/issue/75804, fixed in Go 1.27), and a
# count has no deadline to race. `make fuzz` runs each for FUZZTIME.
FUZZ_TARGETS := ./internal/codec:FuzzAuthResponse ./internal/upstream:FuzzParseCredentials ./internal/upstream:FuzzDecodeAnswer ./internal/upstream:FuzzScrub ./internal/codec:FuzzDecodeDifferential ./internal/callflow:FuzzRoundTrip ./internal/callflow:FuzzRenderParse
FUZZ_SMOKE   ?= 2000x
FUZZTIME     ?= 2m

# buf breaking compares proto/ with this branch.
BREAKING_BRANCH ?= main

.PHONY: protodeps build generate check-generated lint breaking test fuzz fuzz-run bench run clean

## build: the binaries (facade, sandbox, opentactctl) into bin/
build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/ ./cmd/...

## protodeps: the imported protos that come from Go modules
protodeps: $(VALIDATE_PROTO) $(HTTP_PROTO)

# moddir prints the directory of Go module $(1), downloading it first.
moddir = $$($(GO) mod download -json $(1) | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$$/\1/p')

$(VALIDATE_PROTO):
	dir=$(call moddir,$(PROTOVALIDATE)); \
	test -n "$$dir" || { echo 'could not download $(PROTOVALIDATE)' >&2; exit 1; }; \
	mkdir -p $(@D); cp "$$dir/proto/protovalidate/buf/validate/validate.proto" $@; chmod 644 $@

$(HTTP_PROTO):
	dir=$(call moddir,$(GOOGLEAPIS)); \
	test -n "$$dir" || { echo 'could not download $(GOOGLEAPIS)' >&2; exit 1; }; \
	mkdir -p $(@D); cp "$$dir/third_party/googleapis/google/api/annotations.proto" "$$dir/third_party/googleapis/google/api/http.proto" $(@D)/; chmod 644 $(@D)/*.proto

## generate: regenerate gen/ from proto/ (commit the result)
generate: protodeps
	$(BUF) generate $(BUF_PATHS)
	cp $(OPENAPI_GEN) $(OPENAPI_EMBED)

## check-generated: fail if gen/ differs from what `make generate` produces
check-generated: protodeps
	tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	$(BUF) generate $(BUF_PATHS) --output "$$tmp"; \
	diff -r gen "$$tmp/gen" || { echo 'gen/ is stale: run `make generate` and commit it' >&2; exit 1; }; \
	cmp $(OPENAPI_GEN) $(OPENAPI_EMBED) || { echo '$(OPENAPI_EMBED) is stale: run `make generate` and commit it' >&2; exit 1; }

## lint: buf lint, buf breaking against main, go vet, gofmt, a tidy
## go.mod, and the Kubernetes manifests through kubeconform
lint: breaking
	$(BUF) lint $(BUF_PATHS)
	$(GO) vet ./...
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^gen/')); \
	if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted" >&2; exit 1; fi
	$(GO) mod tidy -diff
	$(GO) -C tools mod tidy -diff
	$(GO) -C tools vet ./...
	$(GO) -C tools test ./k8sschema
	GO=$(GO) scripts/kubeconform.sh

## breaking: fail if proto/ breaks what clients of the main branch rely on.
## The branch's tree is built with today's imported protos (never committed).
breaking: protodeps
	@if git rev-parse -q --verify refs/heads/$(BREAKING_BRANCH) >/dev/null; then \
		echo "buf breaking against the branch $(BREAKING_BRANCH)"; \
		tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
		git archive $(BREAKING_BRANCH) | tar -x -C "$$tmp"; \
		mkdir -p "$$tmp/$(PROTODEPS)" && cp -R $(PROTODEPS)/. "$$tmp/$(PROTODEPS)/"; \
		$(BUF) breaking --against "$$tmp"; \
	else \
		echo "buf breaking: no local branch $(BREAKING_BRANCH) to compare with; skipped" >&2; \
	fi

## test: everything CI runs: lint, the gen/ freshness check, the tests with
## -race (a short load test included), and a few seconds of each fuzz target
test: lint check-generated
	$(GO) test -race -count=1 ./...
	$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=$(FUZZ_SMOKE)

## fuzz: each fuzz target for FUZZTIME (2m by default); new crashers land in
## the package's testdata/fuzz/ and become regression tests
fuzz:
	$(MAKE) --no-print-directory fuzz-run FUZZ_FOR=$(FUZZTIME)

fuzz-run:
	@for t in $(FUZZ_TARGETS); do \
		pkg=$${t%%:*}; name=$${t##*:}; \
		echo "fuzz $$name in $$pkg for $(FUZZ_FOR)"; \
		$(GO) test -run='^$$' -fuzz="^$$name\$$" -fuzztime=$(FUZZ_FOR) "$$pkg"; \
	done

## bench: the facade against the sandbox under load, through three doors
## (direct HTTP, facade gRPC, facade REST), and the events stream's
## fan-out, written to docs/benchmarks.md
bench: build
	$(GO) build -o $(BIN)/bench-floor ./bench/floor
	$(GO) run ./bench -facade $(BIN)/opentact-facade -sandbox $(BIN)/opentact-sandbox -floor $(BIN)/bench-floor -out docs/benchmarks.md

## run: the facade against the offline sandbox, with ready-to-paste calls.
## The script builds the two binaries first, and opentactctl and grpcurl
## once the facade answers; Ctrl-C stops it, with exit status 0.
run:
	@GO='$(GO)' BIN='$(BIN)' LDFLAGS='$(LDFLAGS)' scripts/run-local.sh --build

clean:
	rm -rf $(BIN)

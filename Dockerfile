# The opentact-facade image: a static binary on distroless, run as non-root.
#
#   docker build -t opentact-facade \
#     --build-arg VERSION="$(git describe --tags --always --dirty)" \
#     --build-arg COMMIT="$(git rev-parse HEAD)" .
#
# It listens on :9090 (gRPC) and :8080 (REST), all interfaces, and serves
# the probes (/healthz, /readyz) and /metrics on 127.0.0.1:9091, inside the
# container: set OPENTACT_FACADE_ADMIN_ADDR=:9091 (and publish the port) for
# a probe or a scraper outside it. Configure it with the OPENTACT_*
# variables of docs/configuration.md.

# The Go release go.mod asks for (go 1.26.x). The official image keeps
# GOTOOLCHAIN=local, so it builds with this Go and downloads no other.
# --platform=$BUILDPLATFORM: cross-compile natively for each target of a
# multi-platform build instead of emulating the target (needs no cgo).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src

# Modules first, in a layer of their own: it is rebuilt only when go.mod or
# go.sum change, not on every change to the code.
COPY go.mod go.sum ./
RUN go mod download

COPY . .
# Declared here, not earlier, so that a new VERSION or COMMIT does not
# invalidate the module layer above.
ARG VERSION=dev
ARG COMMIT=
# Set by BuildKit to the platform being built; empty means this machine's.
ARG TARGETOS
ARG TARGETARCH
# CGO_ENABLED=0: a static binary, which the libc-less image below needs.
# -trimpath drops local paths; -s -w drop the symbol table and DWARF
# (smaller; panics still print file:line). .git is not sent (.dockerignore),
# so COMMIT is the only source of the revision.
RUN CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH go build -trimpath \
      -ldflags "-s -w -X github.com/opentact-facade/opentact-facade/internal/version.Version=${VERSION} -X github.com/opentact-facade/opentact-facade/internal/version.Commit=${COMMIT}" \
      -o /out/opentact-facade ./cmd/opentact-facade

# No shell or package manager; CA certificates (for https://api.opentact.org)
# and time zone data are included.
FROM gcr.io/distroless/static-debian12:nonroot
ARG VERSION=dev
ARG COMMIT=
LABEL org.opencontainers.image.title="opentact-facade" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${COMMIT}"
COPY --from=build /out/opentact-facade /opentact-facade
# The image's "nonroot" user, by number, so that Kubernetes' runAsNonRoot
# can check it without looking up /etc/passwd.
USER 65532:65532
EXPOSE 9090 8080
ENTRYPOINT ["/opentact-facade"]

#!/usr/bin/env bash
# Validates Kubernetes manifests (deploy/kubernetes/, or the files and
# folders given, relative to the repository) with kubeconform -strict: wrong types, unknown or
# misplaced fields and duplicate keys fail. Exits non-zero on any of them.
#
# It works offline. kubeconform's usual schemas are downloaded from GitHub,
# which this project's machines cannot reach; here they are derived from
# Kubernetes' own OpenAPI document, api/openapi-spec/swagger.json, which
# ships inside the k8s.io/kubernetes Go module. The Go module proxy serves
# that module (a 21 MB zip, checked against the checksum database like any
# module) and the module cache keeps it. tools/k8sschema turns it into
# kubeconform's per-kind schemas in a temporary folder, in a quarter of a
# second.
set -euo pipefail
cd "$(dirname "$0")/.."

# The Kubernetes release whose API the manifests must fit: the oldest minor
# release still supported upstream, so that what passes here also applies
# to newer clusters.
KUBERNETES_VERSION=${KUBERNETES_VERSION:-v1.35.4}
GO=${GO:-go}

schemas=$(mktemp -d)
trap 'rm -rf "$schemas"' EXIT

"$GO" mod download "k8s.io/kubernetes@$KUBERNETES_VERSION"
swagger="$("$GO" env GOMODCACHE)/k8s.io/kubernetes@$KUBERNETES_VERSION/api/openapi-spec/swagger.json"
# -C: the converter lives in the tools module; paths given must be absolute.
"$GO" run -C tools ./k8sschema -in "$swagger" -out "$schemas"

# kustomization.yaml is kustomize's own file, not a Kubernetes resource:
# Kubernetes has no schema for it.
"$GO" tool -modfile=tools/go.mod kubeconform -strict -summary \
	-skip kustomize.config.k8s.io/v1beta1/Kustomization \
	-schema-location "$schemas/{{.ResourceKind}}{{.KindSuffix}}.json" \
	"${@:-deploy/kubernetes/}"

package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/yannh/kubeconform/pkg/resource"
	"github.com/yannh/kubeconform/pkg/validator"
)

// swagger is a small stand-in for Kubernetes' OpenAPI document, with the
// shapes the conversion has to get right: a kind in a dotted API group and
// one in the core group, nested objects, a map, an int-or-string, a
// quantity, and a field called "type".
const swagger = `{"definitions": {
  "io.k8s.apimachinery.pkg.util.intstr.IntOrString": {"type": "string", "format": "int-or-string"},
  "io.k8s.apimachinery.pkg.api.resource.Quantity": {"type": "string"},
  "demo.v1.Widget": {
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": "demo.example.com", "version": "v1", "kind": "Widget"}],
    "properties": {
      "apiVersion": {"type": "string"},
      "kind": {"type": "string"},
      "spec": {"$ref": "#/definitions/demo.v1.WidgetSpec"}
    }
  },
  "demo.v1.WidgetSpec": {
    "type": "object",
    "required": ["replicas"],
    "properties": {
      "replicas": {"type": "integer", "format": "int32"},
      "port": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.util.intstr.IntOrString"},
      "memory": {"$ref": "#/definitions/io.k8s.apimachinery.pkg.api.resource.Quantity"},
      "labels": {"type": "object", "additionalProperties": {"type": "string"}},
      "type": {"type": "string"}
    }
  },
  "core.v1.Gadget": {
    "type": "object",
    "x-kubernetes-group-version-kind": [{"group": "", "version": "v1", "kind": "Gadget"}],
    "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "size": {"type": "integer"}}
  }
}}`

const widget = "apiVersion: demo.example.com/v1\nkind: Widget\n"

// TestSchemasInKubeconform converts the stand-in and validates manifests
// against the result with kubeconform itself, as scripts/kubeconform.sh
// does: it checks the file names kubeconform looks up as much as the rules.
func TestSchemasInKubeconform(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "swagger.json")
	if err := os.WriteFile(in, []byte(swagger), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "schemas")
	if err := run(in, out); err != nil {
		t.Fatal(err)
	}
	v, err := validator.New([]string{out + "/{{.ResourceKind}}{{.KindSuffix}}.json"}, validator.Opts{Strict: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		manifest string
		want     validator.Status
	}{
		{"all fields", widget + "spec: {replicas: 2, port: 8080, memory: 128Mi, labels: {a: b}, type: x}", validator.Valid},
		{"named port, plain-number quantity", widget + "spec: {replicas: 2, port: http, memory: 1}", validator.Valid},
		{"null for a field", widget + "spec: {replicas: 2, labels: null}", validator.Valid},
		{"core group kind", "apiVersion: v1\nkind: Gadget\nsize: 3", validator.Valid},
		{"string for an integer", widget + "spec: {replicas: two}", validator.Invalid},
		{"unknown field in spec", widget + "spec: {replicas: 2, replica: 2}", validator.Invalid},
		{"unknown top-level field", widget + "spce: {replicas: 2}", validator.Invalid},
		{"unknown field in core kind", "apiVersion: v1\nkind: Gadget\nsise: 3", validator.Invalid},
		{"field named type keeps its type", widget + "spec: {replicas: 2, type: [x]}", validator.Invalid},
		{"boolean for an int-or-string", widget + "spec: {replicas: 2, port: true}", validator.Invalid},
		{"missing required field", widget + "spec: {port: 80}", validator.Invalid},
		{"unknown version", "apiVersion: demo.example.com/v2\nkind: Widget\n", validator.Error},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := v.ValidateResource(resource.Resource{Path: tc.name, Bytes: []byte(tc.manifest)})
			if got.Status != tc.want {
				t.Errorf("status %d, want %d (err: %v)", got.Status, tc.want, got.Err)
			}
		})
	}
}

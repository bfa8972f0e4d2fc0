// Command k8sschema turns Kubernetes' own OpenAPI v2 document
// (api/openapi-spec/swagger.json in the k8s.io/kubernetes module) into the
// JSON schemas kubeconform validates against, so that scripts/kubeconform.sh
// needs nothing from outside the Go module proxy.
//
//	k8sschema -in swagger.json -out DIR
//
// DIR gets one _definitions.json, holding every definition of the document,
// and one small file per kind, named as kubeconform's schema-location
// template {{.ResourceKind}}{{.KindSuffix}}.json asks for
// (deployment-apps-v1.json, service-v1.json), that refers to its definition
// in _definitions.json.
//
// The schemas are strict: an object that lists its properties allows no
// others, so kubeconform -strict rejects a misspelt or misplaced field.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// definitionsFile is the file every per-kind schema refers to.
const definitionsFile = "_definitions.json"

// draft4 is the JSON Schema draft kubeconform compiles schemas with.
const draft4 = "http://json-schema.org/draft-04/schema#"

// quantity is the definition of resource quantities ("500m", "128Mi", 2).
// The OpenAPI document types it as a string, but Kubernetes also takes a
// plain number, and nothing in the document marks it: it is known by name.
const quantity = "io.k8s.apimachinery.pkg.api.resource.Quantity"

type schema = map[string]any

// groupVersionKind is one entry of a definition's x-kubernetes-group-version-kind.
type groupVersionKind struct {
	Group, Version, Kind string
}

func main() {
	in := flag.String("in", "", "Kubernetes' OpenAPI v2 document (api/openapi-spec/swagger.json)")
	out := flag.String("out", "", "folder to write the schemas to")
	flag.Parse()
	if *in == "" || *out == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if err := run(*in, *out); err != nil {
		fmt.Fprintln(os.Stderr, "k8sschema:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	raw, err := os.ReadFile(in)
	if err != nil {
		return err
	}
	var doc struct {
		Definitions map[string]schema `json:"definitions"`
	}
	if err := json.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("%s: %w", in, err)
	}
	if len(doc.Definitions) == 0 {
		return fmt.Errorf("%s: no definitions", in)
	}
	kinds, err := kindFiles(doc.Definitions)
	if err != nil {
		return err
	}
	q, ok := doc.Definitions[quantity]
	if !ok {
		return fmt.Errorf("%s: no definition %s", in, quantity)
	}
	q["type"] = []any{"number", "string"}
	for _, s := range doc.Definitions {
		tighten(s)
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	defs := schema{"$schema": draft4, "definitions": doc.Definitions}
	if err := writeJSON(filepath.Join(out, definitionsFile), defs); err != nil {
		return err
	}
	for file, name := range kinds {
		ref := schema{"$schema": draft4, "$ref": definitionsFile + "#/definitions/" + name}
		if err := writeJSON(filepath.Join(out, file), ref); err != nil {
			return err
		}
	}
	return nil
}

// kindFiles maps each kind's schema file name to the definition that
// describes it, from the definitions' x-kubernetes-group-version-kind.
func kindFiles(defs map[string]schema) (map[string]string, error) {
	files := map[string]string{}
	var errs []error
	for name, s := range defs {
		raw, err := json.Marshal(s["x-kubernetes-group-version-kind"])
		if err != nil {
			return nil, err
		}
		var gvks []groupVersionKind
		if err := json.Unmarshal(raw, &gvks); err != nil {
			return nil, fmt.Errorf("%s: x-kubernetes-group-version-kind: %w", name, err)
		}
		for _, gvk := range gvks {
			file := fileName(gvk)
			if other, ok := files[file]; ok && other != name {
				errs = append(errs, fmt.Errorf("%s is claimed by both %s and %s", file, other, name))
			}
			files[file] = name
		}
	}
	if len(files) == 0 {
		errs = append(errs, errors.New("no definition names a kind (x-kubernetes-group-version-kind)"))
	}
	return files, errors.Join(errs...)
}

// fileName is where kubeconform looks for a kind's schema: the kind, the
// first label of the API group (none for the core group), the version, all
// in lower case. It mirrors KindSuffix in kubeconform's pkg/registry.
func fileName(gvk groupVersionKind) string {
	name := gvk.Kind
	if gvk.Group != "" {
		name += "-" + strings.Split(gvk.Group, ".")[0]
	}
	return strings.ToLower(name + "-" + gvk.Version + ".json")
}

// tighten rewrites s and the schemas nested in it for validating manifests:
//   - an object that lists its properties, and does not say what else it
//     takes, takes nothing else (what -strict is for);
//   - every type also admits null, because the API server reads a null as
//     "not set" (a bare `annotations:` in YAML is a null);
//   - an int-or-string (ports, maxUnavailable) takes both, as its name says,
//     where the document types it as a string.
func tighten(s schema) {
	if s["format"] == "int-or-string" {
		delete(s, "format")
		s["type"] = []any{"integer", "string"}
	}
	_, open := s["additionalProperties"]
	if _, listed := s["properties"]; listed && !open && s["x-kubernetes-preserve-unknown-fields"] != true {
		s["additionalProperties"] = false
	}
	switch t := s["type"].(type) {
	case string:
		s["type"] = []any{t, "null"}
	case []any:
		s["type"] = append(t, "null")
	}
	for _, sub := range subschemas(s) {
		tighten(sub)
	}
}

// subschemas returns the schemas nested in s. Only these are walked: a key
// of "properties" is a field name, and a field may well be called "type"
// or "format".
func subschemas(s schema) []schema {
	var subs []schema
	add := func(v any) {
		if sub, ok := v.(schema); ok {
			subs = append(subs, sub)
		}
	}
	if props, ok := s["properties"].(schema); ok {
		for _, p := range props {
			add(p)
		}
	}
	add(s["items"])
	add(s["additionalProperties"]) // false is not a schema and is skipped
	add(s["not"])
	for _, key := range []string{"allOf", "anyOf", "oneOf"} {
		if list, ok := s[key].([]any); ok {
			for _, v := range list {
				add(v)
			}
		}
	}
	return subs
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}

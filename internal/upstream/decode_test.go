package upstream_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// FuzzDecodeAnswer: whatever Opentact sends, reading its envelope never
// panics, and a well-formed answer hands its payload, exactly as sent, to
// the decoder (nil when it has none).
func FuzzDecodeAnswer(f *testing.F) {
	for _, name := range []string{"auth-2020.json", "auth-2024.json", "auth-full.json"} {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"success":true,"payload":{"email":"a@b","email":1,"account":[],"ttl":"x"}}`))
	f.Add([]byte(`{"success":true,"payload":[{"name":"x","ttl":60}]}`))
	f.Add([]byte(`{"success":true}`))
	f.Add([]byte(`{"success":false,"message":"no"}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var got []byte
		called := false
		err := upstream.DecodeAnswer(body, func(p []byte) error {
			called, got = true, bytes.Clone(p)
			return nil
		})
		// What encoding/json reads, where names are exact and unrepeated.
		top, ok := exactMembers(body)
		if !ok || string(top["success"]) != "true" {
			return
		}
		if err != nil || !called {
			t.Fatalf("a well-formed answer failed (%v) or handed no payload", err)
		}
		want := top["payload"]
		if string(want) == "null" {
			want = nil
		}
		if !jsonEqual(got, want) {
			t.Errorf("payload %s, want %s", got, want)
		}
	})
}

// jsonEqual reports whether a and b are the same JSON value, or both
// absent.
func jsonEqual(a, b []byte) bool {
	if len(a) == 0 || len(b) == 0 {
		return len(a) == len(b)
	}
	var x, y any
	dec := func(b []byte, v *any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.UseNumber()
		return d.Decode(v)
	}
	return dec(a, &x) == nil && dec(b, &y) == nil && reflect.DeepEqual(x, y)
}

// exactMembers is a JSON object's members, if it is one in valid UTF-8
// whose names differ even without case (encoding/json would match them
// case-insensitively; Opentact's names are matched exactly).
func exactMembers(b []byte) (map[string]json.RawMessage, bool) {
	if !utf8.Valid(b) {
		return nil, false
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(b, &m) != nil || m == nil {
		return nil, false
	}
	folded := map[string]bool{}
	for k := range m {
		if folded[strings.ToLower(k)] {
			return nil, false
		}
		folded[strings.ToLower(k)] = true
	}
	return m, true
}

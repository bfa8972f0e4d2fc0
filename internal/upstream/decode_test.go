package upstream_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/opentact-facade/opentact-facade/internal/upstream"
)

// BenchmarkDecode decodes Opentact's answers as the client does: the
// envelope and the payload into its endpoint's type. "auth" is the
// documented answer, "auth-full" one with every documented field and
// members carried in Other (testdata/opentact/auth-full.json).
func BenchmarkDecode(b *testing.B) {
	read := func(name string) []byte {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", name))
		if err != nil {
			b.Fatal(err)
		}
		return body
	}
	auth := read("auth-2024.json")
	b.Run("auth", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := upstream.DecodeAnswer(upstream.AuthEndpoint, auth); err != nil {
				b.Fatal(err)
			}
		}
	})
	full := read("auth-full.json")
	b.Run("auth-full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := upstream.DecodeAnswer(upstream.AuthEndpoint, full); err != nil {
				b.Fatal(err)
			}
		}
	})
	list := []byte(`{"success":true,"payload":[` + tokenJSON + `,` + tokenJSON + `,` + tokenJSON + `]}`)
	b.Run("token-list-3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := upstream.DecodeAnswer(upstream.ListTokensEndpoint, list); err != nil {
				b.Fatal(err)
			}
		}
	})
}

const tokenJSON = `{"name":"string","ttl":60,"token":"7VLyaDSQ8W48IETeNBfxbBqwgwzWLTvFojSnLgiXP5X8NSoE","expired_on":"2020-10-26T15:58:28.701Z","uuid":"bac27d93-df33-4e47-b4a1-edfcae0d3654","created_on":"2020-10-26T15:57:28.706Z","modified_on":"2020-10-26T15:57:28.706Z"}`

// FuzzDecodeAnswer: whatever Opentact sends, decoding never panics; a
// well-formed answer with a payload object always decodes, and the
// fields it has as documented are read.
func FuzzDecodeAnswer(f *testing.F) {
	for _, name := range []string{"auth-2020.json", "auth-2024.json", "auth-full.json"} {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "opentact", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body)
	}
	f.Add([]byte(`{"success":true,"payload":{"email":"a@b","email":1,"account":[],"ttl":"x"}}`))
	f.Add([]byte(`{"success":true,"payload":[` + tokenJSON + `]}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		_, _ = upstream.DecodeAnswer(upstream.AuthEndpoint, body)
		_, _ = upstream.DecodeAnswer(upstream.ListTokensEndpoint, body)
		_, _ = upstream.DecodeAnswer(upstream.DeleteAllTokensEndpoint, body)
		// What encoding/json reads, where names are exact and unrepeated.
		top, ok := exactMembers(body)
		if !ok || string(top["success"]) != "true" || len(top["payload"]) == 0 || top["payload"][0] != '{' {
			return
		}
		u, err := upstream.DecodeAnswer(upstream.AuthEndpoint, body)
		if err != nil {
			t.Fatalf("a well-formed answer failed: %v", err)
		}
		payload, ok := exactMembers(top["payload"])
		var email string
		if !ok || json.Unmarshal(payload["email"], &email) != nil {
			return
		}
		if !u.Email.Valid || u.Email.Value != email {
			t.Errorf("email %+v, want %q", u.Email, email)
		}
	})
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

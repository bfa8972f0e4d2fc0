package openapi_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/opentact-facade/opentact-facade/internal/openapi"
)

// repoRoot is two levels up from this package.
const repoRoot = "../.."

func TestEmbeddedDocumentIsTheGeneratedOne(t *testing.T) {
	t.Parallel()
	gen, err := os.ReadFile(filepath.Join(repoRoot, "gen/openapiv2/opentact.swagger.json"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(gen, openapi.Document()) {
		t.Error("the embedded openapi.json differs from gen/openapiv2: run `make generate`")
	}
}

func TestHandlerServesTheDocument(t *testing.T) {
	t.Parallel()
	rec := httptest.NewRecorder()
	openapi.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.json", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	if !bytes.Equal(rec.Body.Bytes(), openapi.Document()) {
		t.Error("the body is not the document")
	}
}

// TestDocumentDescribesCredentialsAndErrors: what a REST client generator
// needs: every credential header as a security scheme, any one of them
// enough, and every error answer typed as google.rpc.Status.
func TestDocumentDescribesCredentialsAndErrors(t *testing.T) {
	t.Parallel()
	var doc struct {
		Swagger             string `json:"swagger"`
		SecurityDefinitions map[string]struct {
			Type string `json:"type"`
			Name string `json:"name"`
			In   string `json:"in"`
		} `json:"securityDefinitions"`
		Security []map[string][]string `json:"security"`
		Paths    map[string]map[string]struct {
			Responses map[string]struct {
				Schema struct {
					Ref string `json:"$ref"`
				} `json:"schema"`
			} `json:"responses"`
		} `json:"paths"`
		Definitions map[string]json.RawMessage `json:"definitions"`
	}
	if err := json.Unmarshal(openapi.Document(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Swagger != "2.0" {
		t.Errorf("swagger %q", doc.Swagger)
	}
	want := map[string][3]string{
		"Basic":              {"basic", "", ""},
		"Bearer":             {"apiKey", "Authorization", "header"},
		"XAuthToken":         {"apiKey", "X-Auth-Token", "header"},
		"XAuthGoogleToken":   {"apiKey", "X-Auth-Google-Token", "header"},
		"XAuthFacebookToken": {"apiKey", "X-Auth-Facebook-Token", "header"},
		"XAuthHA1BToken":     {"apiKey", "X-Auth-HA1B-Token", "header"},
	}
	for name, w := range want {
		got, ok := doc.SecurityDefinitions[name]
		if !ok || [3]string{got.Type, got.Name, got.In} != w {
			t.Errorf("security scheme %s = %+v, want %v", name, got, w)
		}
	}
	if len(doc.Security) != len(want) {
		t.Errorf("security: %d alternatives, want %d (any one credential is enough)", len(doc.Security), len(want))
	}
	for _, alt := range doc.Security {
		if len(alt) != 1 {
			t.Errorf("security alternative %v should name one scheme", alt)
		}
	}
	get, ok := doc.Paths["/v1/auth"]["get"]
	if !ok {
		t.Fatal("no GET /v1/auth")
	}
	for _, code := range []string{"400", "401", "403", "429", "500", "503", "504", "default"} {
		if r, ok := get.Responses[code]; !ok || r.Schema.Ref != "#/definitions/rpcStatus" {
			t.Errorf("response %s = %+v, want the google.rpc.Status schema", code, r)
		}
	}
	if _, ok := doc.Definitions["rpcStatus"]; !ok {
		t.Error("no rpcStatus definition")
	}
}

// TestBufBreakingCatchesABreak: `make breaking` (part of `make lint`)
// fails on a branch that renumbers a field, and passes on one that only
// adds a comment.
func TestBufBreakingCatchesABreak(t *testing.T) {
	if testing.Short() {
		t.Skip("builds buf and clones the repository")
	}
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("no git")
	}
	dir := t.TempDir()
	run := func(name string, args ...string) (string, error) {
		cmd := exec.Command(name, args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	must := func(name string, args ...string) {
		t.Helper()
		if out, err := run(name, args...); err != nil {
			t.Fatalf("%s %v: %v\n%s", name, args, err, out)
		}
	}
	// A repository of its own whose main branch holds today's proto
	// files, committed or not.
	must("git", "init", "-q", "-b", "main")
	files := []string{"go.mod", "buf.yaml", "tools/go.mod", "tools/go.sum"}
	for _, tree := range []string{"proto", ".cache/protodeps"} {
		err := filepath.WalkDir(filepath.Join(repoRoot, tree), func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				rel, _ := filepath.Rel(repoRoot, path)
				files = append(files, rel)
			}
			return err
		})
		if err != nil {
			t.Fatalf("%v (run `make protodeps` first for the imported protos)", err)
		}
	}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(repoRoot, f))
		if err != nil {
			t.Fatalf("%v (run `make protodeps` first for the imported protos)", err)
		}
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	must("git", "add", ".")
	must("git", "commit", "-q", "-m", "main")
	must("git", "checkout", "-q", "-b", "change")
	buf := func() (string, error) {
		return run("go", "tool", "-modfile=tools/go.mod", "buf", "breaking", "--path", "proto/opentact", "--against", ".git#branch=main")
	}

	proto := filepath.Join(dir, "proto/opentact/auth/v1/auth.proto")
	orig, _ := os.ReadFile(proto)
	if err := os.WriteFile(proto, append(orig, []byte("\n// A comment changes nothing.\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, err := buf(); err != nil {
		t.Fatalf("a comment is not a break, yet buf breaking failed: %v\n%s", err, out)
	}
	broken := strings.Replace(string(orig), "optional string email = 2;", "optional string email = 99;", 1)
	if broken == string(orig) {
		t.Fatal("the field to renumber is not in auth.proto any more; update this test")
	}
	if err := os.WriteFile(proto, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := buf()
	if err == nil {
		t.Fatalf("buf breaking passed a renumbered field:\n%s", out)
	}
	if !strings.Contains(out, "email") {
		t.Errorf("buf breaking failed without naming the field:\n%s", out)
	}
}

func TestRouteMatch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		route, path string
		want        bool
	}{
		{"/v1/tokens", "/v1/tokens", true},
		{"/v1/tokens", "/v1/tokens/", true},
		{"/v1/tokens", "/v1/token", false},
		{"/v1/tokens", "/v1/tokens/x", false},
		{"/v1/tokens/{uuid}", "/v1/tokens/u-1", true},
		{"/v1/tokens/{uuid}", "/v1/tokens", false},
		{"/v1/tokens/{uuid}", "/v1/tokens//", false},
		{"/v1/tokens/{uuid}", "/v1/tokens/a/b", false},
		{"/v1/tokens:delete", "/v1/tokens:delete", true},
		{"/v1/tokens:delete", "/v1/tokens", false},
	} {
		if got := (openapi.Route{Path: tc.route}).Match(tc.path); got != tc.want {
			t.Errorf("%s matches %s: %v, want %v", tc.route, tc.path, got, tc.want)
		}
	}
}

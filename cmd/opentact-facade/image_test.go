package main

import (
	"bufio"
	"os"
	"os/exec"
	"path"
	"strings"
	"testing"
)

// There is no Docker engine to build the image with here, so these check
// by reading: what the issue asks of the Dockerfile, and that the build
// context .dockerignore lets through holds every package the binary needs.

func TestDockerfileIsStaticDistrolessNonRoot(t *testing.T) {
	t.Parallel()
	b, err := os.ReadFile("../../Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	var froms []string
	var user, entrypoint string
	var static bool
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 || strings.HasPrefix(f[0], "#") {
			continue
		}
		switch strings.ToUpper(f[0]) {
		case "FROM":
			froms = append(froms, line)
		case "USER":
			user = f[1]
		case "ENTRYPOINT":
			entrypoint = line
		case "RUN":
			if strings.Contains(line, "CGO_ENABLED=0") && strings.Contains(line, "go build") {
				static = true
			}
		}
	}
	if len(froms) < 2 {
		t.Errorf("want a multi-stage build, got FROM lines %q", froms)
	} else if last := froms[len(froms)-1]; !strings.Contains(last, "gcr.io/distroless/static") || !strings.Contains(last, "nonroot") {
		t.Errorf("final stage %q, want distroless static nonroot (no shell)", last)
	}
	if !static {
		t.Error("no `CGO_ENABLED=0 go build`: the binary would not be static")
	}
	if user == "" || strings.HasPrefix(user, "0") || strings.HasPrefix(user, "root") {
		t.Errorf("USER %q, want a non-root user by number", user)
	}
	if !strings.Contains(entrypoint, `["/opentact-facade"]`) {
		t.Errorf("ENTRYPOINT %q, want the binary in exec form (there is no shell)", entrypoint)
	}
}

func TestDockerContextHoldsEveryPackageTheBinaryNeeds(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if .Module}}{{if .Module.Main}}{{.Dir}}{{end}}{{end}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	root, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}").Output()
	if err != nil {
		t.Fatal(err)
	}
	rootDir := strings.TrimSpace(string(root))
	allowed := dockerAllowed(t)
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		dir := strings.TrimPrefix(strings.TrimPrefix(sc.Text(), rootDir), "/")
		if dir == "" {
			continue
		}
		top := strings.SplitN(dir, "/", 2)[0] + "/"
		if !allowed[top] {
			t.Errorf("the binary needs %s, but .dockerignore keeps %s out of the build context", dir, top)
		}
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if !allowed[f] {
			t.Errorf(".dockerignore keeps %s out of the build context", f)
		}
	}
}

// dockerAllowed reads the allow-list (!entries) of .dockerignore.
func dockerAllowed(t *testing.T) map[string]bool {
	b, err := os.ReadFile("../../.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(strings.TrimSpace(line), "!"); ok {
			allowed[path.Clean(rest)+map[bool]string{true: "/", false: ""}[strings.HasSuffix(rest, "/")]] = true
		}
	}
	return allowed
}

// TestBinaryLinksNoTestPackages: nothing that exists for tests or
// benchmarks ships in the binary (grpc's test packages such as bufconn,
// testing, httptest).
func TestBinaryLinksNoTestPackages(t *testing.T) {
	t.Parallel()
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "google.golang.org/grpc/test/") || strings.Contains(pkg, "/internal/testpki") ||
			pkg == "testing" || pkg == "net/http/httptest" || strings.HasSuffix(pkg, "/faultupstream") {
			t.Errorf("the binary links %s", pkg)
		}
	}
}

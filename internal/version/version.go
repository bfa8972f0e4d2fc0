// Package version tells which build of the facade is running. The Makefile
// stamps Version and Commit with -ldflags; a plain `go build` or `go install`
// falls back to what the Go toolchain recorded in the binary.
package version

import (
	"runtime"
	"runtime/debug"
	"sync"
)

// Version is the release version, e.g. "v0.1.0"; "dev" when not stamped.
var Version = "dev"

// Commit is the VCS revision the binary was built from, when known.
var Commit = ""

var fromBuildInfo = sync.OnceFunc(func() {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if Version == "dev" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		Version = info.Main.Version
	}
	if Commit == "" {
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				Commit = s.Value
			}
		}
	}
})

// String returns the version, with the commit when known.
func String() string {
	fromBuildInfo()
	if Commit == "" {
		return Version
	}
	return Version + " (" + Commit + ")"
}

// Current is Version, after the fallback to Go's build info.
func Current() string {
	fromBuildInfo()
	return Version
}

// UserAgent is the User-Agent the facade sends to Opentact.
func UserAgent() string {
	fromBuildInfo()
	return "opentact-facade/" + Version
}

// GoVersion is the Go toolchain the binary was built with.
func GoVersion() string { return runtime.Version() }

// CommitOrUnknown is Commit, or "unknown" when the build recorded none.
func CommitOrUnknown() string {
	fromBuildInfo()
	if Commit == "" {
		return "unknown"
	}
	return Commit
}

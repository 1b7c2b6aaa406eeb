package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestResolveLinkFlagsWin(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v0.0.1"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "feedface"}, {Key: "vcs.time", Value: "2020-01-01T00:00:00Z"}}}
	got := resolve("v1.2.3", "abc123", "2026-01-02T03:04:05Z", bi)
	want := Info{Version: "v1.2.3", Commit: "abc123", Date: "2026-01-02T03:04:05Z", GoVersion: "go1.99"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
}

func TestResolveFallsBackToVCS(t *testing.T) {
	bi := &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "(devel)"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "feedface"}, {Key: "vcs.time", Value: "2020-01-01T00:00:00Z"},
			{Key: "vcs.modified", Value: "true"}}}
	got := resolve("", "", "", bi)
	want := Info{Version: "devel", Commit: "feedface-dirty", Date: "2020-01-01T00:00:00Z", GoVersion: "go1.99"}
	if got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	// A module version (go install m@v1.0.0) is used when the link flags set none.
	bi = &debug.BuildInfo{GoVersion: "go1.99", Main: debug.Module{Version: "v1.0.0"}}
	if got := resolve("", "", "", bi); got.Version != "v1.0.0" || got.Commit != Unknown || got.Date != Unknown {
		t.Fatalf("module version build: %+v", got)
	}
}

func TestResolveWithoutBuildInfo(t *testing.T) {
	got := resolve("", "", "", nil)
	if got.Version != "devel" || got.Commit != Unknown || got.Date != Unknown || !strings.HasPrefix(got.GoVersion, "go") {
		t.Fatalf("got %+v", got)
	}
	if s := got.String(); !strings.Contains(s, "commit unknown") || !strings.Contains(s, got.GoVersion) {
		t.Fatalf("String() = %q", s)
	}
}

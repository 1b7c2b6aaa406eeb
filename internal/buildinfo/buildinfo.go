// Package buildinfo reports the version, commit, build date and Go version of the
// running ledgervault binary.
//
// The build sets them at link time (make build does):
//
//	go build -ldflags "-X github.com/ledgervault/ledgervault/internal/buildinfo.Version=v1.2.3 \
//	    -X github.com/ledgervault/ledgervault/internal/buildinfo.Commit=0123abc \
//	    -X github.com/ledgervault/ledgervault/internal/buildinfo.Date=2026-01-02T03:04:05Z"
//
// What is not set falls back to what the Go toolchain recorded in the binary: the
// module version, and the VCS revision and commit time (vcs.revision, vcs.time,
// vcs.modified) of a build inside a checkout.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version, Commit and Date are set at link time with -ldflags -X (see the package
// documentation); empty means "not set", and Get falls back to the build information
// the Go toolchain recorded.
var (
	Version = ""
	Commit  = ""
	Date    = ""
)

// Unknown is the value of a field that neither the link flags nor the toolchain's
// build information provide.
const Unknown = "unknown"

// Info is what is known about the build of the running binary.
type Info struct {
	// Version is the release version (e.g. v1.2.3), or "devel" for an untagged build.
	Version string `json:"version"`
	// Commit is the VCS revision, with "-dirty" appended when the checkout had
	// uncommitted changes, or Unknown.
	Commit string `json:"commit"`
	// Date is when the binary was built (from the link flags) or, failing that, the
	// commit time; Unknown when neither is known.
	Date string `json:"date"`
	// GoVersion is the Go toolchain that built the binary.
	GoVersion string `json:"go_version"`
}

// Get returns the build information of the running binary.
func Get() Info {
	bi, _ := debug.ReadBuildInfo()
	return resolve(Version, Commit, Date, bi)
}

// resolve combines the link-time values with the toolchain's build information bi
// (nil when the binary has none).
func resolve(version, commit, date string, bi *debug.BuildInfo) Info {
	info := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version()}
	if bi == nil {
		return fill(info)
	}
	if bi.GoVersion != "" {
		info.GoVersion = bi.GoVersion
	}
	if info.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		info.Version = bi.Main.Version
	}
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if info.Commit == "" && rev != "" {
		info.Commit = rev
		if modified {
			info.Commit += "-dirty"
		}
	}
	if info.Date == "" {
		info.Date = at
	}
	return fill(info)
}

func fill(info Info) Info {
	if info.Version == "" {
		info.Version = "devel"
	}
	if info.Commit == "" {
		info.Commit = Unknown
	}
	if info.Date == "" {
		info.Date = Unknown
	}
	return info
}

// String returns the one-line form: "VERSION (commit COMMIT, built DATE, GOVERSION)".
func (i Info) String() string {
	return fmt.Sprintf("%s (commit %s, built %s, %s)", i.Version, i.Commit, i.Date, i.GoVersion)
}

// String returns Get().String().
func String() string { return Get().String() }

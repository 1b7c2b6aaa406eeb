// Package buildinfo reports the version of the running ledgervault binary.
package buildinfo

import "runtime/debug"

// Version is set at link time with -ldflags "-X .../internal/buildinfo.Version=v1.2.3";
// when empty, the module version or VCS revision recorded by the Go toolchain is used.
var Version = ""

// String returns a human-readable version string.
func String() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " (" + s.Value + ")"
		}
	}
	if v == "" {
		v = "devel"
	}
	return v + " " + bi.GoVersion
}

package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// startCPUProfile writes a CPU profile of the whole run to the file named by
// LEDGERVAULT_CPUPROFILE, if set (a development hook: ledgervault-dev bench-compare
// --cpuprofile-dir sets it for the backups and restores it measures). The returned
// function stops the profile.
func startCPUProfile() func() {
	path := os.Getenv("LEDGERVAULT_CPUPROFILE")
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		err = pprof.StartCPUProfile(f)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "ledgervault: LEDGERVAULT_CPUPROFILE: %v\n", err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}

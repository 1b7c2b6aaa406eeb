// Command rsshelper runs a command and writes the peak resident set size of that
// command alone to a file, for the tamper suite.
//
// Go starts children with vfork (CLONE_VM), and Linux records the high-water RSS of
// the memory an exec replaces in the child's ru_maxrss: a child of a large process
// (a test binary under the race detector) reports its parent's peak, not its own.
// Run by a small process such as this one, the command's ru_maxrss is its own peak,
// with this helper's few MiB as the floor.
//
// Usage: rsshelper OUTFILE COMMAND [ARG...]. The exit status is the command's (128+N
// when it died of signal N), 125 when the helper itself fails. The command gets a
// parent-death SIGKILL, so killing the helper kills it.
package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"syscall"
)

func main() { os.Exit(run()) }

func run() int {
	if len(os.Args) < 3 {
		fmt.Fprintln(os.Stderr, "usage: rsshelper OUTFILE COMMAND [ARG...]")
		return 125
	}
	out := os.Args[1]
	// The command's parent-death signal fires when the thread that started it exits.
	runtime.LockOSThread()
	cmd := exec.Command(os.Args[2], os.Args[3:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
	default:
		fmt.Fprintf(os.Stderr, "rsshelper: %v\n", err)
		return 125
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss << 10 // KiB on Linux
	}
	if err := os.WriteFile(out, []byte(strconv.FormatInt(rss, 10)), 0o644); err != nil {
		fmt.Fprintf(os.Stderr, "rsshelper: %v\n", err)
		return 125
	}
	return code
}

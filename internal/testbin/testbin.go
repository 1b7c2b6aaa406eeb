// Package testbin runs the real ledgervault binary from black-box tests: Main builds
// it once for a test package, Run executes it and returns its exit status and output.
package testbin

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"go.uber.org/goleak"
)

// Path is the binary Main built; empty before Main runs.
var Path string

// Main builds cmd/ledgervault into a temporary directory named after prefix, runs
// the tests of m with goleak's check, removes the directory and exits with the
// tests' status. It does not return.
func Main(m *testing.M, prefix string) {
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	Path = filepath.Join(dir, "ledgervault")
	if out, err := exec.Command("go", "build", "-o", Path, "github.com/ledgervault/ledgervault/cmd/ledgervault").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build ledgervault: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := 0
	goleak.VerifyTestMain(m, goleak.Cleanup(func(c int) { code = c }))
	os.RemoveAll(dir)
	os.Exit(code)
}

// Result is one run of the binary.
type Result struct {
	// Code is the exit status.
	Code int
	// Stdout and Stderr are what it printed.
	Stdout, Stderr string
}

// Run runs the binary with args in dir and waits for it; a failure to start it
// fails the test.
func Run(t *testing.T, dir string, args ...string) Result {
	t.Helper()
	cmd := exec.Command(Path, args...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := Result{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		r.Code = ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return r
}

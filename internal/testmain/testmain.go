// Package testmain is the TestMain of test packages that run shell storage: the
// guard that shell uploads start re-executes the test binary, so it must be
// recognised first; then the process is marked as a test process (the orphan checks
// look for the mark) and goleak checks that no goroutine outlives the tests.
package testmain

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/internal/proc"
)

// Run runs the tests of m as described in the package comment; name marks the
// process, opts go to goleak. It does not return.
func Run(m *testing.M, name string, opts ...goleak.Option) {
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	proc.MarkTestProcess(name)
	goleak.VerifyTestMain(m, opts...)
}

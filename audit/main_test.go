package audit_test

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/internal/proc"
)

func TestMain(m *testing.M) {
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	proc.MarkTestProcess("audit-test")
	goleak.VerifyTestMain(m)
}

package audit_test

import (
	"testing"

	"github.com/ledgervault/ledgervault/internal/testmain"
)

func TestMain(m *testing.M) { testmain.Run(m, "audit-test") }

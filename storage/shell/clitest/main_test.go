// Package clitest runs the cloud samples of storage/shell (aws.yaml, gcloud.yaml)
// with the real CLIs against in-process fakes on 127.0.0.1. The runs are slow (one
// to two seconds per CLI call) and opt-in: LEDGERVAULT_TEST_AWSCLI=1,
// LEDGERVAULT_TEST_GCLOUD=1.
package clitest

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/internal/testmain"
)

func TestMain(m *testing.M) {
	testmain.Run(m, "clitest", goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start"))
}

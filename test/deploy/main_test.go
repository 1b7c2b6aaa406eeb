// Package deploy_test checks the deployment files in deploy/ and the Dockerfile against
// what the binary and the tools that judge them say: systemd-analyze's security score and
// verify for every unit, systemd-sysusers for the user, the "restricted" Pod Security
// Standard for every container of the Kubernetes manifest, probes against the endpoints
// the real coordinator serves, and the Dockerfile's build rules.
package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m, "lv-deploy-test") }

// repoRoot is the repository's top directory (two levels above this package).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate the test's source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// requireTool returns the path of an external tool. When it is missing the test is
// skipped, except under CI=true, where scripts/deploy-tools.sh must have installed it
// (from Debian's package pkg) and its absence fails the test.
func requireTool(t *testing.T, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	msg := name + " not found (Debian package " + pkg + "; scripts/deploy-tools.sh installs it)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg + ": skipped outside CI")
	return ""
}

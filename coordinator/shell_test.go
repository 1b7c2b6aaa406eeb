package coordinator

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
)

func shellStore(t *testing.T) storage.Store {
	cfg, err := shell.Sample("local", map[string]string{"ROOT": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestShellStorageNoChildrenLeft runs the coordinator on the shell-command backend
// (every file a guarded child process pipeline): it backs everything up, reports 0
// child processes in flight once idle, and none is left after it stops.
func TestShellStorageNoChildrenLeft(t *testing.T) {
	if os.Getenv(proc.MarkerEnv) == "" {
		t.Setenv(proc.MarkerEnv, fmt.Sprintf("coordinator-test-%d", os.Getpid()))
	}
	n := newNode(t, 200, 0)
	st := shellStore(t)
	cfg := testConfig(n, st, "me")
	cfg.Backup.MaxChunkSize = 256 << 10
	cfg.Backup.StateRequestItems = 1000
	cfg.Backup.TransactionRequest = 200
	cfg.LeaseTTL = time.Minute // fewer renewals: each is a few child processes
	r := start(cfg)
	waitFor(t, 40*time.Second, "all backed up", func() bool {
		return gauge(cfg.Metrics.lastTransaction) == 199 && gauge(cfg.Metrics.lastEpochEnding) == 2 && gauge(cfg.Metrics.lastSnapshot) == 200
	})
	// Idle (between polls): no child process of a backup; a lease renewal may run one.
	waitFor(t, 5*time.Second, "no children in flight", func() bool { return gauge(cfg.Metrics.inFlight) == 0 })
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if n := proc.InFlight(); n != 0 {
		t.Fatalf("%d child processes in flight after stop", n)
	}
	pids, err := proc.ChildProcesses()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) != 0 {
		t.Fatalf("child processes left: %s", proc.Describe(pids))
	}
	checkInventory(t, st, 200)
}

package coordinator

import (
	"bytes"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
)

func shellStore(t *testing.T) storage.Store {
	st, err := shell.NewSample("local", map[string]string{"ROOT": t.TempDir()})
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

// sixCommandStore is the shell backend over the local sample with only the six
// commands of the original adapter format: no list_backups, list_files,
// delete_metadata, delete_backup, delete_file or abort_stale_uploads.
func sixCommandStore(t *testing.T) storage.Store {
	cfg, err := shell.Sample("local", map[string]string{"ROOT": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	c := &cfg.Commands
	c.ListBackups, c.ListFiles, c.DeleteMetadata, c.DeleteBackup, c.DeleteFile, c.AbortStaleUploads = "", "", "", "", "", ""
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestSixCommandShellConfig runs the coordinator over a command config with only
// the original six commands: it backs up epoch endings, the state snapshot and all
// transactions (resume needs listings the config does not have, so the snapshot
// starts afresh), says once that resuming is not possible, and stops no kind of work.
func TestSixCommandShellConfig(t *testing.T) {
	n := newNode(t, 200, 0)
	st := sixCommandStore(t)
	cfg := testConfig(n, st, "me")
	cfg.StateSnapshotIntervalEpochs = 1
	cfg.Backup.MaxChunkSize = 256 << 10
	cfg.Backup.StateRequestItems = 1000
	cfg.Backup.TransactionRequest = 200
	cfg.LeaseTTL = time.Minute
	var logs lockedBuffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := start(cfg)
	waitFor(t, 40*time.Second, "all backed up", func() bool {
		return gauge(cfg.Metrics.lastTransaction) == 199 && gauge(cfg.Metrics.lastEpochEnding) == 2 && gauge(cfg.Metrics.lastSnapshot) == 200
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	out := logs.String()
	if strings.Contains(out, "permanent failure") {
		t.Fatalf("a permanent failure was reported:\n%s", out)
	}
	if got := strings.Count(out, msgNotSupported); got != 1 {
		t.Fatalf("%q logged %d times, want once:\n%s", msgNotSupported, got, out)
	}
	for _, k := range []string{KindEpochEnding, KindStateSnapshot, KindTransaction} {
		if v := gauge(cfg.Metrics.workStopped.WithLabelValues(k)); v != 0 {
			t.Fatalf("%s work stopped", k)
		}
	}
	if s := metadataOf(t, st, native.TypeStateSnapshot); len(s) == 0 || s[len(s)-1].Version != 200 {
		t.Fatalf("state snapshots %v, want the one at version 200", s)
	}
	checkInventory(t, st, 200)
}

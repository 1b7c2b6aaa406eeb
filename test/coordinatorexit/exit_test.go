package coordinatorexit

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// coordinator starts "backup coordinator" against the node with storage flags st,
// small chunks and one request at a time (so that a state snapshot takes hundreds
// of chunks), and extra flags.
func coordinator(t *testing.T, name string, st []string, extra ...string) *child {
	t.Helper()
	args := []string{"backup", "coordinator", "--backup-service-address", nodeAddr, "--log-format", "json",
		"--poll-interval", "100ms", "--transaction-batch-size", "1000", "--lease-ttl", "5s"}
	args = append(append(args, st...), extra...)
	return runChild(t, name, args...)
}

var smallChunks = []string{"--max-chunk-size", "16384", "--concurrent-data-requests", "1"}

// waitSnapshotInFlight waits until the state snapshot has committed a chunk.
func waitSnapshotInFlight(t *testing.T, c *child, root string) {
	t.Helper()
	waitFor(t, 60*time.Second, "the first state chunk", func() bool {
		if c.exited() {
			t.Fatalf("coordinator exited: %s", c.tail())
		}
		return snapshotChunks(root) > 0
	})
}

// exitStatus waits for c and fails unless it exits with want within timeout.
func exitStatus(t *testing.T, c *child, timeout time.Duration, want int) {
	t.Helper()
	code, err := c.wait(timeout)
	if err != nil {
		t.Fatalf("coordinator: %v", err)
	}
	if code != want {
		t.Fatalf("exit status %d, want %d: %s", code, want, c.tail())
	}
}

// TestGracefulStopThenIdle: SIGTERM during a state snapshot with a long grace
// period lets it finish (exit 0, its metadata visible, no new work started); a
// coordinator restarted on the same storage (now through the shell backend)
// catches up and goes idle: /healthz 200, no child process in flight; a second
// coordinator is refused with status 4 naming the holder; SIGTERM while idle
// exits 0.
func TestGracefulStopThenIdle(t *testing.T) {
	root := t.TempDir()
	local := []string{"--storage", "file://" + root}
	c := coordinator(t, "graceful", local, append(smallChunks, "--shutdown-grace", "2m", "--owner", "first")...)
	waitSnapshotInFlight(t, c, root)
	c.signal(syscall.SIGTERM)
	exitStatus(t, c, 90*time.Second, 0)
	if snaps := metadataNames(t, root, "state_snapshot"); len(snaps) != 1 {
		t.Fatalf("state snapshot metadata after a graceful stop: %v", snaps)
	}
	if txns := metadataNames(t, root, "transaction"); len(txns) != 0 {
		t.Fatalf("new work after the signal: %v", txns)
	}
	if !strings.Contains(c.output(), `"msg":"backup completed","type":"state_snapshot"`) {
		t.Fatalf("no completed snapshot logged: %s", c.tail())
	}
	checkSnapshotFolders(t, root)

	// Restart through the shell backend (same layout): the transactions, then idle.
	shell := shellStorage(t, root)
	idle := coordinator(t, "idle", shell, "--metrics-addr", "127.0.0.1:0", "--owner", "first")
	addr := idle.waitLog(t, "metrics listening", "addr", 30*time.Second)
	var body string
	waitFor(t, 60*time.Second, "caught up", func() bool {
		if idle.exited() {
			t.Fatalf("coordinator exited: %s", idle.tail())
		}
		_, body = httpGet(t, "http://"+addr+"/metrics")
		return strings.Contains(body, "\nledgervault_coordinator_last_transaction_version 999\n")
	})
	if v := metric(t, body, "ledgervault_coordinator_last_snapshot_version"); v != untilVersion {
		t.Fatalf("last snapshot version %v", v)
	}
	if v := metric(t, body, "ledgervault_coordinator_chunks_written_total"); v == 0 {
		t.Fatal("no chunk written by the shell backend")
	}
	time.Sleep(300 * time.Millisecond) // a few idle polls
	// A lease renewal runs a few short shell commands every ttl/3, so one sample may
	// catch one; a leaked child stays counted in every sample.
	inFlight := -1.0
	for i := 0; i < 10 && inFlight != 0; i++ {
		if i > 0 {
			time.Sleep(200 * time.Millisecond)
		}
		_, body = httpGet(t, "http://"+addr+"/metrics")
		inFlight = metric(t, body, "ledgervault_coordinator_child_processes_in_flight")
	}
	if inFlight != 0 {
		t.Fatalf("%v child processes in flight while idle, in 10 samples over 2 s", inFlight)
	}
	if v := metric(t, body, "ledgervault_coordinator_lease_held"); v != 1 {
		t.Fatalf("lease_held %v", v)
	}
	if code, body := httpGet(t, "http://"+addr+"/healthz"); code != 200 {
		t.Fatalf("/healthz %d: %s", code, body)
	}

	// A second coordinator on the same storage: refused while the lease is held.
	second := coordinator(t, "second", shell, "--owner", "second")
	exitStatus(t, second, 30*time.Second, 4)
	if out := second.output(); !strings.Contains(out, `owner \"first\"`) && !strings.Contains(out, `owner "first"`) {
		t.Fatalf("refusal does not name the holder: %s", out)
	}
	if idle.exited() {
		t.Fatalf("the first coordinator stopped: %s", idle.tail())
	}

	idle.signal(syscall.SIGTERM)
	exitStatus(t, idle, 30*time.Second, 0)
	if snaps := metadataNames(t, root, "state_snapshot"); len(snaps) != 1 {
		t.Fatalf("state snapshots %v", snaps)
	}
	if txns := metadataNames(t, root, "transaction"); len(txns) != 1 {
		t.Fatalf("transaction backups %v", txns)
	}
}

// TestGraceExpiredAborts: SIGTERM with --shutdown-grace 1ms in the middle of a state
// snapshot through the shell backend aborts it: exit 75, no metadata for it, every
// file under a final name complete.
func TestGraceExpiredAborts(t *testing.T) {
	root := t.TempDir()
	c := coordinator(t, "grace-1ms", shellStorage(t, root), append(smallChunks, "--shutdown-grace", "1ms")...)
	waitSnapshotInFlight(t, c, root)
	c.signal(syscall.SIGTERM)
	exitStatus(t, c, 30*time.Second, 75)
	if snaps := metadataNames(t, root, "state_snapshot"); len(snaps) != 0 {
		t.Fatalf("metadata of the aborted snapshot: %v", snaps)
	}
	if n := checkSnapshotFolders(t, root); n == 0 {
		t.Fatal("no chunk committed before the abort: the snapshot was not in flight")
	}
	if !strings.Contains(c.output(), "grace period expired") {
		t.Fatalf("exit message does not say the grace period expired: %s", c.tail())
	}
}

// TestSecondSignalAbortsAtOnce: a second SIGTERM during the grace period aborts the
// in-flight snapshot at once: exit 143, no metadata for it, files complete. Before
// the signals, the metrics show the upload children in flight.
func TestSecondSignalAbortsAtOnce(t *testing.T) {
	root := t.TempDir()
	c := coordinator(t, "two-signals", shellStorage(t, root), append(smallChunks, "--shutdown-grace", "10m", "--metrics-addr", "127.0.0.1:0")...)
	addr := c.waitLog(t, "metrics listening", "addr", 30*time.Second)
	waitSnapshotInFlight(t, c, root)
	waitFor(t, 30*time.Second, "a child process in flight", func() bool {
		_, body := httpGet(t, "http://"+addr+"/metrics")
		return metric(t, body, "ledgervault_coordinator_child_processes_in_flight") > 0
	})
	c.signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	if c.exited() {
		t.Fatalf("exited after the first signal with a 10m grace: %s", c.tail())
	}
	at := time.Now()
	c.signal(syscall.SIGTERM)
	exitStatus(t, c, 30*time.Second, 128+int(syscall.SIGTERM))
	t.Logf("exited %v after the second signal", time.Since(at).Round(time.Millisecond))
	if snaps := metadataNames(t, root, "state_snapshot"); len(snaps) != 0 {
		t.Fatalf("metadata of the aborted snapshot: %v", snaps)
	}
	if n := checkSnapshotFolders(t, root); n == 0 {
		t.Fatal("no chunk committed before the abort")
	}
}

// TestBadFlags: usage errors exit 2 with a message, before touching storage.
func TestBadFlags(t *testing.T) {
	root := t.TempDir()
	st := []string{"--storage", "file://" + root}
	for i, args := range [][]string{
		{"--no-such-flag"},
		{"unexpected-argument"},
		{"--poll-interval", "-1s"},
		{"--poll-interval", "soon"},
		{"--shutdown-grace", "-5s"},
		{"--transaction-batch-size", "0"},
		{"--state-snapshot-interval-epochs", "0"},
		{"--state-snapshot-interval", "-1m"},
		{"--max-chunk-size", "10"},
		{"--concurrent-data-requests", "0"},
		{"--lease-ttl", "1ms"},
		{"--log-format", "xml"},
	} {
		c := coordinator(t, fmt.Sprintf("bad-%d", i), st, args...)
		code, err := c.wait(30 * time.Second)
		if err != nil || code != 2 {
			t.Errorf("%v: exit status %d (%v), want 2: %s", args, code, err, c.tail())
			continue
		}
		if strings.TrimSpace(c.output()) == "" {
			t.Errorf("%v: no message", args)
		}
	}
	if m, _ := filepath.Glob(filepath.Join(root, "metadata", "*.lease")); len(m) != 0 {
		t.Fatalf("a usage error took the lease: %v", m)
	}
	if _, err := os.Stat(filepath.Join(root, "metadata")); err == nil {
		es, _ := os.ReadDir(filepath.Join(root, "metadata"))
		if len(es) != 0 {
			t.Fatalf("usage errors wrote metadata: %v", es)
		}
	}
}

package node

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds ./cmd/ledgervault once per test process.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ledgervault-node-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "ledgervault")
		out, err := exec.Command("go", "build", "-o", binPath, "github.com/ledgervault/ledgervault/cmd/ledgervault").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// freeAddr returns a loopback address that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startNode starts `ledgervault node run` and a client of its backup service.
func startNode(t testing.TB, dir string, args ...string) (*exec.Cmd, *bytes.Buffer, *backupservice.Client) {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), append([]string{"node", "run", "--dir", dir, "--backup-service-address", addr,
		"--metrics-addr", "", "--log-format", "json"}, args...)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
	c, err := backupservice.New(addr, backupservice.ClientOptions{RequestTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return cmd, &stderr, c
}

// waitCommitted polls the service until at least version v is committed.
func waitCommitted(t testing.TB, c *backupservice.Client, v uint64, stderr *bytes.Buffer) uint64 {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		st, err := c.DBState(context.Background())
		if err == nil && st.CommittedVersion != nil && *st.CommittedVersion >= v {
			return *st.CommittedVersion
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not reach version %d: %v\n%s", v, err, stderr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type roots struct{ state, acc []ledger.Hash }

// readRoots opens the store (the node must be dead) and reads every version's roots.
func readRoots(t testing.TB, dir string) (roots, ledgerdb.Summary) {
	t.Helper()
	ctx := context.Background()
	db := openStore(t, dir)
	defer db.Close()
	sum, err := db.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var r roots
	for v := uint64(0); v < sum.NextVersion; v++ {
		sr, err := db.StateRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		ar, err := db.AccumulatorRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		r.state = append(r.state, sr.RootHash())
		r.acc = append(r.acc, ar)
	}
	return r, sum
}

// TestBinarySIGKILLRestart kills `node run` with SIGKILL while it commits as fast as it
// can, restarts it, and checks that it continues from its last committed block with
// identical roots for every earlier version and a history that verifies from the
// waypoint.
func TestBinarySIGKILLRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	out, err := exec.Command(binary(t), "node", "init", "--dir", dir, "--epoch-length", "300", "--block-size", "20",
		"--large-value-every", "50", "--large-value-size", "2000", "--log-format", "json").Output()
	if err != nil {
		t.Fatalf("node init: %v", err)
	}
	wp, err := ledger.ParseWaypoint(strings.TrimSpace(string(out)))
	if err != nil {
		t.Fatalf("node init printed %q: %v", out, err)
	}

	for round := range 2 {
		cmd, stderr, c := startNode(t, dir, "--until-version", "100000000")
		seen := waitCommitted(t, c, uint64(500*(round+1)), stderr)
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		before, sum := readRoots(t, dir)
		if sum.NextVersion <= seen {
			t.Fatalf("round %d: store has %d versions after the service reported version %d", round, sum.NextVersion, seen)
		}
		t.Logf("round %d: killed at next version %d (service had reported %d)", round, sum.NextVersion, seen)

		// Restart, commit 300 more versions and exit.
		target := sum.NextVersion - 1 + 300
		cmd, stderr, _ = startNode(t, dir, "--until-version", fmt.Sprint(target), "--exit-when-done")
		if err := cmd.Wait(); err != nil {
			t.Fatalf("restart: %v\n%s", err, stderr)
		}
		after, sum2 := readRoots(t, dir)
		if sum2.NextVersion != target+1 {
			t.Fatalf("restart committed up to %d, want %d", sum2.NextVersion-1, target)
		}
		for v := range before.state {
			if before.state[v] != after.state[v] || before.acc[v] != after.acc[v] {
				t.Fatalf("version %d: roots changed across the restart", v)
			}
		}
		verifyHistory(t, dir, wp)
	}
}

// verifyHistory checks every epoch ending and the latest ledger info from the waypoint.
func verifyHistory(t testing.TB, dir string, wp ledger.Waypoint) {
	t.Helper()
	ctx := context.Background()
	db := openStore(t, dir)
	defer db.Close()
	sum, err := db.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	g, err := db.EpochEnding(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ledger.NewEpochHistory(wp, &g.LedgerInfo)
	if err != nil {
		t.Fatal(err)
	}
	err = db.EpochEndings(ctx, 1, sum.LatestEpoch, func(_ uint64, raw []byte) error {
		li, err := ledger.DecodeLedgerInfoWithSignatures(raw)
		if err != nil {
			return err
		}
		return h.Append(&li)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Verify(sum.LatestLedgerInfo); err != nil {
		t.Fatalf("latest ledger info at %d: %v", sum.LatestLedgerInfo.LedgerInfo.Version, err)
	}
}

// TestBinarySIGTERM stops `node run` with SIGTERM: it exits 0 promptly after a graceful
// shutdown, and a restart continues.
func TestBinarySIGTERM(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "node")
	if out, err := exec.Command(binary(t), "node", "init", "--dir", dir, "--epoch-length", "100", "--log-format", "json").CombinedOutput(); err != nil {
		t.Fatalf("node init: %v\n%s", err, out)
	}
	cmd, stderr, c := startNode(t, dir, "--tps", "2000")
	waitCommitted(t, c, 200, stderr)
	// An open stream does not keep the node from stopping within its grace period.
	ss, err := c.StateSnapshotChunk(context.Background(), 100, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("node still running 30s after SIGTERM\n%s", stderr)
	}
	if !strings.Contains(stderr.String(), "node stopping") {
		t.Fatalf("no graceful stop in the log:\n%s", stderr)
	}
	_, sum := readRoots(t, dir)
	cmd, stderr, _ = startNode(t, dir, "--until-version", fmt.Sprint(sum.NextVersion+50), "--exit-when-done")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("restart after SIGTERM: %v\n%s", err, stderr)
	}
}

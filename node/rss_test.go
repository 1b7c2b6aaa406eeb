package node

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestPeakRSSServingState measures the real node's peak RSS (VmHWM) while it serves a
// full state stream, for a state of LEDGERVAULT_RSS_KEYS keys (for example 1000000).
// It is a measurement, skipped unless the variable is set:
//
//	LEDGERVAULT_RSS_KEYS=1000000 go test -run TestPeakRSSServingState -v -timeout 30m ./node
//
// LEDGERVAULT_RSS_DIR reuses (or creates, and keeps) a node directory, and
// LEDGERVAULT_RSS_CACHE_MIB sets the node's --db-cache-mib.
func TestPeakRSSServingState(t *testing.T) {
	keys, _ := strconv.ParseUint(os.Getenv("LEDGERVAULT_RSS_KEYS"), 10, 64)
	if keys == 0 {
		t.Skip("set LEDGERVAULT_RSS_KEYS to measure (a measurement, not a check)")
	}
	dir := os.Getenv("LEDGERVAULT_RSS_DIR")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "node")
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigFile)); err != nil {
		start := time.Now()
		if out, err := exec.Command(binary(t), "node", "init", "--dir", dir, "--initial-accounts", fmt.Sprint(keys),
			"--initial-account-value-size", "100", "--log-format", "json").CombinedOutput(); err != nil {
			t.Fatalf("node init: %v\n%s", err, out)
		}
		t.Logf("init with %d accounts: %v", keys, time.Since(start))
	}
	var extra []string
	if mib := os.Getenv("LEDGERVAULT_RSS_CACHE_MIB"); mib != "" {
		extra = append(extra, "--db-cache-mib", mib)
	}
	db := openStore(t, dir)
	sum, err := db.Summary(context.Background())
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	v := sum.NextVersion - 1
	// Serve only: --until-version is already reached, nothing more is committed.
	cmd, stderr, c := startNode(t, dir, append([]string{"--until-version", fmt.Sprint(v)}, extra...)...)
	waitCommitted(t, c, v, stderr)
	time.Sleep(2 * time.Second) // let start-up work settle
	t.Logf("node VmHWM before streaming: %d MiB (cache flag %v)", vmHWM(t, cmd.Process.Pid)>>10, extra)
	n, err := c.StateItemCount(context.Background(), v)
	if err != nil {
		t.Fatal(err)
	}
	for round := 1; round <= 2; round++ {
		start := time.Now()
		ss, err := c.StateSnapshotChunk(context.Background(), v, 0, n)
		if err != nil {
			t.Fatal(err)
		}
		var got, bytes uint64
		for ss.Next() {
			got++
			bytes += uint64(len(ss.Record()) + 4)
		}
		if err := ss.Err(); err != nil || got != n {
			t.Fatalf("streamed %d of %d: %v", got, n, err)
		}
		ss.Close()
		el := time.Since(start)
		t.Logf("stream %d: %d items (%.1f MB framed) in %v: %.0f records/s, %.0f MB/s; node VmHWM %d MiB", round, n,
			float64(bytes)/1e6, el, float64(n)/el.Seconds(), float64(bytes)/1e6/el.Seconds(), vmHWM(t, cmd.Process.Pid)>>10)
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// vmHWM returns a process's peak resident set size in KiB.
func vmHWM(t testing.TB, pid int) uint64 {
	t.Helper()
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			return kb
		}
	}
	t.Fatal("no VmHWM")
	return 0
}

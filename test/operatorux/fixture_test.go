package operatorux_test

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/internal/testbin"
	"github.com/ledgervault/ledgervault/internal/testchain"
)

// chainCfg is a small chain with short epochs and enough state for several
// snapshot chunks.
var chainCfg = devnet.Config{Secret: []byte("operatorux-test"), EpochLength: 100, BlockSize: 20, GenesisAccounts: 200}

const (
	lastVersion   = 799
	snapshotEpoch = 3
	// stateChunkSize makes the state snapshot several chunks.
	stateChunkSize = 8 << 10
)

// world is a chain served by a backup service in this process and its backups,
// written by the binary into a local store.
type world struct {
	dir      string
	store    string // the store's directory
	url      string // its file:// URL
	chain    *testchain.Chain
	epochs   uint64 // epoch endings backed up: [0, epochs)
	waypoint string // the genesis waypoint, VERSION:HASH
}

// ok runs the binary and fails the test unless it exits 0.
func ok(t *testing.T, dir string, args ...string) testbin.Result {
	t.Helper()
	r := testbin.Run(t, dir, args...)
	if r.Code != 0 {
		t.Fatalf("ledgervault %s: exit %d\n%s", strings.Join(args, " "), r.Code, r.Stderr)
	}
	return r
}

// newWorld commits the chain and backs it up with the binary: every epoch ending,
// a state snapshot at the end of snapshotEpoch and the transactions [0, last].
func newWorld(t *testing.T) *world {
	t.Helper()
	dir := t.TempDir()
	c := testchain.New(t, chainCfg, lastVersion, testchain.Options{Accounts: 1000, ReadTimeout: 30 * time.Second})
	ds, err := c.Service.DBState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w := &world{dir: dir, store: filepath.Join(dir, "store"), chain: c, epochs: ds.Epoch, waypoint: c.Waypoint.String()}
	w.url = "file://" + w.store
	common := []string{"--backup-service-address", c.Addr, "--storage", w.url, "--progress", "none"}
	ok(t, dir, append([]string{"backup", "epoch-ending", "--start-epoch", "0", "--end-epoch", strconv.FormatUint(w.epochs, 10)}, common...)...)
	ok(t, dir, append([]string{"backup", "state-snapshot", "--epoch", strconv.Itoa(snapshotEpoch), "--max-chunk-size", strconv.Itoa(stateChunkSize)}, common...)...)
	ok(t, dir, append([]string{"backup", "transaction", "--start-version", "0", "--num-transactions", strconv.Itoa(lastVersion + 1), "--max-chunk-size", "16384"}, common...)...)
	return w
}

// stateChunks returns the handles of the state snapshot's chunks, in order.
func (w *world) stateChunks(t *testing.T) []string {
	t.Helper()
	dirs, err := filepath.Glob(filepath.Join(w.store, "state_snapshot_*"))
	if err != nil || len(dirs) != 1 {
		t.Fatalf("state snapshot folders %v, %v: want one", dirs, err)
	}
	files, err := filepath.Glob(filepath.Join(dirs[0], "state-*.zst"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var out []string
	for _, f := range files {
		out = append(out, filepath.Base(dirs[0])+"/"+filepath.Base(f))
	}
	return out
}

// exists reports whether p exists.
func exists(t *testing.T, p string) bool {
	t.Helper()
	_, err := os.Stat(p)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return err == nil
}

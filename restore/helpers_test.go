package restore_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/testchain"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledgerdb"
	"github.com/ledgervault/ledgervault/restore"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(restoreChild())
	}
	goleak.VerifyTestMain(m)
}

// childEnv makes the test binary run one restore and exit (see runRestoreChild): a
// benchmark measures the peak RSS of the restore alone in a child process.
const childEnv = "LEDGERVAULT_RESTORE_CHILD"

type childArgs struct {
	Store    string
	Waypoint ledger.Waypoint
	Options  restore.Options
}

func restoreChild() int {
	var a childArgs
	if err := json.Unmarshal([]byte(os.Getenv(childEnv)), &a); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	st, err := local.New(a.Store)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	defer st.Close()
	a.Options.Waypoints = []ledger.Waypoint{a.Waypoint}
	res, err := restore.Run(context.Background(), st, a.Options)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(childResult{Result: res, HWMKiB: vmHWMKiB()})
	return 0
}

// runRestoreChild runs a restore in a child process and returns its result and the
// child's peak RSS in MiB.
func runRestoreChild(t testing.TB, w *world, o restore.Options) (*restore.Result, float64) {
	t.Helper()
	o.Logger, o.Progress = nil, nil
	arg, err := json.Marshal(childArgs{Store: w.root, Waypoint: w.wp, Options: o})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+string(arg))
	if os.Getenv("LEDGERVAULT_BENCH_CHILD_GCTRACE") != "" {
		cmd.Env = append(cmd.Env, "GODEBUG=gctrace=1")
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("restore child: %v", err)
	}
	var res childResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("restore child output %q: %v", out, err)
	}
	return res.Result, float64(res.HWMKiB) / 1024
}

// childResult is what a restore child prints: the result and its peak RSS (VmHWM; the
// rusage of a child also counts the parent's pages it was forked with).
type childResult struct {
	Result *restore.Result
	HWMKiB int64
}

func vmHWMKiB() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			n, _ := strconv.ParseInt(f[1], 10, 64)
			return n
		}
	}
	return 0
}

var chainCfg = devnet.Config{Secret: []byte("restore-test"), EpochLength: 50, BlockSize: 20, GenesisAccounts: 200, LargeValueEvery: 50, LargeValueSize: 2000}

// world is a source chain, its backups in local storage, and what a restore must
// reproduce.
type world struct {
	src      *ledgerdb.DB
	wp       ledger.Waypoint
	st       storage.Store
	root     string // storage directory
	last     uint64 // last committed version
	snapshot uint64 // version of the state snapshot
	epochs   uint64 // epochs ending backed up: [0, epochs)
}

// newWorld builds a chain of last+1 versions with extra accounts and backs it up:
// every epoch ending so far, a state snapshot at the end of epoch snapEpoch, and
// transactions in overlapping backups covering [0, last] (or, with fromSnapshot, only
// (snapshot, last]).
func newWorld(t testing.TB, last, accounts, snapEpoch uint64, fromSnapshot bool, extraSnapshots ...uint64) *world {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	c := testchain.New(t, chainCfg, last, testchain.Options{Accounts: accounts, Dir: dir + "/src"})
	db, wp, svc := c.DB, c.Waypoint, c.Service
	root := dir + "/backups"
	if err := os.MkdirAll(root, 0o755); err != nil {
		t.Fatal(err)
	}
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	opts := backup.Options{MaxChunkSize: 16 << 10, StateRequestItems: 700, TransactionRequest: 60, Concurrency: 2}
	ds, err := svc.DBState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	epochs := ds.Epoch
	// Two overlapping epoch-ending backups.
	if _, err := backup.EpochEnding(ctx, svc, st, 0, epochs/2+1, opts); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.EpochEnding(ctx, svc, st, epochs/2, epochs, opts); err != nil {
		t.Fatal(err)
	}
	snap, err := backup.EpochEndVersion(ctx, svc, snapEpoch)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := backup.StateSnapshot(ctx, svc, st, snap, opts); err != nil {
		t.Fatal(err)
	}
	for _, v := range extraSnapshots {
		if _, err := backup.StateSnapshot(ctx, svc, st, v, opts); err != nil {
			t.Fatal(err)
		}
	}
	first := uint64(0)
	if fromSnapshot {
		first = snap + 1
	}
	mid := (first + last) / 2
	if _, err := backup.Transactions(ctx, svc, st, first, mid-first+1, opts); err != nil {
		t.Fatal(err)
	}
	ov := mid - 30 // overlapping the first
	if _, err := backup.Transactions(ctx, svc, st, ov, last-ov+1, opts); err != nil {
		t.Fatal(err)
	}
	return &world{src: db, wp: wp, st: st, root: root, last: last, snapshot: snap, epochs: epochs}
}

// checkSame requires the restored database in dir to have the source's roots and
// state at v.
func (w *world) checkSame(t testing.TB, dir string, v uint64, res *restore.Result) {
	t.Helper()
	ctx := context.Background()
	wantState, err := w.src.StateRoot(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	wantAcc, err := w.src.AccumulatorRoot(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if res != nil {
		if res.TargetVersion != v || res.StateRoot != wantState.RootHash() || res.AccumulatorRoot != wantAcc {
			t.Fatalf("result %+v, want version %d state root %s accumulator root %s", res, v, wantState.RootHash(), wantAcc)
		}
	}
	db, err := ledgerdb.Open(ctx, dir, ledgerdb.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	gotState, err := db.StateRoot(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	gotAcc, err := db.AccumulatorRoot(ctx, v)
	if err != nil {
		t.Fatal(err)
	}
	if gotState.RootHash() != wantState.RootHash() || gotAcc != wantAcc {
		t.Fatalf("restored roots %s/%s, source %s/%s", gotState.RootHash(), gotAcc, wantState.RootHash(), wantAcc)
	}
	if got, want := dumpState(t, db, v), dumpState(t, w.src, v); !bytes.Equal(got, want) {
		t.Fatalf("restored state at %d differs from the source (%d vs %d bytes)", v, len(got), len(want))
	}
}

func dumpState(t testing.TB, db *ledgerdb.DB, v uint64) []byte {
	var buf bytes.Buffer
	err := db.StateValues(context.Background(), v, 0, 0, func(i uint64, k, val []byte) error {
		fmt.Fprintf(&buf, "%d %x=%x\n", i, k, val)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func (w *world) options(dir string) restore.Options {
	return restore.Options{DBDir: dir, Waypoints: []ledger.Waypoint{w.wp}, Concurrency: 3, TxnBatch: 37}
}

func openLocal(t testing.TB, root string) storage.Store {
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// midChunkVersion returns a version strictly inside a transaction chunk after the
// snapshot (neither its first nor its last version).
func (w *world) midChunkVersion(t testing.TB) uint64 {
	t.Helper()
	ctx := context.Background()
	inv, err := catalog.Load(ctx, w.st)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range inv.Transactions() {
		raw, err := native.ReadManifest(ctx, w.st, b.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := native.DecodeTransaction(raw)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range m.Chunks {
			if c.FirstVersion > w.snapshot+1 && c.LastVersion-c.FirstVersion >= 2 {
				return c.FirstVersion + 1
			}
		}
	}
	t.Fatal("no transaction chunk of 3 or more versions after the snapshot")
	return 0
}

// rootProofVersion returns the version of the ledger info that the root proof of the
// snapshot at version v is against.
func (w *world) rootProofVersion(t testing.TB, v uint64) uint64 {
	t.Helper()
	ctx := context.Background()
	inv, err := catalog.Load(ctx, w.st)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range inv.Snapshots() {
		if b.First != v {
			continue
		}
		raw, err := native.ReadManifest(ctx, w.st, b.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		m, err := native.DecodeStateSnapshot(raw)
		if err != nil {
			t.Fatal(err)
		}
		pb, err := native.ReadFile(ctx, w.st, m.RootProof, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		p, err := proof.DecodeStateRoot(pb)
		if err != nil {
			t.Fatal(err)
		}
		return p.LedgerInfo.LedgerInfo.Version
	}
	t.Fatalf("no snapshot at %d", v)
	return 0
}

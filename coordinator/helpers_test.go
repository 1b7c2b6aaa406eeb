package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/internal/testchain"
	"github.com/ledgervault/ledgervault/ledgerdb"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func TestMain(m *testing.M) {
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

var chainCfg = devnet.Config{Secret: []byte("coordinator-test"), EpochLength: 100, BlockSize: 20, GenesisAccounts: 200}

// testNode is an in-process node: a store with a devnet chain and the backup
// service over it on 127.0.0.1.
type testNode struct {
	db    *ledgerdb.DB
	chain *devnet.Chain
	addr  string
	svc   *backupservice.Client

	mu      sync.Mutex
	stopped chan struct{}
	done    chan struct{}
}

func newNode(t testing.TB, last, accounts uint64) *testNode {
	t.Helper()
	return newNodeWith(t, chainCfg, last, accounts)
}

// newNodeWith is newNode with a chain configuration of its own.
func newNodeWith(t testing.TB, chainCfg devnet.Config, last, accounts uint64) *testNode {
	t.Helper()
	c := testchain.New(t, chainCfg, last, testchain.Options{Accounts: accounts, ReadTimeout: 10 * time.Second})
	return &testNode{db: c.DB, chain: c.Devnet, addr: c.Addr, svc: c.Service}
}

// commitContinuously commits a block every interval until stop is called (or the
// test ends), skipping the ticks at which hold (if not nil) reports true. hold runs
// on the committing goroutine and may read n.chain.
func (n *testNode) commitContinuously(t *testing.T, interval time.Duration, hold func() bool) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(interval)
		defer tk.Stop()
		for {
			select {
			case <-quit:
				return
			case <-tk.C:
			}
			if hold != nil && hold() {
				continue
			}
			if _, err := n.chain.CommitBlock(context.Background()); err != nil {
				t.Errorf("commit: %v", err)
				return
			}
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { close(quit); <-done }) }
	t.Cleanup(stop)
	return stop
}

// committed returns the node's newest committed version.
func (n *testNode) committed(t *testing.T) uint64 {
	ds, err := n.svc.DBState(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return *ds.CommittedVersion
}

func localStore(t *testing.T) (storage.Store, string) {
	root := t.TempDir()
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, root
}

// testConfig is a fast configuration for a small chain.
func testConfig(n *testNode, st storage.Store, owner string) Config {
	return Config{
		Service: n.svc, Store: st, PollInterval: 20 * time.Millisecond, StateSnapshotIntervalEpochs: 3,
		TransactionBatchSize: 200, ShutdownGrace: 10 * time.Second, Owner: owner, LeaseTTL: 2 * time.Second,
		RetryBase: 10 * time.Millisecond, RetryMax: 80 * time.Millisecond,
		Backup:  backup.Options{MaxChunkSize: 8 << 10, Concurrency: 2, StateRequestItems: 150, TransactionRequest: 60},
		Metrics: NewMetrics(), Logger: testLogger(),
	}
}

func testLogger() *slog.Logger {
	if os.Getenv("COORDINATOR_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return nil
}

// running is a Run in a goroutine.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func start(cfg Config) *running {
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- Run(ctx, cfg) }()
	return r
}

// stop cancels the run context and returns Run's result.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
		return nil
	}
}

// waitFor polls cond until it holds, failing after timeout.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// gauge returns the value of a collector of one gauge or counter.
func gauge(c prometheus.Collector) float64 {
	ch := make(chan prometheus.Metric, 1)
	go func() { c.Collect(ch); close(ch) }()
	var v float64
	for m := range ch {
		var d dto.Metric
		if err := m.Write(&d); err != nil {
			panic(err)
		}
		switch {
		case d.Gauge != nil:
			v = d.Gauge.GetValue()
		case d.Counter != nil:
			v = d.Counter.GetValue()
		}
	}
	return v
}

// checkInventory checks what storage holds: no duplicate visible backup, epoch
// endings and transactions contiguous from 0 without gaps, transaction backups
// aligned to batch. It returns the catalog.
func checkInventory(t *testing.T, st storage.Store, batch uint64) *catalog.Inventory {
	t.Helper()
	inv, err := catalog.Load(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Duplicates != 0 || len(inv.Gaps) != 0 {
		t.Fatalf("duplicates %d, gaps %+v", inv.Duplicates, inv.Gaps)
	}
	var next uint64
	for _, b := range inv.Transactions() {
		if b.First != next || b.First%batch != 0 || b.Last != b.First+batch-1 {
			t.Fatalf("transaction backup [%d, %d]: want [%d, %d]", b.First, b.Last, next, next+batch-1)
		}
		next = b.Last + 1
	}
	next = 0
	for _, b := range inv.EpochEndings() {
		if b.First != next {
			t.Fatalf("epoch ending backup [%d, %d] after epoch %d", b.First, b.Last, next)
		}
		next = b.Last + 1
	}
	seen := map[uint64]bool{}
	for _, s := range inv.Snapshots() {
		if seen[s.First] {
			t.Fatalf("two snapshots at version %d", s.First)
		}
		seen[s.First] = true
	}
	return inv
}

// failCreates returns a rule that fails a Create with "create <name>: <err>" when
// hook(name) returns an error.
func failCreates(hook func(name string) error) storagetest.Rule {
	return func(c storagetest.Call) storagetest.Fault {
		if c.Op != storagetest.OpCreate {
			return storagetest.Fault{}
		}
		if err := hook(c.Name); err != nil {
			return storagetest.Fault{Mode: storagetest.FailBefore, Err: fmt.Errorf("create %s: %w", c.Name, err)}
		}
		return storagetest.Fault{}
	}
}

// beforeCommits returns a rule that runs hook(name) in every Commit, before the
// file is committed.
func beforeCommits(hook func(name string)) storagetest.Rule {
	return func(c storagetest.Call) storagetest.Fault {
		if c.Op != storagetest.OpCommit {
			return storagetest.Fault{}
		}
		return storagetest.Fault{Before: func() { hook(c.Name) }}
	}
}

// createsOf counts the Create calls st saw for names whose part before the first
// "-" is prefix.
func createsOf(st *storagetest.FaultStore, prefix string) int {
	n := 0
	for _, c := range st.Calls() {
		if p, _, _ := strings.Cut(c.Name, "-"); c.Op == storagetest.OpCreate && p == prefix {
			n++
		}
	}
	return n
}

var errTransient = errors.New("injected transient fault")

// metadataOf returns the metadata lines of st.
func metadataOf(t *testing.T, st storage.Store, typ string) []native.Metadata {
	t.Helper()
	inv, err := catalog.Load(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	var out []native.Metadata
	for _, b := range inv.Backups {
		if b.Type == typ {
			out = append(out, native.Metadata{Type: b.Type, FirstVersion: b.First, LastVersion: b.Last, Version: b.First, Manifest: b.Manifest})
		}
	}
	return out
}

package coordinator

import (
	"context"
	"errors"
	"io"
	"net/http/httptest"
	"path"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/coordinator/lease"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// TestCatchUpAndRestart runs the coordinator against a node committing
// continuously: it catches up (epoch endings, snapshots every 3 epochs, aligned
// transaction batches), stops gracefully, and a restart continues from metadata
// without gaps or duplicates until it has everything the stopped node holds.
func TestCatchUpAndRestart(t *testing.T) {
	n := newNode(t, 900, 0)
	st, _ := localStore(t)
	cfg := testConfig(n, st, "me")
	// The node keeps at most 1000 versions ahead of the backed-up transactions: a
	// node that outruns the coordinator would starve the transaction batches (epoch
	// endings and snapshots come first) however long the test waits.
	stopCommits := n.commitContinuously(t, 5*time.Millisecond, func() bool {
		return float64(n.chain.NextVersion()) > gauge(cfg.Metrics.lastTransaction)+1000
	})

	r := start(cfg)
	waitFor(t, 20*time.Second, "transactions up to 1999", func() bool { return gauge(cfg.Metrics.lastTransaction) >= 1999 })
	if err := r.stop(t); err != nil {
		t.Fatalf("graceful stop: %v", err)
	}
	first := checkInventory(t, st, 200)
	if len(first.Snapshots()) == 0 || gauge(cfg.Metrics.leaseHeld) != 0 {
		t.Fatalf("no snapshot, or lease gauge %v after stop", gauge(cfg.Metrics.leaseHeld))
	}
	for _, s := range first.Snapshots() {
		if s.First%chainCfg.EpochLength != 0 {
			t.Fatalf("snapshot at version %d, not at an epoch end", s.First)
		}
	}
	stopCommits()
	last := n.committed(t)

	// Restart from metadata with fresh metrics: everything up to the node's end.
	cfg2 := testConfig(n, st, "me")
	r2 := start(cfg2)
	wantTxn := float64((last+1)/200*200 - 1)
	endedEpochs := float64(last / chainCfg.EpochLength) // epoch e >= 1 holds versions ((e-1)L, eL]
	waitFor(t, 20*time.Second, "catch up", func() bool {
		return gauge(cfg2.Metrics.lastTransaction) == wantTxn && gauge(cfg2.Metrics.lastEpochEnding) >= endedEpochs &&
			gauge(cfg2.Metrics.lastSnapshot) >= float64(uint64(endedEpochs-2)*chainCfg.EpochLength)
	})
	// Idle now: nothing more to do, no busy loop.
	time.Sleep(200 * time.Millisecond)
	before := gauge(cfg2.Metrics.bytesWritten)
	time.Sleep(300 * time.Millisecond)
	if gauge(cfg2.Metrics.bytesWritten) != before {
		t.Fatal("the idle coordinator keeps writing")
	}
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	inv := checkInventory(t, st, 200)
	if got := len(inv.Transactions()); got != int(last+1)/200 {
		t.Fatalf("%d transaction backups for %d versions", got, last+1)
	}
	if lag := gauge(cfg2.Metrics.lag); lag != float64(last)-wantTxn {
		t.Fatalf("lag %v, want %v", lag, float64(last)-wantTxn)
	}
	if gauge(cfg2.Metrics.inFlight) != 0 {
		t.Fatal("child processes in flight while idle")
	}
	t.Logf("node at %d: %d epoch ending, %d snapshot, %d transaction backups", last, len(inv.EpochEndings()), len(inv.Snapshots()), len(inv.Transactions()))
}

// TestTransientFailuresRetried fails the first creates of each kind with a transient
// error: the coordinator retries with backoff, counts the retries, and completes.
func TestTransientFailuresRetried(t *testing.T) {
	n := newNode(t, 600, 0)
	base, _ := localStore(t)
	var mu sync.Mutex
	fails := map[string]int{}
	st := storagetest.NewFaultStore(base, failCreates(func(name string) error {
		p, _, _ := strings.Cut(name, "-")
		mu.Lock()
		defer mu.Unlock()
		if fails[p] < 3 {
			fails[p]++
			return errTransient
		}
		return nil
	}))
	cfg := testConfig(n, st, "me")
	r := start(cfg)
	waitFor(t, 20*time.Second, "all backed up", func() bool {
		return gauge(cfg.Metrics.lastTransaction) == 599 && gauge(cfg.Metrics.lastEpochEnding) == 6 && gauge(cfg.Metrics.lastSnapshot) == 600
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	checkInventory(t, base, 200)
	for _, k := range []string{KindEpochEnding, KindStateSnapshot, KindTransaction} {
		retries := gauge(cfg.Metrics.retries.WithLabelValues(k))
		failures := gauge(cfg.Metrics.failures.WithLabelValues(k, "transient"))
		// Concurrent chunk writers may both fail in one attempt: at least 2 attempts.
		if failures < 2 || retries != failures {
			t.Fatalf("%s: %v transient failures, %v retries; want >= 2 and equal", k, failures, retries)
		}
	}
}

// TestPermanentFailureStopsKind makes transaction chunk writes fail permanently:
// transactions stop after one attempt (no busy loop), the other kinds go on, the
// heartbeat continues and Run keeps running until stopped.
func TestPermanentFailureStopsKind(t *testing.T) {
	n := newNode(t, 600, 0)
	base, _ := localStore(t)
	st := storagetest.NewFaultStore(base, failCreates(func(name string) error {
		if strings.HasPrefix(name, "txn-") {
			return storage.Permanent(errors.New("permission denied"))
		}
		return nil
	}))
	cfg := testConfig(n, st, "me")
	r := start(cfg)
	waitFor(t, 20*time.Second, "the other kinds", func() bool {
		return gauge(cfg.Metrics.lastEpochEnding) == 6 && gauge(cfg.Metrics.lastSnapshot) == 600
	})
	waitFor(t, 5*time.Second, "the stop", func() bool { return gauge(cfg.Metrics.workStopped.WithLabelValues(KindTransaction)) == 1 })
	attempts := createsOf(st, "txn")
	hb := gauge(cfg.Metrics.heartbeat)
	time.Sleep(1200 * time.Millisecond)
	if got := createsOf(st, "txn"); got != attempts || attempts == 0 {
		t.Fatalf("transaction chunk creates went from %d to %d after the permanent failure", attempts, got)
	}
	if gauge(cfg.Metrics.failures.WithLabelValues(KindTransaction, "permanent")) != 1 {
		t.Fatal("permanent failure not counted once")
	}
	if gauge(cfg.Metrics.heartbeat) <= hb {
		t.Fatal("heartbeat stopped")
	}
	select {
	case err := <-r.done:
		t.Fatalf("Run returned: %v", err)
	default:
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	if ts := metadataOf(t, base, native.TypeTransaction); len(ts) != 0 {
		t.Fatalf("transaction backups: %v", ts)
	}
}

// TestLease: a second coordinator refuses to start while the first runs; when
// another owner takes the lease, the running coordinator stops with ErrLost.
func TestLease(t *testing.T) {
	n := newNode(t, 300, 0)
	st, _ := localStore(t)
	cfg := testConfig(n, st, "first")
	cfg.LeaseTTL = 300 * time.Millisecond
	r := start(cfg)
	waitFor(t, 10*time.Second, "first backups", func() bool { return gauge(cfg.Metrics.lastTransaction) == 199 })
	if ok, _ := cfg.Metrics.Healthy(time.Now()); !ok {
		t.Fatal("healthz not ok while running")
	}
	err := Run(context.Background(), testConfig(n, st, "second"))
	var held *lease.HeldError
	if !errors.As(err, &held) || held.Holder.Owner != "first" {
		t.Fatalf("second coordinator: %v", err)
	}
	// A peer that took over (as after our lease expired) makes the first stop.
	cur, seq, _, err := lease.Current(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	cur.Owner, cur.Expires = "usurper", time.Now().Add(time.Minute)
	b, _ := cur.Encode()
	if _, err := st.SaveMetadata(context.Background(), native.LeaseName(seq+3), b); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		if !errors.Is(err, lease.ErrLost) {
			t.Fatalf("first coordinator: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lease loss not noticed")
	}
	if ok, why := cfg.Metrics.Healthy(time.Now()); ok {
		t.Fatalf("healthz ok after losing the lease: %s", why)
	}
}

// TestResumeAfterAbortMidSnapshot aborts the coordinator in the middle of a state
// snapshot; the restarted coordinator resumes it, reusing the committed chunks.
func TestResumeAfterAbortMidSnapshot(t *testing.T) {
	n := newNode(t, 100, 3000) // epoch 1 ends at 100; its state has 3200 items
	base, _ := localStore(t)
	abort := make(chan struct{})
	var once sync.Once
	var chunks int
	var mu sync.Mutex
	st := storagetest.NewFaultStore(base, beforeCommits(func(name string) {
		if strings.HasPrefix(name, "state-") && strings.HasSuffix(name, ".zst") {
			mu.Lock()
			chunks++
			if chunks == 12 {
				once.Do(func() { close(abort) })
			}
			mu.Unlock()
		}
	}))
	cfg := testConfig(n, st, "me")
	cfg.StateSnapshotIntervalEpochs = 1
	cfg.Backup.Concurrency = 1
	cfg.Abort = abort
	r := start(cfg)
	select {
	case err := <-r.done:
		if !errors.Is(err, ErrAborted) {
			t.Fatalf("aborted run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("abort not honoured")
	}
	r.cancel()
	if s := metadataOf(t, base, native.TypeStateSnapshot); len(s) != 0 {
		t.Fatalf("snapshot visible after abort: %v", s)
	}
	folder, ok, err := backup.FindResumableStateSnapshot(context.Background(), base, 100, time.Hour)
	if err != nil || !ok {
		t.Fatalf("no interrupted folder: %v %v", ok, err)
	}
	cfg2 := testConfig(n, base, "me")
	cfg2.StateSnapshotIntervalEpochs = 1
	r2 := start(cfg2)
	waitFor(t, 20*time.Second, "snapshot", func() bool { return gauge(cfg2.Metrics.lastSnapshot) == 100 })
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	if reused := gauge(cfg2.Metrics.chunksReused); reused < 10 {
		t.Fatalf("%v chunks reused", reused)
	}
	s := metadataOf(t, base, native.TypeStateSnapshot)
	if len(s) != 1 || path.Dir(string(s[0].Manifest)) != string(folder) {
		t.Fatalf("snapshot %v, want one in %s", s, folder)
	}
	checkInventory(t, base, 200)
}

// TestGracefulStopFinishesInFlight cancels the run context in the middle of a slow
// state snapshot: with a long grace period it completes and Run returns nil; with a
// short one it is aborted and Run returns ErrGraceExpired.
func TestGracefulStopFinishesInFlight(t *testing.T) {
	n := newNode(t, 100, 3000)
	for _, tc := range []struct {
		grace time.Duration
		want  error
	}{{10 * time.Second, nil}, {50 * time.Millisecond, ErrGraceExpired}} {
		base, _ := localStore(t)
		started := make(chan struct{})
		var once sync.Once
		st := storagetest.NewFaultStore(base, beforeCommits(func(name string) {
			if strings.HasPrefix(name, "state-") {
				once.Do(func() { close(started) })
				time.Sleep(20 * time.Millisecond)
			}
		}))
		cfg := testConfig(n, st, "me")
		cfg.StateSnapshotIntervalEpochs = 1
		cfg.Backup.Concurrency = 1
		cfg.ShutdownGrace = tc.grace
		r := start(cfg)
		select {
		case <-started:
		case <-time.After(20 * time.Second):
			t.Fatal("snapshot did not start")
		}
		err := r.stop(t)
		if !errors.Is(err, tc.want) && !(err == nil && tc.want == nil) {
			t.Fatalf("grace %s: %v, want %v", tc.grace, err, tc.want)
		}
		snaps := metadataOf(t, base, native.TypeStateSnapshot)
		if (tc.want == nil) != (len(snaps) == 1) {
			t.Fatalf("grace %s: snapshots %v", tc.grace, snaps)
		}
		if ts := metadataOf(t, base, native.TypeTransaction); len(ts) != 0 {
			t.Fatalf("new work started after the stop: %v", ts)
		}
	}
}

// TestHealthz serves the metrics handler: 503 before the first heartbeat, before the
// first successful poll and after the node max age; 200 with a fresh heartbeat, the
// lease and a recent poll; /livez 200 until the heartbeat is stale.
func TestHealthz(t *testing.T) {
	m := NewMetrics()
	clock := newFakeClock().set(m)
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	get := func(p string) (int, string) {
		resp, err := srv.Client().Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 503 {
		t.Fatalf("before heartbeat: %d", code)
	}
	m.beat()
	if code, _ := get("/healthz"); code != 503 {
		t.Fatalf("without lease: %d", code)
	}
	m.setLease(true)
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "no successful poll") {
		t.Fatalf("never polled: %d %s", code, body)
	}
	if code, body := get("/livez"); code != 200 {
		t.Fatalf("livez: %d %s", code, body)
	}
	m.polled()
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("healthy: %d %s", code, body)
	}
	clock.Advance(DefaultNodeMaxAge + time.Second)
	if code, body := get("/healthz"); code != 503 || !strings.Contains(body, "node last reached") {
		t.Fatalf("stale poll: %d %s", code, body)
	}
	if code, body := get("/livez"); code != 200 {
		t.Fatalf("livez with a stale poll: %d %s", code, body)
	}
	clock.Advance(2 * time.Minute)
	if code, _ := get("/livez"); code != 503 {
		t.Fatalf("stale heartbeat: %d", code)
	}
	_, body := get("/metrics")
	for _, name := range []string{"heartbeat_timestamp_seconds", "last_epoch_ending_epoch", "last_snapshot_version", "last_transaction_version",
		"lag_versions", "lag_known", "last_successful_poll_timestamp_seconds", "bytes_written_total", "chunks_written_total", "chunks_reused_total", "retries_total", "failures_total",
		"child_processes_in_flight", "lease_held"} {
		if !strings.Contains(body, "ledgervault_coordinator_"+name) {
			t.Fatalf("metric %s missing", name)
		}
	}
	srv.Client().CloseIdleConnections()
}

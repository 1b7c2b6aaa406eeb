package coordinator

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
)

func TestTimeDue(t *testing.T) {
	const s = uint64(1_000_000_000)
	for _, tc := range []struct {
		snap, cand uint64
		interval   time.Duration
		want       bool
	}{
		{s, s + 12_000_000, 12 * time.Second, true},
		{s, s + 11_999_999, 12 * time.Second, false},
		{s, s + 60_000_001, time.Minute, true},
		{s, s - 1, time.Second, false}, // a candidate older than the snapshot
		{s, s, time.Microsecond, false},
	} {
		if got := timeDue(tc.snap, tc.cand, tc.interval); got != tc.want {
			t.Errorf("timeDue(%d, %d, %s) = %v, want %v", tc.snap, tc.cand, tc.interval, got, tc.want)
		}
	}
}

// TestNextJobTimeRule: with the epoch rule off, a snapshot of the newest ended
// epoch is planned only when the time rule asks for one, never when a snapshot of
// that epoch (or a later one) exists; with both rules either one suffices.
func TestNextJobTimeRule(t *testing.T) {
	never := func(string) bool { return false }
	v := newView(entries(
		native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: 0, LastEpoch: 9, LastVersion: 900},
		native.Metadata{Type: native.TypeStateSnapshot, Version: 500, Epoch: 5},
	))
	in := planInput{committed: 950, hasCommitted: true, ended: 10, skip: never, batch: 10_000}
	if j, ok := v.nextJob(in); ok {
		t.Fatalf("no rule asks for a snapshot, planned %+v", j)
	}
	in.snapshotTimeDue = true
	if j, ok := v.nextJob(in); !ok || j.kind != KindStateSnapshot || j.epoch != 9 {
		t.Fatalf("time rule: %+v %v", j, ok)
	}
	// The epoch rule alone (every 5 epochs: 5 is within [5, 9]): nothing; every 4: due.
	in.snapshotTimeDue, in.snapshotEvery = false, 5
	if j, ok := v.nextJob(in); ok {
		t.Fatalf("epoch rule every 5: planned %+v", j)
	}
	in.snapshotEvery = 4
	if j, ok := v.nextJob(in); !ok || j.epoch != 9 {
		t.Fatalf("epoch rule every 4: %+v %v", j, ok)
	}
	// A snapshot of epoch 9 exists: neither rule plans another one.
	v.add(&native.Metadata{Type: native.TypeStateSnapshot, Version: 900, Epoch: 9})
	in.snapshotTimeDue, in.snapshotEvery = true, 1
	if j, ok := v.nextJob(in); ok {
		t.Fatalf("snapshot of epoch 9 exists, planned %+v", j)
	}
}

// TestSnapshotInterval drives a chain whose ledger infos are one second apart per
// block (5 s per epoch) in steps and checks which epoch endings the time rule
// snapshots with --state-snapshot-interval 12s and no epoch rule: the first ended
// epoch, then the first ending at least 12 s after the newest snapshot, only the
// newest epoch after a jump, after a restart too (the age is derived from
// storage and the node, not from memory).
func TestSnapshotInterval(t *testing.T) {
	var ticks atomic.Int64
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	cc := chainCfg
	cc.Clock = func() time.Time { return base.Add(time.Duration(ticks.Add(1)) * time.Second) }
	n := newNodeWith(t, cc, 100, 0)
	st, _ := localStore(t)
	newCfg := func() Config {
		cfg := testConfig(n, st, "me")
		cfg.StateSnapshotIntervalEpochs = 0
		cfg.StateSnapshotInterval = 12 * time.Second
		cfg.TransactionBatchSize = 100
		return cfg
	}
	cfg := newCfg()
	r := start(cfg)
	ctx := context.Background()
	// commitTo commits up to version last and waits until the coordinator made every
	// backup it wants (transactions come after snapshots in the plan); it returns the
	// snapshot versions in storage.
	commitTo := func(cfg Config, last uint64) []uint64 {
		t.Helper()
		if err := n.chain.CommitUntil(ctx, last); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "catch up", func() bool { return gauge(cfg.Metrics.lastTransaction) == float64(last-1) })
		var vs []uint64
		for _, m := range metadataOf(t, st, native.TypeStateSnapshot) {
			vs = append(vs, m.Version)
		}
		slices.Sort(vs)
		return vs
	}
	steps := []struct {
		last uint64
		want []uint64
	}{
		{100, []uint64{100}},      // no snapshot yet: due
		{200, []uint64{100}},      // 5 s
		{300, []uint64{100}},      // 10 s
		{400, []uint64{100, 400}}, // 15 s
		{600, []uint64{100, 400}}, // 10 s
	}
	for _, s := range steps {
		if got := commitTo(cfg, s.last); !slices.Equal(got, s.want) {
			t.Fatalf("node at %d: snapshots %v, want %v", s.last, got, s.want)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	// Epochs 7 to 10 end while no coordinator runs: the restarted one snapshots
	// only the newest, then goes on from the age of that one.
	if err := n.chain.CommitUntil(ctx, 1000); err != nil {
		t.Fatal(err)
	}
	cfg2 := newCfg()
	r2 := start(cfg2)
	for _, s := range []struct {
		last uint64
		want []uint64
	}{{1000, []uint64{100, 400, 1000}}, {1100, []uint64{100, 400, 1000}}, {1300, []uint64{100, 400, 1000, 1300}}} {
		if got := commitTo(cfg2, s.last); !slices.Equal(got, s.want) {
			t.Fatalf("restarted, node at %d: snapshots %v, want %v", s.last, got, s.want)
		}
	}
	if err := r2.stop(t); err != nil {
		t.Fatal(err)
	}
	// The gaps in ledger time between consecutive snapshots are at least 12 s.
	prev := uint64(0)
	for i, v := range []uint64{100, 400, 1000, 1300} {
		li, err := n.db.EpochEnding(ctx, v/cc.EpochLength)
		if err != nil {
			t.Fatal(err)
		}
		if ts := li.LedgerInfo.TimestampUsec; i > 0 && ts-prev < 12_000_000 {
			t.Fatalf("snapshot at %d only %d µs after the previous one", v, ts-prev)
		}
		prev = li.LedgerInfo.TimestampUsec
	}
	checkInventory(t, st, 100)
}

// TestSnapshotTimeDueWithoutNode: the cases the time rule decides from storage
// alone ask nothing of the node (the coordinator here has none): no snapshot yet,
// a snapshot of the newest ended epoch already, endings not yet backed up, and a
// snapshot older than the node's first stored transaction.
func TestSnapshotTimeDueWithoutNode(t *testing.T) {
	c := &coord{cfg: &Config{StateSnapshotInterval: time.Hour}, endings: map[uint64]ending{}, snapshotTimes: map[uint64]uint64{}}
	endings := native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: 0, LastEpoch: 9, LastVersion: 900}
	for _, tc := range []struct {
		name     string
		metadata []native.Metadata
		ec       uint64
		firstTxn uint64
		want     bool
	}{
		{"no snapshot", []native.Metadata{endings}, 9, 0, true},
		{"snapshot of the epoch", []native.Metadata{endings, {Type: native.TypeStateSnapshot, Version: 900, Epoch: 9}}, 9, 0, false},
		{"endings missing", []native.Metadata{endings}, 10, 0, false},
		{"older than the node's history", []native.Metadata{endings, {Type: native.TypeStateSnapshot, Version: 300, Epoch: 3}}, 9, 301, true},
	} {
		c.view = newView(entries(tc.metadata...))
		got, err := c.snapshotTimeDue(context.Background(), tc.ec, tc.firstTxn)
		if err != nil || got != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
}

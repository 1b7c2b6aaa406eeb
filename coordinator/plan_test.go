package coordinator

import (
	"math"
	"testing"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
)

func TestSpans(t *testing.T) {
	s := newSpans([]span{{10, 19}, {0, 4}, {5, 7}, {30, 39}, {15, 25}})
	want := spans{{0, 7}, {10, 25}, {30, 39}}
	if len(s) != len(want) {
		t.Fatalf("%v", s)
	}
	for i := range s {
		if s[i] != want[i] {
			t.Fatalf("%v, want %v", s, want)
		}
	}
	if m := s.firstMissing(0); m != 8 {
		t.Fatalf("first missing %d", m)
	}
	if m := s.firstMissing(12); m != 26 {
		t.Fatalf("first missing from 12: %d", m)
	}
	if r, ok := s.reach(0); !ok || r != 7 {
		t.Fatalf("reach %d %v", r, ok)
	}
	if _, ok := s.reach(8); ok {
		t.Fatal("reach from a missing value")
	}
	if n, ok := s.nextStart(8); !ok || n != 10 {
		t.Fatalf("next start %d %v", n, ok)
	}
	if _, ok := s.nextStart(30); ok {
		t.Fatal("next start after the last range")
	}
}

func entries(ms ...native.Metadata) []catalog.Entry {
	var out []catalog.Entry
	for _, m := range ms {
		out = append(out, catalog.Entry{Metadata: m})
	}
	return out
}

func TestNextJobOrder(t *testing.T) {
	never := func(string) bool { return false }
	in := planInput{committed: 1050, hasCommitted: true, ended: 10, skip: never, snapshotEvery: 2, batch: 200}

	// Nothing backed up: epoch endings of all ended epochs first.
	v := newView(nil)
	j, ok := v.nextJob(in)
	if !ok || j.kind != KindEpochEnding || j.first != 0 || j.end != 10 {
		t.Fatalf("%+v", j)
	}
	// A hole: only the missing range, up to the next covered epoch.
	v = newView(entries(native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: 0, LastEpoch: 3, LastVersion: 300},
		native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: 6, LastEpoch: 9, LastVersion: 900}))
	j, _ = v.nextJob(in)
	if j.kind != KindEpochEnding || j.first != 4 || j.end != 6 {
		t.Fatalf("%+v", j)
	}
	// Epoch endings in backoff: no snapshot yet (its endings are missing), but the
	// transaction batches verified by endings up to epoch 3 (version 300) go on.
	inSkip := in
	inSkip.skip = func(k string) bool { return k == KindEpochEnding }
	j, ok = v.nextJob(inSkip)
	if !ok || j.kind != KindTransaction || j.first != 0 || j.count != 200 {
		t.Fatalf("%+v", j)
	}
	v.add(&native.Metadata{Type: native.TypeTransaction, FirstVersion: 0, LastVersion: 199})
	j, ok = v.nextJob(inSkip)
	if ok && !(j.kind == KindTransaction && j.first+j.count-1 <= 300) {
		t.Fatalf("batch beyond the verified endings: %+v", j)
	}
	// All endings: a snapshot of the newest ended epoch (9), then batches.
	v.add(&native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: 4, LastEpoch: 5, LastVersion: 500})
	j, _ = v.nextJob(in)
	if j.kind != KindStateSnapshot || j.epoch != 9 {
		t.Fatalf("%+v", j)
	}
	v.add(&native.Metadata{Type: native.TypeStateSnapshot, Version: 800, Epoch: 8})
	j, _ = v.nextJob(in)
	if j.kind != KindTransaction || j.first != 200 {
		t.Fatalf("snapshot of epoch 8 is within 2 epochs of 9: %+v", j)
	}
	// The batches: oldest first, complete ones only (1050 committed: up to 999).
	for want := uint64(200); want < 1000; want += 200 {
		j, ok = v.nextJob(in)
		if !ok || j.kind != KindTransaction || j.first != want {
			t.Fatalf("want batch at %d: %+v", want, j)
		}
		v.add(&native.Metadata{Type: native.TypeTransaction, FirstVersion: j.first, LastVersion: j.first + j.count - 1})
	}
	if j, ok = v.nextJob(in); ok {
		t.Fatalf("incomplete batch scheduled: %+v", j)
	}
	// A node that stores transactions from 450: batches start at 600.
	in.firstTxnVersion = 450
	v = newView(entries(native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: 0, LastEpoch: 9, LastVersion: 900},
		native.Metadata{Type: native.TypeStateSnapshot, Version: 900, Epoch: 9}))
	j, _ = v.nextJob(in)
	if j.kind != KindTransaction || j.first != 600 {
		t.Fatalf("%+v", j)
	}
}

// TestSpansUpToMaxVersion checks that a range ending at the largest value (a metadata
// line may claim one) covers everything after its start instead of wrapping to 0,
// which made the planner schedule [0, B) forever.
func TestSpansUpToMaxVersion(t *testing.T) {
	s := newSpans([]span{{0, 9999}, {10000, math.MaxUint64}})
	if m := s.firstMissing(0); m != math.MaxUint64 {
		t.Fatalf("firstMissing(0) = %d, want none (MaxUint64)", m)
	}
	if last, ok := s.reach(0); !ok || last < 10000 {
		t.Fatalf("reach(0) = %d, %v; want covered past 10000", last, ok)
	}
}

package smt

import (
	"context"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"pgregory.net/rapid"
)

// TestRapidApplySplit checks that a block applied to the two halves of the tree on two
// goroutines returns exactly what the sequential apply returns (roots, writes in order,
// live nodes if asked), or declines (then the sequential apply runs), and that it is
// taken.
func TestRapidApplySplit(t *testing.T) {
	defer func(n uint64) { splitMinLeaves = n }(splitMinLeaves)
	ctx := context.Background()
	taken, declined := 0, 0
	rapid.Check(t, func(t *rapid.T) {
		bases := []ledger.Hash{drawHash(t, "base0"), drawHash(t, "base1")}
		m := map[ledger.Hash]ledger.Hash{}
		for range rapid.IntRange(2, 80).Draw(t, "leaves") {
			m[drawKey(t, bases)] = drawHash(t, "value")
		}
		var ups []Update
		for k, v := range m {
			ups = append(ups, Update{KeyHash: k, ValueHash: v})
		}
		store := NewOverlay(nil)
		root, w, err := Apply(ctx, store, EmptyRoot(), 3, ups)
		if err != nil {
			t.Fatal(err)
		}
		store.Put(w...)
		batches := make([][]Update, rapid.IntRange(1, 8).Draw(t, "versions"))
		for i := range batches {
			batches[i] = drawBatch(t, bases, m)
		}
		splitMinLeaves = 2
		roots, writes, live, ok, err := applySplit(ctx, store, root, 4, batches, true)
		if err != nil {
			t.Fatalf("split apply: %v", err)
		}
		splitMinLeaves = 1 << 62 // sequential
		wantRoots, wantWrites, wantLive, err := applyBlock(ctx, store, root, 4, batches, true)
		if err != nil {
			t.Fatalf("sequential apply: %v", err)
		}
		if !ok {
			declined++
			if roots != nil || writes != nil || live != nil {
				t.Fatal("declined split apply returned results")
			}
			return
		}
		taken++
		if !slices.Equal(roots, wantRoots) {
			t.Fatalf("roots %v, sequential %v", roots, wantRoots)
		}
		if !slices.EqualFunc(writes, wantWrites, func(a, b NodeWrite) bool { return a == b }) {
			t.Fatalf("%d writes differ from the sequential %d", len(writes), len(wantWrites))
		}
		set := func(ws []NodeWrite) map[NodeKey]Node {
			s := map[NodeKey]Node{}
			for _, w := range ws {
				s[w.Key] = w.Node
			}
			return s
		}
		if got, want := set(live), set(wantLive); len(live) != len(wantLive) || !maps.Equal(got, want) {
			t.Fatalf("%d live nodes, sequential %d (sets equal: %v)", len(live), len(wantLive), maps.Equal(got, want))
		}
		// Without the live nodes (as ApplyBlock asks): the same roots and writes.
		splitMinLeaves = 2
		roots, writes, live, ok, err = applySplit(ctx, store, root, 4, batches, false)
		if err != nil || !ok || live != nil || !slices.Equal(roots, wantRoots) ||
			!slices.EqualFunc(writes, wantWrites, func(a, b NodeWrite) bool { return a == b }) {
			t.Fatalf("split apply without live nodes: ok %v, %d live, err %v, or roots or writes differ", ok, len(live), err)
		}
	})
	t.Logf("split taken %d times, declined %d", taken, declined)
	if taken == 0 {
		t.Fatal("the split apply was never taken")
	}
}

// panicReader panics on reads below the root, as a faulty reader might.
type panicReader struct{ base NodeReader }

func (r panicReader) GetNode(ctx context.Context, k NodeKey) (Node, error) {
	if k.Depth > 0 {
		panic("reader fault")
	}
	return r.base.GetNode(ctx, k)
}

// TestApplySplitPanic checks that a panic in a half's goroutine becomes ApplyBlock's
// error instead of ending the process.
func TestApplySplitPanic(t *testing.T) {
	defer func(n uint64) { splitMinLeaves = n }(splitMinLeaves)
	splitMinLeaves = 2
	ctx := context.Background()
	var ups []Update
	for i := range 64 {
		ups = append(ups, Update{KeyHash: KeyHash([]byte{byte(i)}), ValueHash: ValueHash([]byte("v"))})
	}
	store := NewOverlay(nil)
	root, w, err := Apply(ctx, store, EmptyRoot(), 1, ups)
	if err != nil {
		t.Fatal(err)
	}
	store.Put(w...)
	_, _, err = ApplyBlock(ctx, panicReader{store}, root, 2, [][]Update{ups[:10], ups[30:40]})
	if err == nil || !strings.Contains(err.Error(), "panic: reader fault") {
		t.Fatalf("apply with a panicking reader: %v", err)
	}
}

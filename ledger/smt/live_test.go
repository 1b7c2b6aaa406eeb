package smt

import (
	"context"
	"maps"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"pgregory.net/rapid"
)

// reachable returns the keys of every node of the tree rooted at root.
func reachable(t *rapid.T, r NodeReader, root RootRef) map[NodeKey]bool {
	keys := map[NodeKey]bool{}
	if root.LeafCount == 0 {
		return keys
	}
	var walk func(k NodeKey)
	walk = func(k NodeKey) {
		keys[k] = true
		n, err := r.GetNode(context.Background(), k)
		if err != nil {
			t.Fatalf("walk: %v", err)
		}
		if n.IsLeaf {
			return
		}
		for b := range 2 {
			if c := n.Children[b]; c.LeafCount > 0 {
				walk(NodeKey{Version: c.Version, Depth: k.Depth + 1, Path: childPath(k.Path, int(k.Depth), b)})
			}
		}
	}
	walk(NodeKey{Version: root.Key.Version})
	return keys
}

// applyEach is the reference for a block: one Apply per version over an Overlay holding
// the nodes of the versions before.
func applyEach(t *rapid.T, r NodeReader, root RootRef, first uint64, batches [][]Update) ([]RootRef, []NodeWrite) {
	overlay := NewOverlay(r)
	var roots []RootRef
	var all []NodeWrite
	for i, b := range batches {
		var writes []NodeWrite
		var err error
		if root, writes, err = Apply(context.Background(), overlay, root, first+uint64(i), b); err != nil {
			t.Fatalf("apply version %d: %v", first+uint64(i), err)
		}
		overlay.Put(writes...)
		all = append(all, writes...)
		roots = append(roots, root)
	}
	return roots, all
}

// TestRapidApplyBlockLive checks that ApplyBlock and ApplyBlockLive write what one Apply
// per version writes and that ApplyBlockLive reports as live exactly the nodes of the
// block that the last version's tree holds.
func TestRapidApplyBlockLive(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		bases := []ledger.Hash{drawHash(t, "base0"), drawHash(t, "base1")}
		store := newEncStore(t)
		m := map[ledger.Hash]ledger.Hash{}
		root := EmptyRoot()
		version := uint64(0)
		for range rapid.IntRange(1, 6).Draw(t, "blocks") {
			var batches [][]Update
			for range rapid.IntRange(1, 8).Draw(t, "versions") {
				batches = append(batches, drawBatch(t, bases, m))
			}
			wantRoots, wantWrites := applyEach(t, store, root, version+1, batches)
			blockRoots, blockWrites, err := ApplyBlock(ctx, store, root, version+1, batches)
			if err != nil {
				t.Fatalf("apply block: %v", err)
			}
			roots, writes, live, err := ApplyBlockLive(ctx, store, root, version+1, batches)
			if err != nil {
				t.Fatalf("apply block live: %v", err)
			}
			for _, got := range []struct {
				name   string
				roots  []RootRef
				writes []NodeWrite
			}{{"ApplyBlock", blockRoots, blockWrites}, {"ApplyBlockLive", roots, writes}} {
				if len(got.roots) != len(wantRoots) || len(got.writes) != len(wantWrites) {
					t.Fatalf("%s: %d roots %d writes, one Apply per version: %d %d", got.name, len(got.roots), len(got.writes), len(wantRoots), len(wantWrites))
				}
				for i := range got.roots {
					if got.roots[i] != wantRoots[i] {
						t.Fatalf("%s: root %d differs", got.name, i)
					}
				}
				for i := range got.writes {
					if got.writes[i] != wantWrites[i] {
						t.Fatalf("%s: write %d differs", got.name, i)
					}
				}
			}
			store.Put(writes...)
			root = roots[len(roots)-1]
			if want := refRoot(m); root.RootHash() != want {
				t.Fatalf("root %s, reference %s", root.RootHash().Short(), want.Short())
			}
			inTree := reachable(t, store, root)
			wantLive := map[NodeKey]bool{}
			for _, w := range writes {
				if inTree[w.Key] {
					wantLive[w.Key] = true
				}
			}
			gotLive := map[NodeKey]bool{}
			for _, w := range live {
				if gotLive[w.Key] {
					t.Fatalf("live node %s twice", w.Key)
				}
				gotLive[w.Key] = true
				n, err := store.GetNode(ctx, w.Key)
				if err != nil || n != w.Node {
					t.Fatalf("live node %s is not the one written: %v", w.Key, err)
				}
			}
			if !maps.Equal(gotLive, wantLive) {
				t.Fatalf("live nodes: got %d, the tree holds %d of the block's %d", len(gotLive), len(wantLive), len(writes))
			}
			version += uint64(len(batches))
		}
	})
}

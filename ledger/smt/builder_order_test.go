package smt

import (
	"bytes"
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"pgregory.net/rapid"
)

// TestRapidBuilderKeyOrder checks the order in which the builder hands out nodes, which
// lets a store write each chunk's nodes as one sorted, non-overlapping run: within a call
// keys strictly increase; the nodes that sort before a node returned earlier form a
// prefix and are ancestors of such a node; every other node sorts after every node
// returned before. Across all calls every node is returned once.
func TestRapidBuilderKeyOrder(t *testing.T) {
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		bases := []ledger.Hash{drawHash(t, "base0"), drawHash(t, "base1")}
		m := map[ledger.Hash]ledger.Hash{}
		for range rapid.IntRange(1, 60).Draw(t, "leaves") {
			m[drawKey(t, bases)] = drawHash(t, "value")
		}
		leaves := sortedLeaves(m)
		ups := make([]Update, len(leaves))
		for i, l := range leaves {
			ups[i] = Update{KeyHash: l.KeyHash, ValueHash: l.ValueHash}
		}
		store := NewOverlay(nil)
		root, writes, err := Apply(ctx, store, EmptyRoot(), 4, ups)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		store.Put(writes...)
		want := map[string]bool{}
		for _, w := range writes {
			want[string(w.Key.Bytes())] = true
		}

		b := NewBuilder(root.RootHash(), 4)
		var maxKey []byte // the largest key returned so far
		seen := map[string]bool{}
		check := func(call string, nodes []NodeWrite) {
			late := true
			var prev []byte
			for i, n := range nodes {
				k := n.Key.Bytes()
				if prev != nil && bytes.Compare(prev, k) >= 0 {
					t.Fatalf("%s: node %d (%s) does not sort after node %d", call, i, n.Key, i-1)
				}
				prev = k
				if seen[string(k)] {
					t.Fatalf("%s: node %s returned twice", call, n.Key)
				}
				seen[string(k)] = true
				if maxKey != nil && bytes.Compare(k, maxKey) < 0 {
					if !late {
						t.Fatalf("%s: node %d (%s) sorts before a node returned earlier but follows one that does not", call, i, n.Key)
					}
					if n.Node.IsLeaf {
						t.Fatalf("%s: leaf node %s sorts before a node returned earlier", call, n.Key)
					}
					continue
				}
				late = false
			}
			if prev != nil && (maxKey == nil || bytes.Compare(prev, maxKey) > 0) {
				maxKey = prev
			}
		}
		start := 0
		for ci, end := range drawChunkEnds(t, len(leaves)) {
			rp, err := ProveRange(ctx, store, root, leaves[end-1].KeyHash)
			if err != nil {
				t.Fatalf("prove range: %v", err)
			}
			nodes, err := b.AddChunk(leaves[start:end], rp)
			if err != nil {
				t.Fatalf("chunk %d: %v", ci, err)
			}
			check("chunk", nodes)
			start = end
		}
		_, last, err := b.Finish()
		if err != nil {
			t.Fatalf("finish: %v", err)
		}
		// Finish returns the path of the last leaf: its leaf node sorts last, the rest
		// are ancestors of nodes returned before.
		check("finish", last)
		if len(seen) != len(want) {
			t.Fatalf("builder returned %d nodes, Apply writes %d", len(seen), len(want))
		}
		for k := range want {
			if !seen[k] {
				t.Fatalf("node %x not returned", k)
			}
		}
	})
}

package smt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
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
		store, leaves, root, writes := drawAppliedTree(t, 60, 4)
		want := map[string]bool{}
		for _, w := range writes {
			want[string(w.Key.Bytes())] = true
		}

		b := NewBuilder(root.RootHash(), 4)
		// enc hands out the same nodes encoded, in runs of about streamNodes; a failing
		// callback leaves it unchanged.
		defer func(n int) { streamNodes = n }(streamNodes)
		streamNodes = rapid.SampledFrom([]int{1, 2, 5, 1 << 15}).Draw(t, "stream nodes")
		enc := NewBuilder(root.RootHash(), 4)
		stop := errors.New("stop")
		failAt := rapid.IntRange(0, 5).Draw(t, "fail at")
		var encMax []byte // the largest key enc handed out
		var encSeen []NodeKey
		encoded := func(call string, leaves []Leaf, rp RangeProof, want []NodeWrite) {
			if failAt < len(want) {
				calls := 0
				if err := enc.AddChunkFunc(leaves, rp, func(k, v []byte) error {
					if calls == failAt {
						return stop
					}
					calls++
					return nil
				}); !errors.Is(err, stop) {
					t.Fatalf("%s: callback failing at node %d of %d: %v", call, failAt, len(want), err)
				}
			}
			var got []NodeWrite
			if err := enc.AddChunkFunc(leaves, rp, func(k, v []byte) error {
				key, err := DecodeNodeKey(k)
				if err != nil {
					return err
				}
				n, err := DecodeNode(v)
				if err != nil {
					return err
				}
				if !bytes.Equal(k, key.Bytes()) {
					return errors.New("key does not round-trip")
				}
				if enc, _ := n.MarshalBinary(); !bytes.Equal(v, enc) {
					return errors.New("node does not round-trip")
				}
				if encMax == nil || bytes.Compare(k, encMax) > 0 {
					encMax = append(encMax[:0], k...)
				} else if !slices.ContainsFunc(encSeen, func(d NodeKey) bool {
					return d.Depth > key.Depth && prefix(d.Path, int(key.Depth)) == key.Path
				}) {
					return fmt.Errorf("node %s sorts before a node handed out before but is no ancestor of one", key)
				}
				encSeen = append(encSeen, key)
				got = append(got, NodeWrite{Key: key, Node: n})
				return nil
			}); err != nil {
				t.Fatalf("%s: AddChunkFunc: %v", call, err)
			}
			if streamNodes >= 1<<15 && !slices.Equal(got, want) {
				t.Fatalf("%s: AddChunkFunc hands out %d nodes that differ from AddChunk's %d", call, len(got), len(want))
			}
			byKey := func(a, b NodeWrite) int { return bytes.Compare(a.Key.Bytes(), b.Key.Bytes()) }
			slices.SortFunc(got, byKey)
			if !slices.Equal(got, slices.SortedFunc(slices.Values(want), byKey)) {
				t.Fatalf("%s: AddChunkFunc hands out %d nodes, not the %d of AddChunk", call, len(got), len(want))
			}
		}
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
			encoded("chunk", leaves[start:end], rp, nodes)
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

// TestValueHashMatchesLedger checks the fast value hash against the ledger's definition
// for values around the size of its stack buffer.
func TestValueHashMatchesLedger(t *testing.T) {
	v := make([]byte, 600)
	for i := range v {
		v[i] = byte(i * 7)
	}
	for _, n := range []int{0, 1, 8, 32, 40, 41, 55, 64, 100, 255, 256, 257, 300, 600} {
		if ValueHash(v[:n]) != ledger.HashOf(ledger.DomainStateValue, v[:n]) {
			t.Fatalf("value hash of %d bytes differs from HashOf", n)
		}
	}
}

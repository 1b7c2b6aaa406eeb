package smt

import (
	"bytes"
	"context"
	"slices"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"pgregory.net/rapid"
)

// TestRapidPostOrderSegments: a SegmentBuilder in post-order hands out exactly the nodes
// the key-order one hands out, each one's post-order key above every key handed out
// before it (for the chunks before it too), and builds the same segment (the tree
// accepts it and ends at the same root).
func TestRapidPostOrderSegments(t *testing.T) {
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		store, leaves, root, _ := drawAppliedTree(t, 80, 4)
		ends := drawChunkEnds(t, len(leaves))
		b := NewBuilder(root.Hash, 4)
		var last []byte
		start := 0
		for i, end := range ends {
			var prev *ledger.Hash
			if i > 0 {
				prev = &leaves[start-1].KeyHash
			}
			var pre, post [][]byte
			sbPre := NewSegmentBuilder(4, prev, func(k, v []byte) error {
				pre = append(pre, append(append([]byte(nil), k...), v...))
				return nil
			})
			sbPost := NewSegmentBuilderPostOrder(4, prev, func(w *NodeWrite) error {
				pk := w.Key.AppendPostOrderKey(nil)
				if last != nil && bytes.Compare(pk, last) <= 0 {
					t.Fatalf("chunk %d: node %s handed out after a node that follows it in post-order", i, w.Key)
				}
				last = pk
				k, _ := w.Key.AppendBinary(nil)
				post = append(post, w.Node.appendBinary(k))
				return nil
			})
			for _, l := range leaves[start:end] {
				if err := sbPre.Add(l); err != nil {
					t.Fatal(err)
				}
				if err := sbPost.Add(l); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := sbPre.Finish(); err != nil {
				t.Fatal(err)
			}
			seg, err := sbPost.Finish()
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(post, bytes.Compare)
			slices.SortFunc(pre, bytes.Compare)
			if !slices.EqualFunc(pre, post, bytes.Equal) {
				t.Fatalf("chunk %d: %d nodes in post-order, %d in key order, or different ones", i, len(post), len(pre))
			}
			proof, err := ProveRange(ctx, store, root, leaves[end-1].KeyHash)
			if err != nil {
				t.Fatal(err)
			}
			if err := b.AddSegment(seg, proof, nil); err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			start = end
		}
		got, _, err := b.Finish()
		if err != nil || got.Hash != root.Hash {
			t.Fatalf("finish: %v, root %s, want %s", err, got.Hash.Short(), root.Hash.Short())
		}
	})
}

// TestPostOrderSegmentStopsOnError: the hand-out function's error ends the segment.
func TestPostOrderSegmentStopsOnError(t *testing.T) {
	stop := errStop{}
	sb := NewSegmentBuilderPostOrder(1, nil, func(*NodeWrite) error { return stop })
	var err error
	for i := 0; i < 4 && err == nil; i++ {
		var l Leaf
		l.KeyHash[0] = byte(i * 64)
		err = sb.Add(l)
	}
	if err == nil {
		_, err = sb.Finish()
	}
	if err != stop {
		t.Fatalf("error %v, want the hand-out's", err)
	}
}

type errStop struct{}

func (errStop) Error() string { return "stop" }

// TestRapidPostOrderKey: byte order of post-order keys is post-order: descendants
// first, then left before right.
func TestRapidPostOrderKey(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		base := drawHash(t, "path")
		da := rapid.IntRange(0, MaxDepth).Draw(t, "depth a")
		db := rapid.IntRange(0, MaxDepth).Draw(t, "depth b")
		pb := base
		for i := range rapid.IntRange(0, 3).Draw(t, "flips") {
			pb = setBit(pb, (i*37+rapid.IntRange(0, MaxDepth-1).Draw(t, "flip"))%MaxDepth)
		}
		a := NodeKey{Version: 9, Depth: uint16(da), Path: prefix(base, da)}
		b := NodeKey{Version: 9, Depth: uint16(db), Path: prefix(pb, db)}
		if a == b {
			return
		}
		// want: does a come before b in post-order?
		c := min(commonPrefixLen(&a.Path, &b.Path), da, db)
		var want bool
		switch {
		case c == db: // b is an ancestor of a (or a is below b)
			want = true
		case c == da: // a is an ancestor of b
			want = false
		default:
			want = bit(&a.Path, c) == 0
		}
		got := bytes.Compare(a.AppendPostOrderKey(nil), b.AppendPostOrderKey(nil)) < 0
		if got != want {
			t.Fatalf("%s before %s: %v, want %v", a, b, got, want)
		}
	})
}

// TestRapidPostOrderGrouper: the groups a PostOrderGrouper assembles from a post-order
// segment are GroupNodeWrites' groups of the same nodes, complete, in increasing
// post-order key order; Rest hands out exactly the nodes of the groups left open.
func TestRapidPostOrderGrouper(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		_, leaves, _, _ := drawAppliedTree(t, 120, 6)
		skip := rapid.IntRange(0, len(leaves)-1).Draw(t, "leaves before the segment")
		var prev *ledger.Hash
		if skip > 0 {
			prev = &leaves[skip-1].KeyHash
		}
		var all []NodeWrite
		var p PostOrderGrouper
		got := map[NodeKey][]byte{}
		var last []byte
		sb := NewSegmentBuilderPostOrder(6, prev, func(w *NodeWrite) error {
			all = append(all, *w)
			g, enc, ok, err := p.Add(w)
			if err != nil || !ok {
				return err
			}
			pk := g.AppendPostOrderKey(nil)
			if last != nil && bytes.Compare(pk, last) <= 0 {
				t.Fatalf("group %s completed out of post-order", g)
			}
			last = pk
			got[g] = bytes.Clone(enc)
			return nil
		})
		for _, l := range leaves[skip:] {
			if err := sb.Add(l); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := sb.Finish(); err != nil {
			t.Fatal(err)
		}
		rest := map[NodeKey]bool{}
		if err := p.Rest(func(k NodeKey, enc []byte) error {
			n, err := DecodeNode(enc)
			if err != nil {
				t.Fatal(err)
			}
			if _, dup := got[k.GroupKey()]; dup || rest[k] {
				t.Fatalf("node %s handed out alone, and in a group or twice", k)
			}
			rest[k] = true
			for _, w := range all {
				if w.Key == k && w.Node != n {
					t.Fatalf("node %s handed out alone changed", k)
				}
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		var grouped []NodeWrite
		for _, w := range all {
			if !rest[w.Key] {
				grouped = append(grouped, w)
			}
		}
		if len(grouped)+len(rest) != len(all) {
			t.Fatalf("%d grouped + %d alone of %d nodes", len(grouped), len(rest), len(all))
		}
		want := map[NodeKey][]byte{}
		if err := GroupNodeWrites(grouped, func(g NodeKey, enc []byte) error {
			want[g] = bytes.Clone(enc)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if len(want) != len(got) {
			t.Fatalf("%d groups, GroupNodeWrites makes %d", len(got), len(want))
		}
		for g, enc := range want {
			if !bytes.Equal(got[g], enc) {
				t.Fatalf("group %s differs from GroupNodeWrites'", g)
			}
		}
		if len(p.open) != 0 {
			t.Fatalf("%d groups open after Rest", len(p.open))
		}
	})
}

// TestPostOrderGrouperRefusesTwice: a member seen twice is an error.
func TestPostOrderGrouperRefusesTwice(t *testing.T) {
	var p PostOrderGrouper
	var k, v ledger.Hash
	w := NodeWrite{Key: NodeKey{Version: 1, Depth: 3}, Node: Node{IsLeaf: true, KeyHash: k, ValueHash: v}}
	if _, _, _, err := p.Add(&w); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := p.Add(&w); err == nil {
		t.Fatal("a node seen twice accepted")
	}
}

// drawAppliedTree draws 1 to max leaves (keys clustered around two bases, so that paths
// share long prefixes) and returns a store holding the tree Apply writes for them at
// version, the leaves in key order, the root and Apply's nodes.
func drawAppliedTree(t *rapid.T, max int, version uint64) (*Overlay, []Leaf, RootRef, []NodeWrite) {
	bases := []ledger.Hash{drawHash(t, "base0"), drawHash(t, "base1")}
	m := map[ledger.Hash]ledger.Hash{}
	for range rapid.IntRange(1, max).Draw(t, "leaves") {
		m[drawKey(t, bases)] = drawHash(t, "value")
	}
	leaves := sortedLeaves(m)
	ups := make([]Update, len(leaves))
	for i, l := range leaves {
		ups[i] = Update{KeyHash: l.KeyHash, ValueHash: l.ValueHash}
	}
	store := NewOverlay(nil)
	root, writes, err := Apply(context.Background(), store, EmptyRoot(), version, ups)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	store.Put(writes...)
	return store, leaves, root, writes
}

package smt

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"pgregory.net/rapid"
)

// TestRapidSegmentsMatchChunks checks that chunks built as segments on their own
// (concurrently) and added in order give the builder exactly the state AddChunk gives it
// (the same checkpoint after every chunk, the same root) and, together, exactly the
// nodes AddChunk returns for each chunk; that every node a segment hands out sorts after
// every node handed out for the chunks before it, and the nodes AddSegment hands out
// before the segment's own; and that a segment built after the wrong leaf, or from a
// changed value, is refused without changing the builder.
func TestRapidSegmentsMatchChunks(t *testing.T) {
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		store, leaves, root, _ := drawAppliedTree(t, 60, 4)
		var err error
		defer func(n int) { streamNodes = n }(streamNodes)
		streamNodes = rapid.SampledFrom([]int{1, 2, 5, 1 << 15}).Draw(t, "stream nodes")

		ends := drawChunkEnds(t, len(leaves))
		starts := append([]int{0}, ends[:len(ends)-1]...)
		proofs := make([]RangeProof, len(ends))
		for i, end := range ends {
			if proofs[i], err = ProveRange(ctx, store, root, leaves[end-1].KeyHash); err != nil {
				t.Fatalf("prove range: %v", err)
			}
		}
		// The segments, built concurrently, each with the nodes it handed out.
		segs := make([]*Segment, len(ends))
		segNodes := make([][][]byte, len(ends))
		errs := make([]error, len(ends))
		var wg sync.WaitGroup
		for i := range ends {
			wg.Go(func() {
				var prev *ledger.Hash
				if i > 0 {
					prev = &leaves[starts[i]-1].KeyHash
				}
				sb := NewSegmentBuilder(4, prev, func(k, v []byte) error {
					segNodes[i] = append(segNodes[i], append(append([]byte(nil), k...), v...))
					return nil
				})
				for _, l := range leaves[starts[i]:ends[i]] {
					if errs[i] = sb.Add(l); errs[i] != nil {
						return
					}
				}
				segs[i], errs[i] = sb.Finish()
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("segment %d: %v", i, err)
			}
		}

		ref := NewBuilder(root.RootHash(), 4)
		b := NewBuilder(root.RootHash(), 4)
		var maxKey []byte // the largest node key handed out for earlier chunks
		entry := func(k, v []byte) []byte { return append(append([]byte(nil), k...), v...) }
		for i := range ends {
			want, err := ref.AddChunk(leaves[starts[i]:ends[i]], proofs[i])
			if err != nil {
				t.Fatalf("chunk %d: %v", i, err)
			}
			if i > 0 {
				// Refused: a segment built after another leaf, or with a changed value.
				cp := b.Checkpoint()
				wrong := NewSegmentBuilder(4, &leaves[0].KeyHash, nil)
				if starts[i]-1 == 0 {
					wrong = NewSegmentBuilder(4, nil, nil)
				}
				for _, l := range leaves[starts[i]:ends[i]] {
					if err := wrong.Add(l); err != nil {
						t.Fatalf("wrong segment: %v", err)
					}
				}
				ws, _ := wrong.Finish()
				if err := b.AddSegment(ws, proofs[i], func(k, v []byte) error { return nil }); err == nil {
					t.Fatalf("chunk %d: a segment built after the wrong leaf was accepted", i)
				}
				bad := NewSegmentBuilder(4, &leaves[starts[i]-1].KeyHash, nil)
				j := rapid.IntRange(starts[i], ends[i]-1).Draw(t, "changed leaf")
				for k, l := range leaves[starts[i]:ends[i]] {
					if starts[i]+k == j {
						l.ValueHash[0] ^= 1
					}
					if err := bad.Add(l); err != nil {
						t.Fatalf("changed segment: %v", err)
					}
				}
				bs, _ := bad.Finish()
				if err := b.AddSegment(bs, proofs[i], func(k, v []byte) error { return nil }); err == nil {
					t.Fatalf("chunk %d: a segment with a changed value was accepted", i)
				}
				if !bytes.Equal(cp, b.Checkpoint()) {
					t.Fatalf("chunk %d: a refused segment changed the builder", i)
				}
			}
			var got [][]byte
			var merged [][]byte
			if err := b.AddSegment(segs[i], proofs[i], func(k, v []byte) error {
				merged = append(merged, entry(k, v))
				return nil
			}); err != nil {
				t.Fatalf("chunk %d: AddSegment: %v", i, err)
			}
			for _, n := range segNodes[i] {
				k := n[:NodeKeySize]
				if maxKey != nil && bytes.Compare(k, maxKey) <= 0 {
					t.Fatalf("chunk %d: segment node %x sorts before a node of an earlier chunk", i, k)
				}
				for _, x := range merged {
					if bytes.Compare(x[:NodeKeySize], k) >= 0 {
						t.Fatalf("chunk %d: AddSegment's node %x does not sort before the segment's node %x", i, x[:NodeKeySize], k)
					}
				}
			}
			got = append(append(got, merged...), segNodes[i]...)
			for _, n := range got {
				if k := n[:NodeKeySize]; maxKey == nil || bytes.Compare(k, maxKey) > 0 {
					maxKey = append(maxKey[:0], k...)
				}
			}
			var wantEnc [][]byte
			for _, w := range want {
				v, _ := w.Node.MarshalBinary()
				wantEnc = append(wantEnc, entry(w.Key.Bytes(), v))
			}
			slices.SortFunc(got, bytes.Compare)
			slices.SortFunc(wantEnc, bytes.Compare)
			if !slices.EqualFunc(got, wantEnc, bytes.Equal) {
				t.Fatalf("chunk %d: segments hand out %d nodes, AddChunk returns %d, or they differ", i, len(got), len(wantEnc))
			}
			if !bytes.Equal(b.Checkpoint(), ref.Checkpoint()) {
				t.Fatalf("chunk %d: checkpoints differ", i)
			}
		}
		r1, n1, err1 := ref.Finish()
		r2, n2, err2 := b.Finish()
		if err1 != nil || err2 != nil || r1 != r2 || r2.RootHash() != root.RootHash() || !slices.Equal(n1, n2) {
			t.Fatalf("finish: %v %v, roots %s %s", err1, err2, r1.RootHash().Short(), r2.RootHash().Short())
		}
	})
}

// TestSegmentOrder checks that a segment refuses leaves out of order, a first leaf that
// does not follow the assumed one, and no leaves.
func TestSegmentOrder(t *testing.T) {
	a, b := ledger.Hash{0x10}, ledger.Hash{0x20}
	s := NewSegmentBuilder(1, &b, nil)
	if err := s.Add(Leaf{KeyHash: a}); err == nil {
		t.Fatal("a first leaf before the assumed one was accepted")
	}
	s = NewSegmentBuilder(1, nil, nil)
	if err := s.Add(Leaf{KeyHash: b}); err != nil {
		t.Fatal(err)
	}
	for _, k := range []ledger.Hash{a, b} {
		if err := s.Add(Leaf{KeyHash: k}); err == nil {
			t.Fatalf("leaf %s after %s was accepted", k.Short(), b.Short())
		}
	}
	if _, err := NewSegmentBuilder(1, nil, nil).Finish(); err == nil {
		t.Fatal("an empty segment was accepted")
	}
}

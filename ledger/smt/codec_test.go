package smt

import (
	"bytes"
	"context"
	"encoding/binary"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
)

func sampleNodes() []Node {
	a, b := KeyHash([]byte("a")), KeyHash([]byte("b"))
	leaf := Child{Hash: a, Version: 7, LeafCount: 1, IsLeaf: true}
	inner := Child{Hash: b, Version: 9, LeafCount: 12}
	empty := Child{Hash: PlaceholderHash}
	return []Node{
		{IsLeaf: true, KeyHash: a, ValueHash: b},
		{Children: [2]Child{leaf, leaf}},
		{Children: [2]Child{leaf, inner}},
		{Children: [2]Child{inner, empty}},
		{Children: [2]Child{empty, inner}},
		{Children: [2]Child{inner, inner}},
	}
}

func TestNodeCodec(t *testing.T) {
	for i, n := range sampleNodes() {
		enc, err := n.MarshalBinary()
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		back, err := DecodeNode(enc)
		if err != nil || back != n {
			t.Fatalf("node %d: round trip: %+v %v", i, back, err)
		}
		for cut := 0; cut < len(enc); cut++ {
			if _, err := DecodeNode(enc[:cut]); err == nil {
				t.Fatalf("node %d truncated to %d bytes decodes", i, cut)
			}
		}
		if _, err := DecodeNode(append(enc, 0)); err == nil {
			t.Fatalf("node %d with a trailing byte decodes", i)
		}
	}
	a := KeyHash([]byte("a"))
	bad := []Node{
		{Children: [2]Child{{Hash: a, Version: 1, LeafCount: 1, IsLeaf: true}, {Hash: PlaceholderHash}}}, // should collapse
		{Children: [2]Child{{Hash: a, LeafCount: 1}, {Hash: a, LeafCount: 5}}},                           // internal with 1 leaf
		{Children: [2]Child{{Hash: a, LeafCount: 2, IsLeaf: true}, {Hash: a, LeafCount: 5}}},             // leaf with 2 leaves
		{Children: [2]Child{{Hash: a, LeafCount: 1 << 63}, {Hash: a, LeafCount: 1 << 63}}},               // overflow
		{Children: [2]Child{{Hash: a}, {Hash: a, LeafCount: 5}}},                                         // empty with a hash
	}
	for i, n := range bad {
		if _, err := n.MarshalBinary(); err == nil {
			t.Fatalf("bad node %d encodes", i)
		}
	}
	hostile := [][]byte{
		nil, {0}, {3}, {tagInternal}, {tagInternal, 0}, {tagInternal, 0x10},
		{tagInternal, flagLeaf}, // leaf flag on an absent child
	}
	over := append([]byte{tagInternal, 0x05}, make([]byte, 2*childFixedBytes)...)
	binary.BigEndian.PutUint64(over[2+childFixedBytes:], 1<<63)
	hostile = append(hostile, over, make([]byte, MaxNodeSize+1))
	for i, b := range hostile {
		if _, err := DecodeNode(b); err == nil {
			t.Fatalf("hostile node %d decodes", i)
		}
	}
}

func TestNodeKeyOrder(t *testing.T) {
	// Keys sort by version, then in pre-order: a node before its subtrees, left before right.
	p := setBit(KeyHash([]byte("p")), 0)
	keys := []NodeKey{
		{Version: 1, Depth: 0},
		{Version: 1, Depth: 1},
		{Version: 1, Depth: 2},
		{Version: 1, Depth: 2, Path: setBit(ledger.Hash{}, 1)},
		{Version: 1, Depth: 1, Path: setBit(ledger.Hash{}, 0)},
		{Version: 1, Depth: 256, Path: p},
		{Version: 2, Depth: 0},
	}
	for i := 1; i < len(keys); i++ {
		if bytes.Compare(keys[i-1].Bytes(), keys[i].Bytes()) >= 0 {
			t.Fatalf("key %s does not sort before %s", keys[i-1], keys[i])
		}
	}
	if _, err := DecodeNodeKey(NodeKey{Depth: 3, Path: setBit(ledger.Hash{}, 3)}.Bytes()); err == nil {
		t.Fatal("path bit beyond depth accepted")
	}
	if _, err := DecodeNodeKey(NodeKey{Depth: 257}.Bytes()); err == nil {
		t.Fatal("depth 257 accepted")
	}
}

func FuzzDecodeNode(f *testing.F) {
	for _, n := range sampleNodes() {
		b, _ := n.MarshalBinary()
		f.Add(b)
	}
	f.Add([]byte{tagInternal, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := DecodeNode(b)
		if err != nil {
			return
		}
		enc, err := n.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("decoded node does not re-encode to its bytes: %v", err)
		}
		_ = n.Hash()
	})
}

func FuzzDecodeNodeKey(f *testing.F) {
	f.Add(NodeKey{Version: 3, Depth: 9, Path: prefix(KeyHash([]byte("x")), 9)}.Bytes())
	f.Add(NodeKey{Version: 1 << 60, Depth: 256, Path: KeyHash([]byte("x"))}.Bytes())
	f.Add([]byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, b []byte) {
		k, err := DecodeNodeKey(b)
		if err != nil {
			return
		}
		if !bytes.Equal(k.Bytes(), b) {
			t.Fatal("decoded key does not re-encode to its bytes")
		}
	})
}

func FuzzDecodeRootRef(f *testing.F) {
	k := KeyHash([]byte("k"))
	for _, r := range []RootRef{EmptyRoot(), {Key: NodeKey{Version: 4}, Hash: k, LeafCount: 1, IsLeaf: true}, {Key: NodeKey{Version: 9}, Hash: k, LeafCount: 77}} {
		b, err := r.AppendBinary(nil)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRootRef(b)
		if err != nil {
			return
		}
		enc, err := r.AppendBinary(nil)
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("decoded root does not re-encode to its bytes: %v", err)
		}
	})
}

// fuzzTree returns a small tree in an in-memory store, its sorted leaves and its root.
func fuzzTree(tb testing.TB) (*Overlay, []Leaf, RootRef) {
	store := NewOverlay(nil)
	var ups []Update
	for i := range 40 {
		ups = append(ups, Update{KeyHash: KeyHash([]byte{byte(i)}), ValueHash: ValueHash([]byte{byte(i), 1})})
	}
	root, w, err := Apply(context.Background(), store, EmptyRoot(), 1, ups)
	if err != nil {
		tb.Fatal(err)
	}
	store.Put(w...)
	var leaves []Leaf
	_ = Leaves(context.Background(), store, root, 0, func(_ uint64, l Leaf) error { leaves = append(leaves, l); return nil })
	return store, leaves, root
}

func FuzzDecodeProof(f *testing.F) {
	store, leaves, root := fuzzTree(f)
	for _, k := range []ledger.Hash{leaves[3].KeyHash, KeyHash([]byte("absent"))} {
		p, err := Prove(context.Background(), store, root, k)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := p.MarshalBinary()
		f.Add(b, k[:])
	}
	f.Fuzz(func(t *testing.T, b, key []byte) {
		p, err := DecodeProof(b)
		if err != nil {
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("decoded proof does not re-encode to its bytes: %v", err)
		}
		var k ledger.Hash
		copy(k[:], key)
		v := leaves[3].ValueHash
		_ = p.Verify(root.Hash, k, nil)
		_ = p.Verify(root.Hash, k, &v)
	})
}

func FuzzDecodeRangeProof(f *testing.F) {
	store, leaves, root := fuzzTree(f)
	for _, end := range []int{1, 17, len(leaves)} {
		p, err := ProveRange(context.Background(), store, root, leaves[end-1].KeyHash)
		if err != nil {
			f.Fatal(err)
		}
		b, _ := p.MarshalBinary()
		f.Add(b, uint8(end))
	}
	f.Fuzz(func(t *testing.T, b []byte, end uint8) {
		p, err := DecodeRangeProof(b)
		if err != nil {
			return
		}
		enc, err := p.MarshalBinary()
		if err != nil || !bytes.Equal(enc, b) {
			t.Fatalf("decoded range proof does not re-encode to its bytes: %v", err)
		}
		n := 1 + int(end)%len(leaves)
		err = VerifyRange(root.Hash, leaves[:n], p)
		want, perr := ProveRange(context.Background(), store, root, leaves[n-1].KeyHash)
		if perr != nil {
			t.Fatal(perr)
		}
		wantEnc, _ := want.MarshalBinary()
		if (err == nil) != bytes.Equal(wantEnc, b) {
			t.Fatalf("range proof accepted=%v, but equal to the real one=%v", err == nil, bytes.Equal(wantEnc, b))
		}
	})
}

func FuzzResumeBuilder(f *testing.F) {
	store, leaves, root := fuzzTree(f)
	b := NewBuilder(root.Hash, 5)
	f.Add(b.Checkpoint())
	for _, end := range []int{1, 9, 30} {
		start := int(b.LeafCount())
		p, err := ProveRange(context.Background(), store, root, leaves[end-1].KeyHash)
		if err != nil {
			f.Fatal(err)
		}
		if _, err := b.AddChunk(leaves[start:end], p); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Checkpoint())
	}
	f.Fuzz(func(t *testing.T, cp []byte) {
		b, err := ResumeBuilder(root.Hash, 5, cp)
		if err != nil {
			return
		}
		if !bytes.Equal(b.Checkpoint(), cp) {
			t.Fatal("checkpoint does not round-trip")
		}
		n := b.LeafCount()
		if n < uint64(len(leaves)) {
			p, err := ProveRange(context.Background(), store, root, leaves[len(leaves)-1].KeyHash)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = b.AddChunk(leaves[n:], p)
		}
		_, _, _ = b.Finish()
	})
}

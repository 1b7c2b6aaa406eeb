package smt

import (
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	store := NewOverlay(nil)
	m := map[ledger.Hash]ledger.Hash{}
	root := EmptyRoot()
	for v := uint64(1); v <= 50; v++ {
		var ups []Update
		for i := 0; i < 5; i++ {
			k := KeyHash([]byte{byte(v), byte(i)})
			val := ValueHash([]byte{byte(v * 3), byte(i)})
			if v%7 == 0 && i < 3 {
				k = KeyHash([]byte{byte(v - 1), byte(i)})
				ups = append(ups, Update{KeyHash: k, Delete: true})
				delete(m, k)
				continue
			}
			ups = append(ups, Update{KeyHash: k, ValueHash: val})
			m[k] = val
		}
		var w []NodeWrite
		var err error
		root, w, err = Apply(ctx, store, root, v, ups)
		if err != nil {
			t.Fatal(err)
		}
		store.Put(w...)
		if root.RootHash() != refRoot(m) || root.LeafCount != uint64(len(m)) {
			t.Fatalf("v%d: root mismatch", v)
		}
	}
	b := NewBuilder(root.Hash, 100)
	var leaves []Leaf
	if err := Leaves(ctx, store, root, 0, func(_ uint64, l Leaf) error { leaves = append(leaves, l); return nil }); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < len(leaves); i += 17 {
		end := min(i+17, len(leaves))
		p, err := ProveRange(ctx, store, root, leaves[end-1].KeyHash)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.AddChunk(leaves[i:end], p); err != nil {
			t.Fatal(err)
		}
	}
	r2, _, err := b.Finish()
	if err != nil || r2.Hash != root.Hash {
		t.Fatal(err)
	}
}

package smt

import (
	"bytes"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
)

func TestGroupSlots(t *testing.T) {
	h := KeyHash([]byte("slot"))
	for d := 0; d <= MaxDepth; d++ {
		k := NodeKey{Version: 5, Depth: uint16(d), Path: prefix(h, d)}
		g := k.GroupKey()
		if g.Depth%GroupLevels != 0 || int(g.Depth) > d || d-int(g.Depth) >= GroupLevels {
			t.Fatalf("depth %d: group depth %d", d, g.Depth)
		}
		s := groupSlot(&k)
		if s < 1 || s > groupSlots {
			t.Fatalf("depth %d: slot %d", d, s)
		}
		if back := slotKey(g, s); back != k {
			t.Fatalf("depth %d: slot %d gives back %s, want %s", d, s, back, k)
		}
	}
}

func sampleGroup(t *testing.T) (NodeKey, []byte) {
	h := KeyHash([]byte("g"))
	leaf := Child{Hash: KeyHash([]byte("a")), Version: 7, LeafCount: 1, IsLeaf: true}
	inner := Child{Hash: KeyHash([]byte("b")), Version: 7, LeafCount: 3}
	writes := []NodeWrite{
		{Key: NodeKey{Version: 7, Depth: 8, Path: prefix(h, 8)}, Node: Node{Children: [2]Child{leaf, inner}}},
		{Key: NodeKey{Version: 7, Depth: 9, Path: prefix(setBit(h, 8), 9)}, Node: Node{Children: [2]Child{leaf, {Hash: KeyHash([]byte("c")), LeafCount: 2, Version: 7}}}},
		{Key: NodeKey{Version: 7, Depth: 11, Path: prefix(setBit(h, 8), 11)}, Node: Node{IsLeaf: true, KeyHash: prefix(setBit(h, 8), 11), ValueHash: h}},
	}
	var gk NodeKey
	var enc []byte
	n := 0
	if err := GroupNodeWrites(writes, func(g NodeKey, b []byte) error {
		gk, enc = g, append([]byte(nil), b...)
		n++
		return nil
	}); err != nil || n != 1 {
		t.Fatalf("group: %d groups, %v", n, err)
	}
	back, err := DecodeGroup(nil, gk, enc)
	if err != nil || len(back) != len(writes) {
		t.Fatalf("decode: %d nodes, %v", len(back), err)
	}
	for i := range writes {
		if back[i] != writes[i] {
			t.Fatalf("node %d: %+v, want %+v", i, back[i], writes[i])
		}
	}
	return gk, enc
}

func TestGroupCodecRejects(t *testing.T) {
	gk, enc := sampleGroup(t)
	for cut := 0; cut < len(enc); cut++ {
		if _, err := DecodeGroup(nil, gk, enc[:cut]); err == nil && cut != 0 && !isSlotBoundary(gk, enc, cut) {
			t.Fatalf("group truncated to %d bytes decodes", cut)
		}
	}
	if _, err := DecodeGroup(nil, gk, append(enc, 1)); err == nil {
		t.Fatal("group with a trailing byte decodes")
	}
	dup := append(append([]byte(nil), enc...), enc...)
	if _, err := DecodeGroup(nil, gk, dup); err == nil {
		t.Fatal("group with its slots twice decodes")
	}
	odd := gk
	odd.Depth = 9
	if _, err := DecodeGroup(nil, odd, enc); err == nil {
		t.Fatal("group at depth 9 decodes")
	}
	deep := NodeKey{Version: 1, Depth: MaxDepth, Path: KeyHash([]byte("x"))}
	internal := append([]byte{2}, enc[1:]...) // slot 2 sits below depth 256
	if _, err := DecodeGroup(nil, deep, internal); err == nil {
		t.Fatal("group slot below depth 256 decodes")
	}
	if _, err := DecodeGroup(nil, gk, bytes.Repeat([]byte{1}, MaxGroupSize+1)); err == nil {
		t.Fatal("oversized group decodes")
	}
	w := []NodeWrite{{Key: NodeKey{Version: 1, Depth: 3, Path: ledger.Hash{1}}}}
	if err := GroupNodeWrites(w, func(NodeKey, []byte) error { return nil }); err == nil {
		t.Fatal("node key with bits beyond its depth groups")
	}
}

// isSlotBoundary reports whether enc[:cut] ends exactly after a whole slot (then it is
// a valid group with fewer nodes).
func isSlotBoundary(gk NodeKey, enc []byte, cut int) bool {
	for off := 0; off < cut; {
		n, err := nodeLen(enc[off+1:])
		if err != nil {
			return false
		}
		off += 1 + n
		if off == cut {
			return true
		}
	}
	return false
}

func FuzzDecodeGroup(f *testing.F) {
	h := KeyHash([]byte("g"))
	gk := NodeKey{Version: 7, Depth: 8, Path: prefix(h, 8)}
	f.Add(gk.Bytes(), []byte{1, tagLeaf})
	f.Add(NodeKey{Version: 1, Depth: MaxDepth, Path: h}.Bytes(), []byte{1, tagInternal, 0x0f})
	f.Fuzz(func(t *testing.T, key, b []byte) {
		k, err := DecodeNodeKey(key)
		if err != nil {
			return
		}
		nodes, err := DecodeGroup(nil, k, b)
		if err != nil {
			return
		}
		var again []byte
		groups := 0
		if err := GroupNodeWrites(nodes, func(g NodeKey, enc []byte) error {
			groups++
			if g != k {
				t.Fatalf("regrouped under %s, decoded from %s", g, k)
			}
			again = append(again, enc...)
			return nil
		}); err != nil || groups != 1 || !bytes.Equal(again, b) {
			t.Fatalf("decoded group does not re-encode to its bytes: %d groups, %v", groups, err)
		}
	})
}

package smt

import (
	"bytes"
	"encoding/binary"
	"strings"
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

func sampleGroup(t testing.TB) (NodeKey, []byte) {
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
	if enc[0] != groupCompact {
		t.Fatalf("GroupNodeWrites wrote a group starting %#x, want the compact encoding", enc[0])
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

// appendPlainGroup appends the plain encoding of a group's nodes (in slot order), as
// store layouts 2 and 3 wrote it.
func appendPlainGroup(dst []byte, nodes []NodeWrite) []byte {
	for i := range nodes {
		dst = append(dst, byte(groupSlot(&nodes[i].Key)))
		dst = nodes[i].Node.appendBinary(dst)
	}
	return dst
}

func TestGroupCodecRejects(t *testing.T) {
	gk, compact := sampleGroup(t)
	nodes, err := DecodeGroup(nil, gk, compact)
	if err != nil {
		t.Fatal(err)
	}
	plain := appendPlainGroup(nil, nodes)
	if back, err := DecodeGroup(nil, gk, plain); err != nil || len(back) != len(nodes) || back[0] != nodes[0] || back[1] != nodes[1] || back[2] != nodes[2] {
		t.Fatalf("plain encoding decodes to %d nodes, %v", len(back), err)
	}
	for _, tc := range []struct {
		name string
		enc  []byte
		// first is the offset of the first slot byte.
		first int
	}{{"compact", compact, 1}, {"plain", plain, 0}} {
		enc := tc.enc
		for cut := 0; cut < len(enc); cut++ {
			if _, err := DecodeGroup(nil, gk, enc[:cut]); err == nil && cut > tc.first && !isSlotBoundary(gk, enc, cut) {
				t.Fatalf("%s: group truncated to %d bytes decodes", tc.name, cut)
			}
		}
		if _, err := DecodeGroup(nil, gk, append(bytes.Clone(enc), 1)); err == nil {
			t.Fatalf("%s: group with a trailing byte decodes", tc.name)
		}
		dup := append(bytes.Clone(enc), enc[tc.first:]...)
		if _, err := DecodeGroup(nil, gk, dup); err == nil {
			t.Fatalf("%s: group with its slots twice decodes", tc.name)
		}
		odd := gk
		odd.Depth = 9
		if _, err := DecodeGroup(nil, odd, enc); err == nil {
			t.Fatalf("%s: group at depth 9 decodes", tc.name)
		}
		deep := NodeKey{Version: 1, Depth: MaxDepth, Path: KeyHash([]byte("x"))}
		internal := bytes.Clone(enc)
		internal[tc.first] = 2 // slot 2 sits below depth 256
		if _, err := DecodeGroup(nil, deep, internal); err == nil {
			t.Fatalf("%s: group slot below depth 256 decodes", tc.name)
		}
	}
	// The sample's root (slot 1) has its right child in slot 3, in the group: flagged
	// below the group instead (with a version and count), or pointing at a slot that
	// is empty, the group is refused.
	// marker, slot, tag, flags, left child (a leaf below: hash, version 7), right
	// child's hash
	rootEnd := 4 + ledger.HashSize + 1 + ledger.HashSize
	if compact[rootEnd] != 3 {
		t.Fatalf("sample's second slot at byte %d is %d, want 3", rootEnd, compact[rootEnd])
	}
	below := bytes.Clone(compact[:rootEnd])
	below[3] &^= cflagInGroup << 3
	below = binary.AppendUvarint(below, 7)
	below = binary.AppendUvarint(below, 3)
	below = append(below, compact[rootEnd:]...)
	if _, err := DecodeGroup(nil, gk, below); err == nil || !strings.Contains(err.Error(), "in the group") {
		t.Fatalf("child in the group flagged below it: %v", err)
	}
	if _, err := DecodeGroup(nil, gk, compact[:rootEnd]); err == nil || !strings.Contains(err.Error(), "empty") {
		t.Fatalf("child in the group whose slot is missing: %v", err)
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
// a valid group with fewer nodes, if no node left refers to the slots cut off).
func isSlotBoundary(gk NodeKey, enc []byte, cut int) bool {
	off := 0
	if enc[0] == groupCompact {
		off = 1
	}
	for off < cut {
		var n int
		if enc[0] == groupCompact {
			var node Node
			var in [2]bool
			rest, err := decodeCompactNode(&node, &in, gk.Version, enc[off+1:])
			if err != nil {
				return false
			}
			n = len(enc[off+1:]) - len(rest)
		} else {
			var err error
			if n, err = nodeLen(enc[off+1:]); err != nil {
				return false
			}
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
	f.Add(gk.Bytes(), []byte{groupCompact, 1, tagInternalCompact, 0x3f, 3, tagLeaf})
	sk, compact := sampleGroup(f)
	f.Add(sk.Bytes(), compact)
	f.Fuzz(func(t *testing.T, key, b []byte) {
		k, err := DecodeNodeKey(key)
		if err != nil {
			return
		}
		nodes, err := DecodeGroup(nil, k, b)
		if err != nil {
			return
		}
		if b[0] != groupCompact {
			// The plain encoding, as store layouts 2 and 3 wrote it: exactly its bytes.
			if again := appendPlainGroup(nil, nodes); !bytes.Equal(again, b) {
				t.Fatal("decoded plain group does not re-encode to its bytes")
			}
			return
		}
		regroup := func(nodes []NodeWrite) []byte {
			var again []byte
			groups := 0
			if err := GroupNodeWrites(nodes, func(g NodeKey, enc []byte) error {
				groups++
				if g != k {
					t.Fatalf("regrouped under %s, decoded from %s", g, k)
				}
				again = append(again, enc...)
				return nil
			}); err != nil || groups != 1 {
				t.Fatalf("decoded group does not group again: %d groups, %v", groups, err)
			}
			return again
		}
		// A compact group may spell a number with more bytes than it needs; what it
		// decodes to encodes to a group that decodes to the same nodes, and again to
		// the same bytes.
		again := regroup(nodes)
		back, err := DecodeGroup(nil, k, again)
		if err != nil || len(back) != len(nodes) {
			t.Fatalf("re-encoded group: %d nodes, %v", len(back), err)
		}
		for i := range back {
			if back[i] != nodes[i] {
				t.Fatalf("re-encoded group's node %d: %+v, decoded %+v", i, back[i], nodes[i])
			}
		}
		if !bytes.Equal(regroup(back), again) {
			t.Fatal("compact group does not encode to the same bytes twice")
		}
	})
}

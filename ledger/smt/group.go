package smt

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"
	"slices"

	"github.com/ledgervault/ledgervault/ledger"
)

// Node groups: a store may keep the nodes one version writes in groups of four tree
// levels instead of one record per node. The group of a node at depth d is the subtree
// rooted at depth g = d - d%4 on the node's path; it holds the nodes of one version at
// depths g to g+3 below that root (at most 1+2+4+8 = 15, a path of an update writes at
// most four), each in a slot: 1 for the group's root, then 2s and 2s+1 for the children
// of slot s. The tree, its hashes and its proofs are those of the binary tree; only the
// number of records a store writes and reads changes (about a quarter for an update).

// GroupLevels is the number of tree levels a node group spans.
const GroupLevels = 4

const groupSlots = 1<<GroupLevels - 1

// MaxGroupSize is the largest encoded node group, in either encoding (see
// groupcodec.go).
const MaxGroupSize = 1 + groupSlots*(1+max(maxNodeSize, maxCompactNodeSize))

// GroupKey returns the key of the group that holds the node with key k: the same
// version, the group's root depth and the node's path cut to that depth.
func (k NodeKey) GroupKey() NodeKey {
	g := int(k.Depth) &^ (GroupLevels - 1)
	return NodeKey{Version: k.Version, Depth: uint16(g), Path: prefix(k.Path, g)}
}

// groupSlot returns the slot (1 to 15) of the node with key k in its group.
func groupSlot(k *NodeKey) int {
	g := int(k.Depth) &^ (GroupLevels - 1)
	s := 1
	for i := g; i < int(k.Depth); i++ {
		s = s<<1 | bit(&k.Path, i)
	}
	return s
}

// slotDepth returns the depth of slot s (1 to 15) below its group's root.
func slotDepth(s int) int { return bits.Len(uint(s)) - 1 }

// slotKey returns the key of the node in slot s of the group with key group; the slot's
// depth must not exceed MaxDepth.
func slotKey(group NodeKey, s int) NodeKey {
	k := group
	r := slotDepth(s)
	for i := 0; i < r; i++ {
		if s>>(r-1-i)&1 == 1 {
			k.Path = setBit(k.Path, int(group.Depth)+i)
		}
	}
	k.Depth += uint16(r)
	return k
}

// GroupNodeWrites encodes writes (of any versions, in any order, no key twice) as node
// groups and calls fn with each group's key and encoding (valid only during the call), in
// the byte order of the group keys (NodeKey.AppendBinary), as an SSTable needs them.
func GroupNodeWrites(writes []NodeWrite, fn func(group NodeKey, enc []byte) error) error {
	// The sort key of a node: its group's key (version, path as four words, depth) and
	// its slot, compared as integers.
	type member struct {
		version uint64
		path    [4]uint64
		depth   uint16
		slot    uint8
		i       int32
	}
	ms := make([]member, len(writes))
	for i := range writes {
		k := &writes[i].Key
		if err := k.Validate(); err != nil {
			return fmt.Errorf("group smt nodes: %w", err)
		}
		g := k.GroupKey()
		m := &ms[i]
		m.version, m.depth, m.slot, m.i = g.Version, g.Depth, uint8(groupSlot(k)), int32(i)
		for w := range m.path {
			m.path[w] = binary.BigEndian.Uint64(g.Path[8*w:])
		}
	}
	slices.SortFunc(ms, func(a, b member) int {
		switch {
		case a.version != b.version:
			return cmp.Compare(a.version, b.version)
		case a.path[0] != b.path[0]:
			return cmp.Compare(a.path[0], b.path[0])
		case a.path[1] != b.path[1]:
			return cmp.Compare(a.path[1], b.path[1])
		case a.path[2] != b.path[2]:
			return cmp.Compare(a.path[2], b.path[2])
		case a.path[3] != b.path[3]:
			return cmp.Compare(a.path[3], b.path[3])
		case a.depth != b.depth:
			return cmp.Compare(a.depth, b.depth)
		}
		return cmp.Compare(a.slot, b.slot)
	})
	sameGroup := func(a, b *member) bool {
		return a.version == b.version && a.path == b.path && a.depth == b.depth
	}
	buf := make([]byte, 0, MaxGroupSize)
	var gm groupMembers
	for lo := 0; lo < len(ms); {
		hi := lo + 1
		for hi < len(ms) && sameGroup(&ms[hi], &ms[lo]) {
			hi++
		}
		gm.has = 0
		for j := lo; j < hi; j++ {
			if j > lo && ms[j].slot == ms[j-1].slot {
				return fmt.Errorf("group smt nodes: node %s written twice", writes[ms[j].i].Key)
			}
			w := &writes[ms[j].i]
			if err := w.Node.Validate(); err != nil {
				return fmt.Errorf("group smt nodes: node %s: %w", w.Key, err)
			}
			gm.set(int(ms[j].slot), &w.Node)
		}
		buf = appendCompactGroup(buf[:0], ms[lo].version, &gm)
		if err := fn(writes[ms[lo].i].Key.GroupKey(), buf); err != nil {
			return err
		}
		lo = hi
	}
	return nil
}

// DecodeGroup decodes and validates the encoding of the group with key group, compact
// (groupcodec.go) or plain (slot ‖ node encoding for each node, slots strictly
// increasing), and appends its nodes, with their keys, to dst. Any malformed input is an
// error.
func DecodeGroup(dst []NodeWrite, group NodeKey, b []byte) ([]NodeWrite, error) {
	if err := group.Validate(); err != nil {
		return dst, fmt.Errorf("smt node group: %w", err)
	}
	if group.Depth%GroupLevels != 0 {
		return dst, fmt.Errorf("smt node group %s: depth is not a multiple of %d", group, GroupLevels)
	}
	if len(b) == 0 {
		return dst, fmt.Errorf("smt node group %s: empty", group)
	}
	if len(b) > MaxGroupSize {
		return dst, fmt.Errorf("smt node group %s: %d bytes exceed %d", group, len(b), MaxGroupSize)
	}
	if b[0] == groupCompact {
		return decodeCompactGroup(dst, group, b[1:])
	}
	last := 0
	for len(b) > 0 {
		s := int(b[0])
		if err := checkSlot(group, s, last); err != nil {
			return dst, err
		}
		last = s
		k := slotKey(group, s)
		n, err := nodeLen(b[1:])
		if err != nil {
			return dst, fmt.Errorf("smt node group %s slot %d: %w", group, s, err)
		}
		node, err := DecodeNode(b[1 : 1+n])
		if err != nil {
			return dst, fmt.Errorf("smt node group %s slot %d: %w", group, s, err)
		}
		if !node.IsLeaf && k.Depth == MaxDepth {
			return dst, fmt.Errorf("smt node group %s slot %d: internal node at depth %d", group, s, MaxDepth)
		}
		dst = append(dst, NodeWrite{Key: k, Node: node})
		b = b[1+n:]
	}
	return dst, nil
}

// checkSlot checks that slot s may follow slot last (0 for none) in a group's encoding:
// slots strictly increase, and no slot lies below the tree's deepest level.
func checkSlot(group NodeKey, s, last int) error {
	if s <= last || s > groupSlots {
		return fmt.Errorf("smt node group %s: slot %d after slot %d", group, s, last)
	}
	if int(group.Depth)+slotDepth(s) > MaxDepth {
		return fmt.Errorf("smt node group %s: slot %d is below depth %d", group, s, MaxDepth)
	}
	return nil
}

// nodeLen returns the length of the node encoding that starts b, from its tag and flags.
func nodeLen(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, errors.New("truncated node")
	}
	switch b[0] {
	case tagLeaf:
		if len(b) < leafNodeSize {
			return 0, errors.New("truncated leaf node")
		}
		return leafNodeSize, nil
	case tagInternal:
	default:
		return 0, fmt.Errorf("unknown node tag %#x", b[0])
	}
	if len(b) < 2 {
		return 0, errors.New("truncated internal node")
	}
	n := 2
	for i := 0; i < 2; i++ {
		f := b[1] >> (2 * i) & 3
		if f&flagExists != 0 {
			n += childFixedBytes
			if f&flagLeaf == 0 {
				n += 8
			}
		}
	}
	if len(b) < n {
		return 0, errors.New("truncated internal node")
	}
	return n, nil
}

// AppendPostOrderKey appends to dst the key of k in post-order (NodeKeySize bytes):
// version ‖ path with every bit from depth on set ‖ 0xffff - depth, big-endian. In byte
// order, a node's key follows the keys of every node of its subtree and of every node
// left of it, of its version: the order in which a left-to-right build completes nodes
// (NewSegmentBuilderPostOrder), so that a store can write them as they complete.
func (k NodeKey) AppendPostOrderKey(dst []byte) []byte {
	p := k.Path
	d := int(k.Depth)
	if d < MaxDepth {
		i := d >> 3
		p[i] |= 0xff >> uint(d&7)
		for j := i + 1; j < ledger.HashSize; j++ {
			p[j] = 0xff
		}
	}
	dst = binary.BigEndian.AppendUint64(dst, k.Version)
	dst = append(dst, p[:]...)
	return binary.BigEndian.AppendUint16(dst, 0xffff-k.Depth)
}

package smt

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
)

// NodeKey names a stored node: the version that wrote it, its depth (0 for the root,
// at most MaxDepth) and its path (the first Depth bits of every key hash below it, the
// remaining bits zero). A node is written once and never changed.
type NodeKey struct {
	Version uint64
	Depth   uint16
	Path    ledger.Hash
}

// NodeKeySize is the size of an encoded NodeKey.
const NodeKeySize = 8 + ledger.HashSize + 2

// String formats the key for errors and logs.
func (k NodeKey) String() string {
	return fmt.Sprintf("v%d/d%d/%s", k.Version, k.Depth, k.Path.Short())
}

// Validate checks that the depth is in range and the path has no bits beyond it.
func (k NodeKey) Validate() error {
	if k.Depth > MaxDepth {
		return fmt.Errorf("smt node key: depth %d > %d", k.Depth, MaxDepth)
	}
	if prefix(k.Path, int(k.Depth)) != k.Path {
		return fmt.Errorf("smt node key: path %s has bits beyond depth %d", k.Path, k.Depth)
	}
	return nil
}

// AppendBinary appends the 42-byte encoding of k: Version (8 bytes big-endian) ‖ Path
// (32 bytes) ‖ Depth (2 bytes big-endian). Byte order sorts keys by version, then in
// pre-order of the tree (a node before its left subtree, which precedes its right
// subtree): the nodes one version writes form one contiguous, append-only run for
// Pebble, and a subtree's nodes of one version are adjacent.
func (k NodeKey) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.BigEndian.AppendUint64(dst, k.Version)
	dst = append(dst, k.Path[:]...)
	return binary.BigEndian.AppendUint16(dst, k.Depth), nil
}

// Bytes returns the encoding of k (see AppendBinary).
func (k NodeKey) Bytes() []byte {
	b, _ := k.AppendBinary(make([]byte, 0, NodeKeySize))
	return b
}

// DecodeNodeKey decodes and validates an encoded NodeKey.
func DecodeNodeKey(b []byte) (NodeKey, error) {
	var k NodeKey
	if len(b) != NodeKeySize {
		return k, fmt.Errorf("smt node key: want %d bytes, got %d", NodeKeySize, len(b))
	}
	k.Version = binary.BigEndian.Uint64(b)
	copy(k.Path[:], b[8:])
	k.Depth = binary.BigEndian.Uint16(b[8+ledger.HashSize:])
	return k, k.Validate()
}

// Child describes one child of an internal node.
type Child struct {
	// Hash is the child subtree's hash (PlaceholderHash when it is empty).
	Hash ledger.Hash
	// Version is the version that wrote the child node (0 when empty).
	Version uint64
	// LeafCount is the number of leaves in the child subtree; 0 means empty.
	LeafCount uint64
	// IsLeaf reports whether the child node is a leaf (then LeafCount is 1).
	IsLeaf bool
}

// Empty reports whether the child subtree holds no leaf.
func (c *Child) Empty() bool { return c.LeafCount == 0 }

// Node is a stored tree node: a leaf or an internal node.
type Node struct {
	// IsLeaf selects between the leaf fields and Children.
	IsLeaf bool
	// KeyHash and ValueHash are the leaf's contents.
	KeyHash, ValueHash ledger.Hash
	// Children are the left (0) and right (1) children of an internal node.
	Children [2]Child
}

// Hash returns the node's Merkle hash.
func (n *Node) Hash() ledger.Hash {
	if n.IsLeaf {
		return LeafHash(&n.KeyHash, &n.ValueHash)
	}
	return InternalHash(&n.Children[0].Hash, &n.Children[1].Hash)
}

// LeafCount returns the number of leaves in the node's subtree.
func (n *Node) LeafCount() uint64 {
	if n.IsLeaf {
		return 1
	}
	return n.Children[0].LeafCount + n.Children[1].LeafCount
}

// Node encoding tags and child flags.
const (
	tagLeaf     = 0x01
	tagInternal = 0x02

	flagExists = 1
	flagLeaf   = 2

	leafNodeSize    = 1 + 2*ledger.HashSize
	maxNodeSize     = 2 + 2*(ledger.HashSize+8+8)
	childFixedBytes = ledger.HashSize + 8
)

// MaxNodeSize is the largest encoded node.
const MaxNodeSize = maxNodeSize

// Validate checks the structural rules of a node: an internal node has at least two
// leaves below it (otherwise it would have collapsed), an empty child has a zero version
// and the placeholder hash, a leaf child counts one leaf, an internal child at least two.
func (n *Node) Validate() error {
	if n.IsLeaf {
		return nil
	}
	var total uint64
	for i := range n.Children {
		c := &n.Children[i]
		switch {
		case c.LeafCount == 0:
			if c.IsLeaf || c.Version != 0 || c.Hash != PlaceholderHash {
				return fmt.Errorf("smt node: empty child %d carries data", i)
			}
		case c.IsLeaf && c.LeafCount != 1:
			return fmt.Errorf("smt node: leaf child %d counts %d leaves", i, c.LeafCount)
		case !c.IsLeaf && c.LeafCount < 2:
			return fmt.Errorf("smt node: internal child %d counts %d leaves", i, c.LeafCount)
		}
		if total+c.LeafCount < total {
			return errors.New("smt node: leaf count overflows")
		}
		total += c.LeafCount
	}
	if total < 2 {
		return fmt.Errorf("smt node: internal node with %d leaves should have collapsed", total)
	}
	return nil
}

// AppendBinary appends the compact encoding of n:
//
//	leaf:     0x01 ‖ keyHash(32) ‖ valueHash(32)
//	internal: 0x02 ‖ flags(1) ‖ for each non-empty child, left first:
//	          hash(32) ‖ version(8, BE) [‖ leafCount(8, BE) if the child is internal]
//
// flags holds 2 bits per child (left in bits 0-1, right in bits 2-3): exists, is leaf.
func (n *Node) AppendBinary(dst []byte) ([]byte, error) {
	if err := n.Validate(); err != nil {
		return dst, err
	}
	return n.appendBinary(dst), nil
}

// appendBinary appends the encoding of n, which must be valid.
func (n *Node) appendBinary(dst []byte) []byte {
	if n.IsLeaf {
		dst = append(dst, tagLeaf)
		dst = append(dst, n.KeyHash[:]...)
		return append(dst, n.ValueHash[:]...)
	}
	var flags byte
	for i := range n.Children {
		c := &n.Children[i]
		if c.LeafCount > 0 {
			flags |= flagExists << (2 * i)
			if c.IsLeaf {
				flags |= flagLeaf << (2 * i)
			}
		}
	}
	dst = append(dst, tagInternal, flags)
	for i := range n.Children {
		c := &n.Children[i]
		if c.LeafCount == 0 {
			continue
		}
		dst = append(dst, c.Hash[:]...)
		dst = binary.BigEndian.AppendUint64(dst, c.Version)
		if !c.IsLeaf {
			dst = binary.BigEndian.AppendUint64(dst, c.LeafCount)
		}
	}
	return dst
}

// MarshalBinary returns the encoding of n (see AppendBinary).
func (n *Node) MarshalBinary() ([]byte, error) {
	return n.AppendBinary(make([]byte, 0, maxNodeSize))
}

// DecodeNode decodes and validates an encoded node; any malformed input is an error.
func DecodeNode(b []byte) (Node, error) {
	var n Node
	if len(b) == 0 {
		return n, errors.New("smt node: empty")
	}
	if len(b) > maxNodeSize {
		return n, fmt.Errorf("smt node: %d bytes exceed %d", len(b), maxNodeSize)
	}
	switch b[0] {
	case tagLeaf:
		if len(b) != leafNodeSize {
			return n, fmt.Errorf("smt leaf node: want %d bytes, got %d", leafNodeSize, len(b))
		}
		n.IsLeaf = true
		copy(n.KeyHash[:], b[1:])
		copy(n.ValueHash[:], b[1+ledger.HashSize:])
		return n, nil
	case tagInternal:
	default:
		return n, fmt.Errorf("smt node: unknown tag %#x", b[0])
	}
	if len(b) < 2 {
		return n, errors.New("smt internal node: truncated")
	}
	flags := b[1]
	if flags&0xf0 != 0 {
		return n, fmt.Errorf("smt internal node: unknown flags %#x", flags)
	}
	rest := b[2:]
	for i := range n.Children {
		f := flags >> (2 * i) & 3
		c := &n.Children[i]
		if f&flagExists == 0 {
			if f != 0 {
				return n, fmt.Errorf("smt internal node: absent child %d marked leaf", i)
			}
			c.Hash = PlaceholderHash
			continue
		}
		need := childFixedBytes
		if f&flagLeaf == 0 {
			need += 8
		}
		if len(rest) < need {
			return n, fmt.Errorf("smt internal node: child %d truncated", i)
		}
		copy(c.Hash[:], rest)
		c.Version = binary.BigEndian.Uint64(rest[ledger.HashSize:])
		if f&flagLeaf != 0 {
			c.IsLeaf, c.LeafCount = true, 1
		} else {
			c.LeafCount = binary.BigEndian.Uint64(rest[childFixedBytes:])
		}
		rest = rest[need:]
	}
	if len(rest) != 0 {
		return n, fmt.Errorf("smt internal node: %d trailing bytes", len(rest))
	}
	if err := n.Validate(); err != nil {
		return n, err
	}
	return n, nil
}

// RootRef identifies the root of the tree at some version: the root node's key, hash and
// leaf count. The empty tree has LeafCount 0 and PlaceholderHash (its Key is unused); the
// zero RootRef is also accepted as the empty tree by every function of this package. The
// root of a version may be a node written at an earlier version when that version changed
// nothing.
type RootRef struct {
	Key       NodeKey
	Hash      ledger.Hash
	LeafCount uint64
	IsLeaf    bool
}

// EmptyRoot returns the RootRef of the empty tree.
func EmptyRoot() RootRef { return RootRef{Hash: PlaceholderHash} }

// IsEmpty reports whether the tree holds no leaf.
func (r RootRef) IsEmpty() bool { return r.LeafCount == 0 }

// RootHash returns the root hash (PlaceholderHash for the empty tree).
func (r RootRef) RootHash() ledger.Hash {
	if r.LeafCount == 0 {
		return PlaceholderHash
	}
	return r.Hash
}

// RootRefSize is the size of an encoded RootRef.
const RootRefSize = 8 + ledger.HashSize + 8 + 1

// Validate checks the RootRef's consistency: a non-empty root sits at depth 0, path zero;
// a leaf root counts one leaf, an internal root at least two.
func (r RootRef) Validate() error {
	if r.LeafCount == 0 {
		if r.IsLeaf || r.Hash != PlaceholderHash {
			return errors.New("smt root: empty root carries data")
		}
		return nil
	}
	if r.Key.Depth != 0 || r.Key.Path != ledger.ZeroHash {
		return fmt.Errorf("smt root: node key %s is not at depth 0", r.Key)
	}
	if r.IsLeaf != (r.LeafCount == 1) {
		return fmt.Errorf("smt root: leaf=%v with %d leaves", r.IsLeaf, r.LeafCount)
	}
	return nil
}

// AppendBinary appends the encoding of r: version(8) ‖ hash(32) ‖ leafCount(8) ‖ isLeaf(1).
func (r RootRef) AppendBinary(dst []byte) ([]byte, error) {
	if r.LeafCount == 0 {
		r = EmptyRoot()
	}
	if err := r.Validate(); err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint64(dst, r.Key.Version)
	dst = append(dst, r.Hash[:]...)
	dst = binary.BigEndian.AppendUint64(dst, r.LeafCount)
	if r.IsLeaf {
		return append(dst, 1), nil
	}
	return append(dst, 0), nil
}

// DecodeRootRef decodes and validates an encoded RootRef.
func DecodeRootRef(b []byte) (RootRef, error) {
	var r RootRef
	if len(b) != RootRefSize {
		return r, fmt.Errorf("smt root: want %d bytes, got %d", RootRefSize, len(b))
	}
	r.Key.Version = binary.BigEndian.Uint64(b)
	copy(r.Hash[:], b[8:])
	r.LeafCount = binary.BigEndian.Uint64(b[8+ledger.HashSize:])
	switch b[RootRefSize-1] {
	case 0:
	case 1:
		r.IsLeaf = true
	default:
		return r, fmt.Errorf("smt root: bad leaf flag %#x", b[RootRefSize-1])
	}
	if r.LeafCount == 0 && r.Key.Version != 0 {
		return r, errors.New("smt root: empty root carries a version")
	}
	return r, r.Validate()
}

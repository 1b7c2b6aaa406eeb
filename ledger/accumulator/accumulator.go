// Package accumulator is the transaction accumulator: an RFC 6962 Merkle tree whose
// leaves are TransactionInfo hashes (leaf hash = SHA-256(0x00 || info hash), inner node
// = SHA-256(0x01 || left || right), empty tree = SHA-256("")). It builds the tree
// incrementally, computes roots and proofs at any past size from stored perfect-subtree
// nodes, and verifies inclusion and range proofs.
//
// Storage model: every perfect subtree node (level, index) is final once its leaves are
// appended. The Builder reports each such node as it is completed; a store persists them
// (see NodeKey) and later reads them back through a NodeGetter to compute the root or a
// proof at any size it has reached.
package accumulator

import (
	"context"
	"crypto"
	_ "crypto/sha256" // registers SHA-256 for the RFC 6962 hasher
	"encoding/binary"
	"fmt"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"

	"github.com/ledgervault/ledgervault/ledger"
)

var (
	hasher  = rfc6962.New(crypto.SHA256)
	factory = &compact.RangeFactory{Hash: hasher.HashChildren}
)

// MaxSize is the largest tree size the package accepts (2^62 leaves); it keeps every
// index computation far from overflow.
const MaxSize = 1 << 62

// NodeID names a perfect subtree node: the Index-th node at Level (leaves are level 0).
// It covers leaves [Index<<Level, (Index+1)<<Level).
type NodeID struct {
	Level uint8
	Index uint64
}

// String returns "level/index".
func (id NodeID) String() string { return fmt.Sprintf("%d/%d", id.Level, id.Index) }

func fromCompact(id compact.NodeID) NodeID { return NodeID{Level: uint8(id.Level), Index: id.Index} }

// NodeKeySize is the length of a NodeKey.
const NodeKeySize = 9

// NodeKey returns the 9-byte key of id for a key-value store: the level, then the index
// big-endian, so that a level's nodes sort by index.
func NodeKey(id NodeID) [NodeKeySize]byte {
	var k [NodeKeySize]byte
	k[0] = id.Level
	binary.BigEndian.PutUint64(k[1:], id.Index)
	return k
}

// ParseNodeKey is the inverse of NodeKey.
func ParseNodeKey(b []byte) (NodeID, error) {
	if len(b) != NodeKeySize {
		return NodeID{}, fmt.Errorf("accumulator node key: %d bytes, want %d", len(b), NodeKeySize)
	}
	if b[0] > 63 {
		return NodeID{}, fmt.Errorf("accumulator node key: level %d out of range", b[0])
	}
	return NodeID{Level: b[0], Index: binary.BigEndian.Uint64(b[1:])}, nil
}

// LeafHash returns the RFC 6962 leaf hash of a TransactionInfo hash.
func LeafHash(infoHash ledger.Hash) ledger.Hash {
	return toHash(hasher.HashLeaf(infoHash[:]))
}

// HashChildren returns the RFC 6962 hash of an inner node.
func HashChildren(left, right ledger.Hash) ledger.Hash {
	return toHash(hasher.HashChildren(left[:], right[:]))
}

// EmptyRoot returns the root of the empty tree, SHA-256("").
func EmptyRoot() ledger.Hash { return toHash(hasher.EmptyRoot()) }

func toHash(b []byte) ledger.Hash {
	var h ledger.Hash
	copy(h[:], b)
	return h
}

func toBytes(hs []ledger.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

func toHashes(bs [][]byte) []ledger.Hash {
	out := make([]ledger.Hash, len(bs))
	for i := range bs {
		out[i] = toHash(bs[i])
	}
	return out
}

// NodeGetter reads the stored hash of a perfect subtree node.
type NodeGetter func(ctx context.Context, id NodeID) (ledger.Hash, error)

// FrontierIDs returns the IDs of the nodes of the compact range [0, size): the perfect
// subtrees, largest first, whose hashes make a Builder's frontier at that size.
func FrontierIDs(size uint64) []NodeID {
	return rangeIDs(0, size)
}

func rangeIDs(begin, end uint64) []NodeID {
	ids := compact.RangeNodes(begin, end, nil)
	out := make([]NodeID, len(ids))
	for i, id := range ids {
		out[i] = fromCompact(id)
	}
	return out
}

func getAll(ctx context.Context, get NodeGetter, ids []NodeID) ([]ledger.Hash, error) {
	out := make([]ledger.Hash, len(ids))
	for i, id := range ids {
		h, err := get(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("read accumulator node %s: %w", id, err)
		}
		out[i] = h
	}
	return out, nil
}

// foldRoot returns the root of a tree whose compact range [0, size) has hashes
// (largest subtree first).
func foldRoot(hashes []ledger.Hash) ledger.Hash {
	if len(hashes) == 0 {
		return EmptyRoot()
	}
	root := hashes[len(hashes)-1]
	for i := len(hashes) - 2; i >= 0; i-- {
		root = HashChildren(hashes[i], root)
	}
	return root
}

// RootAt returns the root of the tree of size leaves, reading the frontier nodes with get.
func RootAt(ctx context.Context, get NodeGetter, size uint64) (ledger.Hash, error) {
	if size > MaxSize {
		return ledger.Hash{}, fmt.Errorf("accumulator root at size %d: size too large", size)
	}
	hashes, err := getAll(ctx, get, FrontierIDs(size))
	if err != nil {
		return ledger.Hash{}, fmt.Errorf("accumulator root at size %d: %w", size, err)
	}
	return foldRoot(hashes), nil
}

// Builder grows the tree leaf by leaf. Its state is the frontier: the hashes of the
// compact range [0, Size()), at most 63 hashes, which NewBuilderFromFrontier restores.
type Builder struct {
	r *compact.Range
}

// NewBuilder returns a builder of the empty tree.
func NewBuilder() *Builder { return &Builder{r: factory.NewEmptyRange(0)} }

// NewBuilderFromFrontier resumes a builder at size leaves from its frontier (the hashes
// of FrontierIDs(size), for example the Left part of a range proof starting at size).
func NewBuilderFromFrontier(size uint64, frontier []ledger.Hash) (*Builder, error) {
	if size > MaxSize {
		return nil, fmt.Errorf("accumulator builder: size %d too large", size)
	}
	r, err := factory.NewRange(0, size, toBytes(frontier))
	if err != nil {
		return nil, fmt.Errorf("accumulator builder at size %d: %w", size, err)
	}
	return &Builder{r: r}, nil
}

// Size returns the number of leaves appended.
func (b *Builder) Size() uint64 { return b.r.End() }

// Frontier returns a copy of the builder's state (see NewBuilderFromFrontier).
func (b *Builder) Frontier() []ledger.Hash { return toHashes(b.r.Hashes()) }

// Append adds the leaf of a TransactionInfo hash. If visit is not nil it is called with
// every perfect subtree node this completes: the leaf itself, then each merged parent.
// Those nodes are final; a store persists them for RootAt and the proof functions.
func (b *Builder) Append(infoHash ledger.Hash, visit func(NodeID, ledger.Hash)) error {
	if b.r.End() >= MaxSize {
		return fmt.Errorf("accumulator append: tree is full at %d leaves", b.r.End())
	}
	leaf := hasher.HashLeaf(infoHash[:])
	var fn compact.VisitFn
	if visit != nil {
		fn = func(id compact.NodeID, h []byte) { visit(fromCompact(id), toHash(h)) }
	}
	if err := b.r.Append(leaf, fn); err != nil {
		return fmt.Errorf("accumulator append leaf %d: %w", b.r.End(), err)
	}
	return nil
}

// Node is a stored node: its ID and hash.
type Node struct {
	ID   NodeID
	Hash ledger.Hash
}

// FrontierNodes returns the frontier with its node IDs (FrontierIDs(Size())), for a
// store that starts from a frontier (a restore) and must persist those nodes so that
// roots and proofs at later sizes can be computed.
func (b *Builder) FrontierNodes() []Node {
	ids := FrontierIDs(b.Size())
	hs := b.r.Hashes()
	out := make([]Node, len(ids))
	for i := range ids {
		out[i] = Node{ID: ids[i], Hash: toHash(hs[i])}
	}
	return out
}

// Root returns the root of the tree of Size() leaves.
func (b *Builder) Root() ledger.Hash { return foldRoot(toHashes(b.r.Hashes())) }

package smt

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/ledgervault/ledgervault/ledger"
)

// ErrNodeNotFound is returned (possibly wrapped) by a NodeReader when no node is stored
// under the requested key.
var ErrNodeNotFound = errors.New("smt node not found")

// NodeReader reads stored nodes. Implementations wrap ErrNodeNotFound for a missing node.
type NodeReader interface {
	GetNode(ctx context.Context, key NodeKey) (Node, error)
}

// NodeWrite is a node to store under its key.
type NodeWrite struct {
	Key  NodeKey
	Node Node
}

// Overlay is a NodeReader that serves nodes put into it and falls back to a base reader
// (nil for none). It lets a store apply several versions of one uncommitted block, each
// reading the nodes the previous ones wrote; with a nil base it is an in-memory node
// store. It is safe for concurrent use.
type Overlay struct {
	base  NodeReader
	mu    sync.RWMutex
	nodes map[NodeKey]Node
}

// NewOverlay returns an empty Overlay over base (which may be nil).
func NewOverlay(base NodeReader) *Overlay {
	return &Overlay{base: base, nodes: make(map[NodeKey]Node)}
}

// Put stores the nodes in the overlay.
func (o *Overlay) Put(writes ...NodeWrite) {
	o.mu.Lock()
	for i := range writes {
		o.nodes[writes[i].Key] = writes[i].Node
	}
	o.mu.Unlock()
}

// Len returns the number of nodes held by the overlay itself.
func (o *Overlay) Len() int {
	o.mu.RLock()
	defer o.mu.RUnlock()
	return len(o.nodes)
}

// GetNode returns the overlay's node for key, else the base reader's.
func (o *Overlay) GetNode(ctx context.Context, key NodeKey) (Node, error) {
	o.mu.RLock()
	n, ok := o.nodes[key]
	o.mu.RUnlock()
	if ok {
		return n, nil
	}
	if o.base == nil {
		return Node{}, fmt.Errorf("get %s: %w", key, ErrNodeNotFound)
	}
	return o.base.GetNode(ctx, key)
}

// readNode reads the node at (version, depth, path) and checks that its kind matches
// what its parent recorded and, for a leaf, that its key hash lies under path.
func readNode(ctx context.Context, r NodeReader, version uint64, depth int, path ledger.Hash, wantLeaf bool) (Node, error) {
	key := NodeKey{Version: version, Depth: uint16(depth), Path: path}
	n, err := r.GetNode(ctx, key)
	if err != nil {
		return n, fmt.Errorf("read smt node %s: %w", key, err)
	}
	if n.IsLeaf != wantLeaf {
		return n, fmt.Errorf("read smt node %s: leaf=%v, parent says leaf=%v", key, n.IsLeaf, wantLeaf)
	}
	if n.IsLeaf && prefix(n.KeyHash, depth) != path {
		return n, fmt.Errorf("read smt node %s: leaf key %s is not under the node's path", key, n.KeyHash)
	}
	return n, nil
}

// SortNodeWrites sorts writes into the byte order of their encoded keys (see
// NodeKey.AppendBinary), as an SSTable or an ordered batch needs them.
func SortNodeWrites(writes []NodeWrite) {
	slices.SortFunc(writes, func(a, b NodeWrite) int { return compareNodeKeys(&a.Key, &b.Key) })
}

// compareNodeKeys orders keys like their encodings: version, path, depth.
func compareNodeKeys(a, b *NodeKey) int {
	switch {
	case a.Version != b.Version:
		return cmp.Compare(a.Version, b.Version)
	case a.Path != b.Path:
		return bytes.Compare(a.Path[:], b.Path[:])
	}
	return cmp.Compare(a.Depth, b.Depth)
}

package smt

import (
	"context"
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
)

// LeafCount returns the number of leaves of the tree at root.
func LeafCount(root RootRef) uint64 { return root.LeafCount }

// walker descends from a root, one node at a time.
type walker struct {
	ctx   context.Context
	r     NodeReader
	depth int
	path  ledger.Hash
	node  Node
}

func (w *walker) start(root RootRef) error {
	if err := root.Validate(); err != nil {
		return err
	}
	n, err := readNode(w.ctx, w.r, root.Key.Version, 0, ledger.ZeroHash, root.IsLeaf)
	if err != nil {
		return err
	}
	w.depth, w.path, w.node = 0, ledger.ZeroHash, n
	return nil
}

// down moves to child b of the current internal node, which must not be empty.
func (w *walker) down(b int) error {
	c := &w.node.Children[b]
	path := childPath(w.path, w.depth, b)
	n, err := readNode(w.ctx, w.r, c.Version, w.depth+1, path, c.IsLeaf)
	if err != nil {
		return err
	}
	w.depth, w.path, w.node = w.depth+1, path, n
	return nil
}

// Get returns the value hash of keyHash in the tree at root, and whether it is present.
func Get(ctx context.Context, r NodeReader, root RootRef, keyHash ledger.Hash) (ledger.Hash, bool, error) {
	if root.LeafCount == 0 {
		return ledger.Hash{}, false, nil
	}
	w := walker{ctx: ctx, r: r}
	if err := w.start(root); err != nil {
		return ledger.Hash{}, false, fmt.Errorf("smt get %s: %w", keyHash.Short(), err)
	}
	for !w.node.IsLeaf {
		b := bit(&keyHash, w.depth)
		if w.node.Children[b].LeafCount == 0 {
			return ledger.Hash{}, false, nil
		}
		if err := w.down(b); err != nil {
			return ledger.Hash{}, false, fmt.Errorf("smt get %s: %w", keyHash.Short(), err)
		}
	}
	if w.node.KeyHash != keyHash {
		return ledger.Hash{}, false, nil
	}
	return w.node.ValueHash, true, nil
}

// LeafAtIndex returns the leaf at position index (0-based, in key-hash order) of the tree
// at root, descending with the leaf counts of internal nodes.
func LeafAtIndex(ctx context.Context, r NodeReader, root RootRef, index uint64) (keyHash, valueHash ledger.Hash, err error) {
	if index >= root.LeafCount {
		return keyHash, valueHash, fmt.Errorf("smt leaf at index %d: tree has %d leaves", index, root.LeafCount)
	}
	w := walker{ctx: ctx, r: r}
	if err := w.start(root); err != nil {
		return keyHash, valueHash, fmt.Errorf("smt leaf at index %d: %w", index, err)
	}
	rest := index
	for !w.node.IsLeaf {
		b := 0
		if l := w.node.Children[0].LeafCount; rest >= l {
			rest -= l
			b = 1
		}
		if w.node.Children[b].LeafCount <= rest {
			return keyHash, valueHash, fmt.Errorf("smt leaf at index %d: leaf counts inconsistent at %s", index, NodeKey{Depth: uint16(w.depth), Path: w.path})
		}
		if err := w.down(b); err != nil {
			return keyHash, valueHash, fmt.Errorf("smt leaf at index %d: %w", index, err)
		}
	}
	return w.node.KeyHash, w.node.ValueHash, nil
}

// Leaves calls fn for every leaf of the tree at root from position start on, in key-hash
// order, until fn returns an error (returned as is) or the leaves run out. It reads each
// node once.
func Leaves(ctx context.Context, r NodeReader, root RootRef, start uint64, fn func(index uint64, l Leaf) error) error {
	if start >= root.LeafCount {
		return nil
	}
	if err := root.Validate(); err != nil {
		return fmt.Errorf("smt leaves: %w", err)
	}
	it := leafIter{ctx: ctx, r: r, fn: fn, index: start}
	return it.visit(root.Key.Version, 0, ledger.ZeroHash, root.IsLeaf, start)
}

type leafIter struct {
	ctx   context.Context
	r     NodeReader
	fn    func(uint64, Leaf) error
	index uint64
}

// visit walks the subtree at (version, depth, path), skipping its first skip leaves.
func (it *leafIter) visit(version uint64, depth int, path ledger.Hash, isLeaf bool, skip uint64) error {
	if err := it.ctx.Err(); err != nil {
		return err
	}
	n, err := readNode(it.ctx, it.r, version, depth, path, isLeaf)
	if err != nil {
		return fmt.Errorf("smt leaves: %w", err)
	}
	if n.IsLeaf {
		if err := it.fn(it.index, Leaf{n.KeyHash, n.ValueHash}); err != nil {
			return err
		}
		it.index++
		return nil
	}
	for b := range n.Children {
		c := &n.Children[b]
		if skip >= c.LeafCount {
			skip -= c.LeafCount
			continue
		}
		if err := it.visit(c.Version, depth+1, childPath(path, depth, b), c.IsLeaf, skip); err != nil {
			return err
		}
		skip = 0
	}
	return nil
}

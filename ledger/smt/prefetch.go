package smt

import (
	"context"

	"github.com/ledgervault/ledgervault/ledger"
)

// Prefetch reads from r the stored nodes on the path of every update's key hash in the
// tree whose root is root, from the root down to the leaf or empty child where the
// path ends, and for a deletion the leaves beside its path (which move up when it
// leaves its parent with one leaf): the nodes an Apply of ups on that tree reads. It
// verifies nothing and returns nothing but an error: its use is a caching r, whose
// cache it fills from another goroutine while Apply runs, so that Apply's reads come
// from memory. It returns at the first error (such as ctx ending).
func Prefetch(ctx context.Context, r NodeReader, root RootRef, ups []Update) error {
	if root.LeafCount == 0 {
		return nil
	}
	for i := range ups {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := &ups[i].KeyHash
		ver, leaf := root.Key.Version, root.IsLeaf
		depth, path := 0, ledger.ZeroHash
		for depth <= 256 {
			n, err := readNode(ctx, r, ver, depth, path, leaf)
			if err != nil {
				return err
			}
			if leaf || depth == 256 { // a node at depth 256 must be a leaf: Apply reports it
				break
			}
			b := bit(k, depth)
			if o := &n.Children[1-b]; ups[i].Delete && o.IsLeaf && o.LeafCount > 0 {
				if _, err := readNode(ctx, r, o.Version, depth+1, childPath(path, depth, 1-b), true); err != nil {
					return err
				}
			}
			c := &n.Children[b]
			if c.LeafCount == 0 {
				break
			}
			path = childPath(path, depth, b)
			depth++
			ver, leaf = c.Version, c.IsLeaf
		}
	}
	return nil
}

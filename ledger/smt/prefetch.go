package smt

import (
	"context"

	"github.com/ledgervault/ledgervault/ledger"
)

// Prefetch reads from r the stored nodes on the path of every key hash of keys in the
// tree whose root is root, from the root down to the leaf or empty child where the
// path ends: the nodes an Apply of updates to those keys on that tree reads. It
// verifies nothing and returns nothing but an error: its use is a caching r, whose
// cache it fills from another goroutine while Apply runs, so that Apply's reads come
// from memory. It returns at the first error (such as ctx ending).
func Prefetch(ctx context.Context, r NodeReader, root RootRef, keys []ledger.Hash) error {
	if root.LeafCount == 0 {
		return nil
	}
	for i := range keys {
		if err := ctx.Err(); err != nil {
			return err
		}
		k := &keys[i]
		ver, leaf := root.Key.Version, root.IsLeaf
		depth, path := 0, ledger.ZeroHash
		for depth < 256 {
			n, err := readNode(ctx, r, ver, depth, path, leaf)
			if err != nil {
				return err
			}
			if leaf {
				break
			}
			b := bit(k, depth)
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

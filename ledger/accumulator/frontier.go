package accumulator

import (
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
)

// FrontierFromInclusion returns the frontier (see NewBuilderFromFrontier) of the tree
// of size leaves from the inclusion proof of its last leaf, index size-1, after checking
// that the proof leads to root. The audit path of the last leaf is exactly the compact
// range [0, size-1), smallest subtree first, so it determines the whole frontier: a
// restore that knows only a state snapshot at version size-1 and the proof of its
// state root against the ledger info at that version can continue the accumulator.
func FrontierFromInclusion(root ledger.Hash, size uint64, infoHash ledger.Hash, p InclusionProof) ([]ledger.Hash, error) {
	if size == 0 || size > MaxSize {
		return nil, fmt.Errorf("frontier from inclusion proof: size %d out of range", size)
	}
	index := size - 1
	if err := VerifyInclusion(root, size, index, infoHash, p); err != nil {
		return nil, fmt.Errorf("frontier from inclusion proof: %w", err)
	}
	ids := FrontierIDs(index)
	if len(p.Siblings) != len(ids) {
		return nil, fmt.Errorf("frontier from inclusion proof: %d siblings, the compact range [0, %d) has %d nodes", len(p.Siblings), index, len(ids))
	}
	left := make([]ledger.Hash, len(ids))
	for i := range p.Siblings {
		left[len(left)-1-i] = p.Siblings[i]
	}
	b, err := NewBuilderFromFrontier(index, left)
	if err != nil {
		return nil, fmt.Errorf("frontier from inclusion proof: %w", err)
	}
	if err := b.Append(infoHash, nil); err != nil {
		return nil, fmt.Errorf("frontier from inclusion proof: %w", err)
	}
	if b.Root() != root {
		return nil, fmt.Errorf("frontier from inclusion proof: rebuilt root differs: %w", ErrRootMismatch)
	}
	return b.Frontier(), nil
}

// FrontierAfter returns the frontier of the tree of first+len(infoHashes) leaves, given
// the frontier at first (the Left part of a range proof starting at first, which the
// caller has verified together with those leaves).
func FrontierAfter(first uint64, left []ledger.Hash, infoHashes []ledger.Hash) (*Builder, error) {
	b, err := NewBuilderFromFrontier(first, left)
	if err != nil {
		return nil, err
	}
	for _, h := range infoHashes {
		if err := b.Append(h, nil); err != nil {
			return nil, err
		}
	}
	return b, nil
}

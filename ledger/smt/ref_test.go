package smt

import (
	"slices"

	"github.com/ledgervault/ledgervault/ledger"
)

// refRoot is the naive reference: the root of a set of leaves by straightforward
// recursion over the sorted set, with HashOf from package ledger.
func refRoot(m map[ledger.Hash]ledger.Hash) ledger.Hash {
	leaves := make([]Leaf, 0, len(m))
	for k, v := range m {
		leaves = append(leaves, Leaf{k, v})
	}
	slices.SortFunc(leaves, func(a, b Leaf) int {
		for i := range a.KeyHash {
			if a.KeyHash[i] != b.KeyHash[i] {
				return int(a.KeyHash[i]) - int(b.KeyHash[i])
			}
		}
		return 0
	})
	return refSubtree(leaves, 0)
}

func refBit(h ledger.Hash, i int) bool { return h[i/8]&(0x80>>(i%8)) != 0 }

func refSubtree(leaves []Leaf, depth int) ledger.Hash {
	switch len(leaves) {
	case 0:
		return ledger.HashOf(ledger.DomainSMTPlaceholder)
	case 1:
		return ledger.HashOf(ledger.DomainSMTLeaf, leaves[0].KeyHash[:], leaves[0].ValueHash[:])
	}
	split := len(leaves)
	for i, l := range leaves {
		if refBit(l.KeyHash, depth) {
			split = i
			break
		}
	}
	l, r := refSubtree(leaves[:split], depth+1), refSubtree(leaves[split:], depth+1)
	return ledger.HashOf(ledger.DomainSMTInternal, l[:], r[:])
}

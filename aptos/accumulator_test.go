package aptos

import (
	"crypto/sha3"
	"errors"
	"fmt"
	"math/bits"
	"testing"
)

// testTree is a reference transaction accumulator over n leaves, built the way
// aptos-core defines it: a complete binary tree of the smallest height holding n leaves,
// empty subtrees replaced by the placeholder hash.
type testTree struct {
	d      *Domain
	leaves []HashValue
	height int
}

func newTestTree(d *Domain, n int) *testTree {
	t := &testTree{d: d}
	for i := 0; i < n; i++ {
		t.leaves = append(t.leaves, HashValue(sha3.Sum256([]byte(fmt.Sprint("leaf", i)))))
	}
	t.height = bits.Len(uint(n - 1))
	if n == 1 {
		t.height = 0
	}
	return t
}

func (t *testTree) node(level, index int) HashValue {
	if index<<level >= len(t.leaves) {
		return AccumulatorPlaceholderHash
	}
	if level == 0 {
		return t.leaves[index]
	}
	return t.d.AccumulatorNodeHash(t.node(level-1, 2*index), t.node(level-1, 2*index+1))
}

func (t *testTree) root() HashValue { return t.node(t.height, 0) }

// rangeProof returns the range proof of leaves [a, b], siblings bottom first.
func (t *testTree) rangeProof(a, b int) AccumulatorRangeProof {
	var p AccumulatorRangeProof
	for level := 0; level < t.height; level++ {
		f, l := a>>level, b>>level
		if f%2 == 1 {
			p.LeftSiblings = append(p.LeftSiblings, t.node(level, f-1))
		}
		if l%2 == 0 {
			p.RightSiblings = append(p.RightSiblings, t.node(level, l+1))
		}
	}
	return p
}

func (t *testTree) proof(i int) AccumulatorProof {
	var p AccumulatorProof
	for level := 0; level < t.height; level++ {
		p.Siblings = append(p.Siblings, t.node(level, (i>>level)^1))
	}
	return p
}

func TestAccumulatorProofsAgainstReferenceTree(t *testing.T) {
	d := AptosDomain
	for _, n := range []int{1, 2, 3, 5, 8, 13, 33} {
		tr := newTestTree(d, n)
		root := tr.root()
		for a := 0; a < n; a++ {
			if err := tr.proof(a).Verify(d, root, tr.leaves[a], uint64(a)); err != nil {
				t.Fatalf("n=%d leaf %d: %v", n, a, err)
			}
			if a+1 < n {
				if err := tr.proof(a).Verify(d, root, tr.leaves[a], uint64(a+1)); !errors.Is(err, ErrProof) {
					t.Fatalf("n=%d leaf %d at index %d: %v", n, a, a+1, err)
				}
			}
			for b := a; b < n; b++ {
				p := tr.rangeProof(a, b)
				if err := p.Verify(d, root, uint64(a), tr.leaves[a:b+1]); err != nil {
					t.Fatalf("n=%d range [%d,%d]: %v", n, a, b, err)
				}
				// Shifted, short, tampered and other-domain variants fail.
				if a > 0 {
					if err := p.Verify(d, root, uint64(a-1), tr.leaves[a:b+1]); err == nil {
						t.Fatalf("n=%d range [%d,%d] shifted verified", n, a, b)
					}
				}
				if b > a {
					if err := p.Verify(d, root, uint64(a), tr.leaves[a:b]); err == nil {
						t.Fatalf("n=%d range [%d,%d] without its last leaf verified", n, a, b)
					}
				}
				bad := append([]HashValue(nil), tr.leaves[a:b+1]...)
				bad[len(bad)/2][7] ^= 1
				if err := p.Verify(d, root, uint64(a), bad); !errors.Is(err, ErrProof) {
					t.Fatalf("n=%d range [%d,%d] tampered leaf: %v", n, a, b, err)
				}
				if n > 1 {
					if err := p.Verify(DiemDomain, root, uint64(a), tr.leaves[a:b+1]); err == nil {
						t.Fatalf("n=%d range [%d,%d] verified in another domain", n, a, b)
					}
				}
			}
		}
	}
	if err := (AccumulatorRangeProof{}).Verify(d, HashValue{}, 0, nil); !errors.Is(err, ErrProof) {
		t.Fatalf("empty range: %v", err)
	}
}

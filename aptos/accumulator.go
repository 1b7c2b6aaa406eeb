package aptos

import (
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// MaxAccumulatorProofDepth is the most siblings an accumulator proof may carry on one
// side (aptos-core's MAX_ACCUMULATOR_PROOF_DEPTH: leaf indices are below 2^63).
const MaxAccumulatorProofDepth = 63

// ErrProof is wrapped by every accumulator proof failure.
var ErrProof = errors.New("accumulator proof does not verify")

// AccumulatorNodeHash returns the hash of a transaction accumulator internal node:
// SHA3-256(seed("TransactionAccumulator") || left || right). Leaves are TransactionInfo
// hashes (Domain.TransactionInfoHash); an empty right subtree is
// AccumulatorPlaceholderHash.
func (d *Domain) AccumulatorNodeHash(left, right HashValue) HashValue {
	return HashWithSeed(d.transactionAccumulator, left[:], right[:])
}

// AccumulatorProof proves one leaf into a transaction accumulator root
// (aptos-core's TransactionAccumulatorProof).
type AccumulatorProof struct {
	// Siblings are ordered from the leaf's level up to the root's children.
	Siblings []HashValue
}

// ReadAccumulatorProof decodes a BCS TransactionAccumulatorProof ({siblings: Vec<HashValue>}).
func ReadAccumulatorProof(r *bcs.Reader, field string) AccumulatorProof {
	r.Push(field)
	defer r.Pop()
	return AccumulatorProof{Siblings: readHashes(r, "siblings", MaxAccumulatorProofDepth)}
}

func readHashes(r *bcs.Reader, field string, max int) []HashValue {
	n := r.SeqLen(field, max, 32)
	if n == 0 {
		return nil
	}
	out := make([]HashValue, n)
	for i := range out {
		out[i] = r.Fixed32(field)
	}
	return out
}

// Verify checks that leaf is the leaf at index in the accumulator whose root is root,
// hashing nodes in domain d.
func (p AccumulatorProof) Verify(d *Domain, root, leaf HashValue, index uint64) error {
	if len(p.Siblings) > MaxAccumulatorProofDepth {
		return fmt.Errorf("%w: %d siblings, at most %d", ErrProof, len(p.Siblings), MaxAccumulatorProofDepth)
	}
	if len(p.Siblings) < 64 && index>>uint(len(p.Siblings)) != 0 {
		return fmt.Errorf("%w: leaf index %d does not fit a tree of height %d", ErrProof, index, len(p.Siblings))
	}
	h := leaf
	for _, s := range p.Siblings {
		if index%2 == 0 {
			h = d.AccumulatorNodeHash(h, s)
		} else {
			h = d.AccumulatorNodeHash(s, h)
		}
		index /= 2
	}
	if h != root {
		return fmt.Errorf("%w: computed root %s, expected %s", ErrProof, h, root)
	}
	return nil
}

// AccumulatorRangeProof proves a run of consecutive leaves into a transaction
// accumulator root (aptos-core's TransactionAccumulatorRangeProof).
type AccumulatorRangeProof struct {
	// LeftSiblings are the siblings left of the path from the first leaf to the root,
	// bottom level first (as stored on the real chain; aptos-core's doc comment says
	// root first, its verifier reads them bottom first).
	LeftSiblings []HashValue
	// RightSiblings are the siblings right of the path from the last leaf to the root,
	// bottom level first; an empty right subtree is AccumulatorPlaceholderHash.
	RightSiblings []HashValue
}

// ReadAccumulatorRangeProof decodes a BCS TransactionAccumulatorRangeProof
// ({left_siblings: Vec<HashValue>, right_siblings: Vec<HashValue>}); field names it in
// errors.
func ReadAccumulatorRangeProof(r *bcs.Reader, field string) AccumulatorRangeProof {
	r.Push(field)
	defer r.Pop()
	var p AccumulatorRangeProof
	p.LeftSiblings = readHashes(r, "left_siblings", MaxAccumulatorProofDepth)
	p.RightSiblings = readHashes(r, "right_siblings", MaxAccumulatorProofDepth)
	return p
}

// Verify checks that leaves are the leaves at indices first, first+1, ... of the
// accumulator whose root is root (for transactions: leaves are the TransactionInfo
// hashes of versions first..first+len-1), hashing nodes in domain d. At least one leaf
// is required.
func (p AccumulatorRangeProof) Verify(d *Domain, root HashValue, first uint64, leaves []HashValue) error {
	if len(leaves) == 0 {
		return fmt.Errorf("%w: no leaves to verify", ErrProof)
	}
	if len(p.LeftSiblings) > MaxAccumulatorProofDepth || len(p.RightSiblings) > MaxAccumulatorProofDepth {
		return fmt.Errorf("%w: %d left and %d right siblings, at most %d each", ErrProof,
			len(p.LeftSiblings), len(p.RightSiblings), MaxAccumulatorProofDepth)
	}
	if first >= 1<<63 || uint64(len(leaves)) > 1<<63-first {
		return fmt.Errorf("%w: leaves %d..+%d beyond the accumulator's capacity", ErrProof, first, len(leaves))
	}
	left, right := p.LeftSiblings, p.RightSiblings
	// Siblings are stored bottom level first: aptos-core's verifier takes the next one
	// from the front at each level, bottom up (its doc comment says the opposite).
	popLeft := func() (HashValue, bool) {
		if len(left) == 0 {
			return HashValue{}, false
		}
		h := left[0]
		left = left[1:]
		return h, true
	}
	popRight := func() (HashValue, bool) {
		if len(right) == 0 {
			return HashValue{}, false
		}
		h := right[0]
		right = right[1:]
		return h, true
	}
	cur := append([]HashValue(nil), leaves...)
	pos := first // index of cur[0] within its level
	for len(cur) > 1 || len(left) > 0 || len(right) > 0 {
		next := make([]HashValue, 0, len(cur)/2+2)
		i := 0
		if pos%2 == 1 {
			s, ok := popLeft()
			if !ok {
				return fmt.Errorf("%w: first node at index %d is a right child but no left sibling is left", ErrProof, pos)
			}
			next = append(next, d.AccumulatorNodeHash(s, cur[0]))
			i = 1
		}
		for ; i+1 < len(cur); i += 2 {
			next = append(next, d.AccumulatorNodeHash(cur[i], cur[i+1]))
		}
		if i < len(cur) {
			s, ok := popRight()
			if !ok {
				return fmt.Errorf("%w: last node is a left child but no right sibling is left", ErrProof)
			}
			next = append(next, d.AccumulatorNodeHash(cur[i], s))
		}
		cur = next
		pos /= 2
	}
	if cur[0] != root {
		return fmt.Errorf("%w: computed root %s, expected %s", ErrProof, cur[0], root)
	}
	return nil
}

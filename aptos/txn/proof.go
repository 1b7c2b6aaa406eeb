package txn

import (
	"fmt"
	"math/bits"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// maxProofFile is the largest chunk proof file accepted.
const maxProofFile = aptos.MaxLedgerInfoBytes + 2*(aptos.MaxAccumulatorProofDepth*32+1)

// ChunkProof is a decoded transaction chunk proof file: the BCS tuple
// (TransactionAccumulatorRangeProof, LedgerInfoWithSignatures).
type ChunkProof struct {
	// Range proves the chunk's transaction infos into the ledger info's accumulator
	// root. Its siblings are stored bottom level first.
	Range aptos.AccumulatorRangeProof
	// LedgerInfo is the signed ledger info the proof ends in.
	LedgerInfo aptos.LedgerInfoWithSignatures
}

// DecodeChunkProof strictly decodes a transaction chunk proof file.
func DecodeChunkProof(b []byte) (*ChunkProof, error) {
	if len(b) > maxProofFile {
		return nil, fmt.Errorf("decode chunk proof: %d bytes, limit %d: %w", len(b), maxProofFile, bcs.ErrLimit)
	}
	r := bcs.NewReader(b, bcs.Limits{MaxInput: maxProofFile})
	p := &ChunkProof{}
	p.Range = aptos.ReadAccumulatorRangeProof(r, "range_proof")
	p.LedgerInfo = aptos.ReadLedgerInfoWithSignatures(r, "ledger_info_with_signatures")
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode chunk proof: %w", err)
	}
	return p, nil
}

// checkProofShape checks, before any leaf is read, that a range proof for leaves first to
// last of an accumulator of numLeaves leaves has the siblings such a proof has: one on
// the left for every level where the first leaf's ancestor is a right child, one on the
// right for every level where the last leaf's ancestor is a left child, up to the root
// of the accumulator's height ceil(log2 numLeaves). A proof of another shape cannot
// yield that accumulator's root (the root check would fail after the whole chunk); this
// fails at once and says why.
func checkProofShape(first, last, numLeaves uint64, left, right int) error {
	if last < first || numLeaves <= last {
		return fmt.Errorf("%w: leaves %d-%d are not in an accumulator of %d leaves", aptos.ErrProof, first, last, numLeaves)
	}
	height := bits.Len64(numLeaves - 1)
	wantLeft, wantRight := 0, 0
	for k := 0; k < height; k++ {
		if first>>k&1 == 1 {
			wantLeft++
		}
		if last>>k&1 == 0 {
			wantRight++
		}
	}
	if left != wantLeft || right != wantRight {
		return fmt.Errorf("%w: %d left and %d right siblings; leaves %d-%d of an accumulator of %d leaves need %d and %d", aptos.ErrProof, left, right, first, last, numLeaves, wantLeft, wantRight)
	}
	return nil
}

// rangeVerifier checks an accumulator range proof while the leaves stream in, holding
// O(log n) hashes: the left siblings are the frozen subtree roots of the accumulator
// before the first leaf, the leaves are appended as InMemoryAccumulator appends them,
// and the right siblings then stand in for the empty subtrees the root would pad with.
// The result is the root aptos-core's AccumulatorRangeProof::verify computes.
type rangeVerifier struct {
	s      *seeds
	x      *hasher
	first  uint64
	n      uint64 // leaves so far
	frozen []HashValue
	right  []HashValue
}

func newRangeVerifier(s *seeds, first uint64, left, right []HashValue) (*rangeVerifier, error) {
	if len(left) > aptos.MaxAccumulatorProofDepth || len(right) > aptos.MaxAccumulatorProofDepth {
		return nil, fmt.Errorf("%w: %d left and %d right siblings, at most %d each", aptos.ErrProof, len(left), len(right), aptos.MaxAccumulatorProofDepth)
	}
	if want := bits.OnesCount64(first); len(left) != want {
		return nil, fmt.Errorf("%w: %d left siblings for first leaf %d, which needs %d", aptos.ErrProof, len(left), first, want)
	}
	v := &rangeVerifier{s: s, x: newHasher(), first: first, frozen: make([]HashValue, 0, 64), right: right}
	for i := len(left) - 1; i >= 0; i-- {
		v.frozen = append(v.frozen, left[i])
	}
	return v, nil
}

// add appends the next leaf.
func (v *rangeVerifier) add(leaf HashValue) {
	v.frozen = append(v.frozen, leaf)
	for n := v.first + v.n; n&1 == 1; n >>= 1 {
		l := len(v.frozen)
		v.frozen[l-2] = v.x.node(&v.s.transactionAccumulator, v.frozen[l-2], v.frozen[l-1])
		v.frozen = v.frozen[:l-1]
	}
	v.n++
}

// root returns the root the proof and the leaves added imply.
func (v *rangeVerifier) root() (HashValue, error) {
	if v.n == 0 {
		return HashValue{}, fmt.Errorf("%w: no leaves", aptos.ErrProof)
	}
	total := v.first + v.n
	last := total - 1
	frozen := v.frozen
	right := v.right
	cur := frozen[len(frozen)-1]
	frozen = frozen[:len(frozen)-1]
	for k := uint(bits.TrailingZeros64(total)); len(frozen) > 0 || len(right) > 0; k++ {
		if k < 64 && last>>k&1 == 1 {
			if len(frozen) == 0 {
				return HashValue{}, fmt.Errorf("%w: missing a sibling on the left", aptos.ErrProof)
			}
			cur = v.x.node(&v.s.transactionAccumulator, frozen[len(frozen)-1], cur)
			frozen = frozen[:len(frozen)-1]
		} else {
			if len(right) == 0 {
				return HashValue{}, fmt.Errorf("%w: missing a sibling on the right", aptos.ErrProof)
			}
			cur = v.x.node(&v.s.transactionAccumulator, cur, right[0])
			right = right[1:]
		}
	}
	return cur, nil
}

package accumulator

import (
	"context"
	"errors"
	"fmt"
	"math/bits"

	"github.com/transparency-dev/merkle/proof"

	"github.com/ledgervault/ledgervault/ledger"
)

// MaxProofHashes bounds each hash list of a proof; a tree of at most 2^63 leaves never
// needs more than 63 hashes in one.
const MaxProofHashes = 64

// ErrRootMismatch is returned (wrapped) when a proof leads to a root other than the
// expected one: the leaves or the proof were tampered with.
var ErrRootMismatch = errors.New("accumulator root mismatch")

// InclusionProof proves that a leaf is at a position of a tree of some size: the sibling
// hashes on its path to the root, lowest first (RFC 6962 audit path).
type InclusionProof struct {
	_        struct{} `cbor:",toarray"`
	Siblings []ledger.Hash
}

// ProveInclusion returns the proof that leaf index is in the tree of size leaves,
// reading the nodes it needs with get.
func ProveInclusion(ctx context.Context, get NodeGetter, index, size uint64) (InclusionProof, error) {
	if size > MaxSize {
		return InclusionProof{}, fmt.Errorf("prove inclusion of leaf %d: size %d too large", index, size)
	}
	nodes, err := proof.Inclusion(index, size)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("prove inclusion of leaf %d in size %d: %w", index, size, err)
	}
	ids := make([]NodeID, len(nodes.IDs))
	for i, id := range nodes.IDs {
		ids[i] = fromCompact(id)
	}
	hashes, err := getAll(ctx, get, ids)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("prove inclusion of leaf %d in size %d: %w", index, size, err)
	}
	rehashed, err := nodes.Rehash(toBytes(hashes), hasher.HashChildren)
	if err != nil {
		return InclusionProof{}, fmt.Errorf("prove inclusion of leaf %d in size %d: %w", index, size, err)
	}
	return InclusionProof{Siblings: toHashes(rehashed)}, nil
}

// VerifyInclusion checks that the TransactionInfo hash infoHash is leaf index of the
// tree of size leaves whose root is root.
func VerifyInclusion(root ledger.Hash, size, index uint64, infoHash ledger.Hash, p InclusionProof) error {
	if size > MaxSize {
		return fmt.Errorf("verify inclusion of leaf %d: size %d too large", index, size)
	}
	if len(p.Siblings) > MaxProofHashes {
		return fmt.Errorf("verify inclusion of leaf %d: %d proof hashes exceeds %d", index, len(p.Siblings), MaxProofHashes)
	}
	leaf := hasher.HashLeaf(infoHash[:])
	got, err := proof.RootFromInclusionProof(hasher, index, size, leaf, toBytes(p.Siblings))
	if err != nil {
		return fmt.Errorf("verify inclusion of leaf %d in size %d: %w", index, size, err)
	}
	if toHash(got) != root {
		return fmt.Errorf("verify inclusion of leaf %d in size %d: %w", index, size, ErrRootMismatch)
	}
	return nil
}

// Encode returns the canonical encoding of p.
func (p *InclusionProof) Encode() ([]byte, error) { return ledger.Encode(p) }

// DecodeInclusionProof decodes a canonical InclusionProof of at most MaxProofHashes hashes.
func DecodeInclusionProof(b []byte) (InclusionProof, error) {
	var p InclusionProof
	if err := ledger.DecodeCanonical(b, ledger.MaxSmallStructSize, &p); err != nil {
		return InclusionProof{}, err
	}
	if len(p.Siblings) > MaxProofHashes {
		return InclusionProof{}, fmt.Errorf("decode inclusion proof: %d hashes exceeds %d", len(p.Siblings), MaxProofHashes)
	}
	return p, nil
}

// RangeProof proves that consecutive leaves [first, last] are in a tree of size n, given
// the leaves. With end = last+1 and split = the point where the paths to leaves end-1
// and n diverge (n with the bits below that level cleared):
//   - Left holds the hashes of the compact range [0, first) (largest subtree first);
//   - Right holds the hashes of the compact range [end, split), perfect subtrees that
//     merge one by one with the proven leaves;
//   - RightTail, present iff split < n, is the root of the subtrees of [split, n), which
//     only ever enter the root as one hash.
//
// Each part is exactly determined by (first, last, n), which makes the proof minimal and
// its encoding unique.
type RangeProof struct {
	_         struct{} `cbor:",toarray"`
	Left      []ledger.Hash
	Right     []ledger.Hash
	RightTail *ledger.Hash
}

// rangeSplit returns split for the leaves ending before end in a tree of size n
// (end <= n); split == n when nothing sits right of the merge point.
func rangeSplit(end, n uint64) uint64 {
	if end == n {
		return n
	}
	// d: highest bit where end-1 and n differ; n has it set.
	d := bits.Len64((end-1)^n) - 1
	return n &^ (uint64(1)<<d - 1)
}

func checkRange(first, last, size uint64) error {
	if size > MaxSize {
		return fmt.Errorf("size %d too large", size)
	}
	if first > last || last >= size {
		return fmt.Errorf("leaves [%d, %d] not within a tree of size %d", first, last, size)
	}
	return nil
}

// ProveRange returns the proof that leaves [first, last] are in the tree of size leaves,
// reading the nodes it needs with get (at most about 3*log2(size) reads).
func ProveRange(ctx context.Context, get NodeGetter, size, first, last uint64) (RangeProof, error) {
	if err := checkRange(first, last, size); err != nil {
		return RangeProof{}, fmt.Errorf("prove range: %w", err)
	}
	end := last + 1
	split := rangeSplit(end, size)
	left, err := getAll(ctx, get, rangeIDs(0, first))
	if err != nil {
		return RangeProof{}, fmt.Errorf("prove range [%d, %d] in size %d: %w", first, last, size, err)
	}
	right, err := getAll(ctx, get, rangeIDs(end, split))
	if err != nil {
		return RangeProof{}, fmt.Errorf("prove range [%d, %d] in size %d: %w", first, last, size, err)
	}
	p := RangeProof{Left: left, Right: right}
	if split < size {
		tail, err := getAll(ctx, get, rangeIDs(split, size))
		if err != nil {
			return RangeProof{}, fmt.Errorf("prove range [%d, %d] in size %d: %w", first, last, size, err)
		}
		t := foldRoot(tail)
		p.RightTail = &t
	}
	return p, nil
}

// Validate checks that the proof has the exact shape for leaves [first, last] in a tree
// of size leaves.
func (p *RangeProof) Validate(size, first, last uint64) error {
	if err := checkRange(first, last, size); err != nil {
		return err
	}
	end := last + 1
	split := rangeSplit(end, size)
	if got, want := len(p.Left), len(FrontierIDs(first)); got != want {
		return fmt.Errorf("range proof: %d left hashes, want %d", got, want)
	}
	if got, want := len(p.Right), len(rangeIDs(end, split)); got != want {
		return fmt.Errorf("range proof: %d right hashes, want %d", got, want)
	}
	if hasTail := split < size; hasTail != (p.RightTail != nil) {
		return fmt.Errorf("range proof: right tail present=%v, want %v", p.RightTail != nil, hasTail)
	}
	return nil
}

// VerifyRange checks that infoHashes, the TransactionInfo hashes of leaves first,
// first+1, ..., are in the tree of size leaves whose root is root, by rebuilding the
// root from the proof and the leaves.
func VerifyRange(root ledger.Hash, size, first uint64, infoHashes []ledger.Hash, p RangeProof) error {
	_, err := VerifyRangeAndBuild(root, size, first, infoHashes, p, nil)
	return err
}

// VerifyRangeAndBuild is VerifyRange for a restore that rebuilds the tree: it also
// returns a Builder at size first+len(infoHashes) to continue from, and reports to visit
// (if not nil) every perfect subtree node that the leaves complete, as Builder.Append
// does. Nodes are reported before the root is checked: on error, discard them. To store
// the nodes left of the first restored leaf, persist the FrontierNodes of
// NewBuilderFromFrontier(first, p.Left) once the proof is verified.
func VerifyRangeAndBuild(root ledger.Hash, size, first uint64, infoHashes []ledger.Hash, p RangeProof, visit func(NodeID, ledger.Hash)) (*Builder, error) {
	if len(infoHashes) == 0 {
		return nil, fmt.Errorf("verify range at %d in size %d: no leaves", first, size)
	}
	last := first + uint64(len(infoHashes)) - 1
	if last < first {
		return nil, fmt.Errorf("verify range at %d: %d leaves overflow", first, len(infoHashes))
	}
	if err := p.Validate(size, first, last); err != nil {
		return nil, fmt.Errorf("verify range [%d, %d] in size %d: %w", first, last, size, err)
	}
	b, err := NewBuilderFromFrontier(first, p.Left)
	if err != nil {
		return nil, fmt.Errorf("verify range [%d, %d] in size %d: %w", first, last, size, err)
	}
	for _, h := range infoHashes {
		if err := b.Append(h, visit); err != nil {
			return nil, fmt.Errorf("verify range [%d, %d] in size %d: %w", first, last, size, err)
		}
	}
	resume, err := NewBuilderFromFrontier(b.Size(), b.Frontier()) // copy before merging the right side
	if err != nil {
		return nil, fmt.Errorf("verify range [%d, %d] in size %d: %w", first, last, size, err)
	}
	end := last + 1
	rr, err := factory.NewRange(end, rangeSplit(end, size), toBytes(p.Right))
	if err != nil {
		return nil, fmt.Errorf("verify range [%d, %d] in size %d: %w", first, last, size, err)
	}
	if err := b.r.AppendRange(rr, nil); err != nil {
		return nil, fmt.Errorf("verify range [%d, %d] in size %d: %w", first, last, size, err)
	}
	hashes := toHashes(b.r.Hashes())
	if p.RightTail != nil {
		hashes = append(hashes, *p.RightTail)
	}
	if foldRoot(hashes) != root {
		return nil, fmt.Errorf("verify range [%d, %d] in size %d: %w", first, last, size, ErrRootMismatch)
	}
	return resume, nil
}

// Encode returns the canonical encoding of p.
func (p *RangeProof) Encode() ([]byte, error) { return ledger.Encode(p) }

// DecodeRangeProof decodes a canonical RangeProof with at most MaxProofHashes hashes in
// each part. Its shape is checked against a range by VerifyRange.
func DecodeRangeProof(b []byte) (RangeProof, error) {
	var p RangeProof
	if err := ledger.DecodeCanonical(b, ledger.MaxSmallStructSize, &p); err != nil {
		return RangeProof{}, err
	}
	if len(p.Left) > MaxProofHashes || len(p.Right) > MaxProofHashes {
		return RangeProof{}, fmt.Errorf("decode range proof: %d left and %d right hashes, at most %d each",
			len(p.Left), len(p.Right), MaxProofHashes)
	}
	return p, nil
}

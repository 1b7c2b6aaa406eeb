package smt

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
)

// ErrInvalidProof is wrapped by every verification failure.
var ErrInvalidProof = errors.New("invalid smt proof")

// MaxProofSize is the largest encoded Proof.
const MaxProofSize = 1 + 2*ledger.HashSize + 2 + MaxDepth/8 + MaxDepth*ledger.HashSize

// MaxRangeProofSize is the largest encoded RangeProof.
const MaxRangeProofSize = 2 + MaxDepth/8 + MaxDepth*ledger.HashSize

// Proof proves that a key hash is in the tree with some value hash, or that it is not.
// It lists the siblings along the key's path from the root down to the first node that
// is a leaf or empty.
type Proof struct {
	// Siblings[i] is the hash of the sibling, at depth i+1, of the path's child of the
	// node at depth i (PlaceholderHash for an empty sibling).
	Siblings []ledger.Hash
	// HasLeaf reports whether the path ends at a leaf (else at an empty subtree).
	HasLeaf bool
	// Leaf is the leaf the path ends at: the key itself (inclusion) or another key whose
	// hash shares the path (non-inclusion).
	Leaf Leaf
}

// Prove returns the proof of keyHash's presence or absence in the tree at root.
func Prove(ctx context.Context, r NodeReader, root RootRef, keyHash ledger.Hash) (Proof, error) {
	var p Proof
	if root.LeafCount == 0 {
		return p, nil
	}
	w := walker{ctx: ctx, r: r}
	if err := w.start(root); err != nil {
		return p, fmt.Errorf("smt prove %s: %w", keyHash.Short(), err)
	}
	p.Siblings = make([]ledger.Hash, 0, 32)
	for !w.node.IsLeaf {
		b := bit(&keyHash, w.depth)
		p.Siblings = append(p.Siblings, w.node.Children[1-b].Hash)
		if w.node.Children[b].LeafCount == 0 {
			return p, nil
		}
		if err := w.down(b); err != nil {
			return p, fmt.Errorf("smt prove %s: %w", keyHash.Short(), err)
		}
	}
	p.HasLeaf = true
	p.Leaf = Leaf{w.node.KeyHash, w.node.ValueHash}
	return p, nil
}

// Verify checks the proof against root: with valueHash non-nil, that keyHash is present
// with that value hash; with valueHash nil, that keyHash is absent.
func (p *Proof) Verify(root, keyHash ledger.Hash, valueHash *ledger.Hash) error {
	n := len(p.Siblings)
	if n > MaxDepth {
		return fmt.Errorf("%w: %d siblings", ErrInvalidProof, n)
	}
	cur := PlaceholderHash
	switch {
	case p.HasLeaf && p.Leaf.KeyHash == keyHash:
		if valueHash == nil {
			return fmt.Errorf("%w: key %s is present", ErrInvalidProof, keyHash.Short())
		}
		if p.Leaf.ValueHash != *valueHash {
			return fmt.Errorf("%w: key %s has another value", ErrInvalidProof, keyHash.Short())
		}
		cur = LeafHash(&p.Leaf.KeyHash, &p.Leaf.ValueHash)
	case valueHash != nil:
		return fmt.Errorf("%w: proof shows key %s absent", ErrInvalidProof, keyHash.Short())
	case p.HasLeaf:
		if commonPrefixLen(&p.Leaf.KeyHash, &keyHash) < n {
			return fmt.Errorf("%w: leaf %s is not on the path of %s", ErrInvalidProof, p.Leaf.KeyHash.Short(), keyHash.Short())
		}
		cur = LeafHash(&p.Leaf.KeyHash, &p.Leaf.ValueHash)
	}
	for i := n - 1; i >= 0; i-- {
		if bit(&keyHash, i) == 0 {
			cur = InternalHash(&cur, &p.Siblings[i])
		} else {
			cur = InternalHash(&p.Siblings[i], &cur)
		}
	}
	if cur != root {
		return fmt.Errorf("%w: computed root %s, want %s", ErrInvalidProof, cur.Short(), root.Short())
	}
	return nil
}

// appendSiblings appends count(2) ‖ bitmap of non-placeholder siblings ‖ their hashes.
func appendSiblings(dst []byte, sib []ledger.Hash) ([]byte, error) {
	if len(sib) > MaxDepth {
		return dst, fmt.Errorf("smt proof: %d siblings > %d", len(sib), MaxDepth)
	}
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(sib)))
	bm := len(dst)
	dst = append(dst, make([]byte, (len(sib)+7)/8)...)
	for i := range sib {
		if sib[i] != PlaceholderHash {
			dst[bm+i/8] |= 0x80 >> uint(i%8)
			dst = append(dst, sib[i][:]...)
		}
	}
	return dst, nil
}

// decodeSiblings decodes what appendSiblings wrote, which must fill b exactly.
func decodeSiblings(b []byte) ([]ledger.Hash, error) {
	if len(b) < 2 {
		return nil, errors.New("siblings truncated")
	}
	n := int(binary.BigEndian.Uint16(b))
	if n > MaxDepth {
		return nil, fmt.Errorf("%d siblings > %d", n, MaxDepth)
	}
	b = b[2:]
	bmLen := (n + 7) / 8
	if len(b) < bmLen {
		return nil, errors.New("sibling bitmap truncated")
	}
	bm, b := b[:bmLen], b[bmLen:]
	if n%8 != 0 && bm[bmLen-1]&(0xff>>uint(n%8)) != 0 {
		return nil, errors.New("sibling bitmap has bits beyond the count")
	}
	set := 0
	for _, x := range bm {
		for ; x != 0; x &= x - 1 {
			set++
		}
	}
	if len(b) != set*ledger.HashSize {
		return nil, fmt.Errorf("want %d sibling hashes, got %d bytes", set, len(b))
	}
	sib := make([]ledger.Hash, n)
	for i := range sib {
		if bm[i/8]&(0x80>>uint(i%8)) == 0 {
			sib[i] = PlaceholderHash
			continue
		}
		copy(sib[i][:], b)
		b = b[ledger.HashSize:]
		if sib[i] == PlaceholderHash {
			return nil, fmt.Errorf("sibling %d: explicit placeholder hash", i)
		}
	}
	return sib, nil
}

// MarshalBinary encodes p: flags(1: bit 0 = has leaf) ‖ [keyHash(32) ‖ valueHash(32)] ‖
// count(2, BE) ‖ bitmap (one bit per sibling, most significant first, set for a
// non-placeholder sibling) ‖ the non-placeholder sibling hashes.
func (p *Proof) MarshalBinary() ([]byte, error) {
	dst := make([]byte, 0, 1+2*ledger.HashSize+2+MaxDepth/8+len(p.Siblings)*ledger.HashSize)
	if p.HasLeaf {
		dst = append(dst, 1)
		dst = append(dst, p.Leaf.KeyHash[:]...)
		dst = append(dst, p.Leaf.ValueHash[:]...)
	} else {
		dst = append(dst, 0)
	}
	return appendSiblings(dst, p.Siblings)
}

// DecodeProof decodes an encoded Proof, rejecting anything but the canonical encoding.
func DecodeProof(b []byte) (Proof, error) {
	var p Proof
	if len(b) > MaxProofSize {
		return p, fmt.Errorf("smt proof: %d bytes exceed %d", len(b), MaxProofSize)
	}
	if len(b) < 1 {
		return p, errors.New("smt proof: empty")
	}
	switch b[0] {
	case 0:
		b = b[1:]
	case 1:
		if len(b) < 1+2*ledger.HashSize {
			return p, errors.New("smt proof: leaf truncated")
		}
		p.HasLeaf = true
		copy(p.Leaf.KeyHash[:], b[1:])
		copy(p.Leaf.ValueHash[:], b[1+ledger.HashSize:])
		b = b[1+2*ledger.HashSize:]
	default:
		return p, fmt.Errorf("smt proof: unknown flags %#x", b[0])
	}
	sib, err := decodeSiblings(b)
	if err != nil {
		return p, fmt.Errorf("smt proof: %w", err)
	}
	p.Siblings = sib
	return p, nil
}

// RangeProof proves, together with every leaf up to and including a last leaf K, the
// root of a tree: it holds the siblings on the right side of K's path (the leaves and
// subtrees after K); the left siblings are rebuilt by the verifier from the leaves.
type RangeProof struct {
	// Siblings has one entry per depth of K's path, as in Proof; entries where the path
	// goes right (the left siblings) are PlaceholderHash.
	Siblings []ledger.Hash
}

// ProveRange returns the range proof for all leaves up to and including lastKeyHash,
// which must be a leaf of the tree at root.
func ProveRange(ctx context.Context, r NodeReader, root RootRef, lastKeyHash ledger.Hash) (RangeProof, error) {
	p, err := Prove(ctx, r, root, lastKeyHash)
	if err != nil {
		return RangeProof{}, fmt.Errorf("smt prove range: %w", err)
	}
	if !p.HasLeaf || p.Leaf.KeyHash != lastKeyHash {
		return RangeProof{}, fmt.Errorf("smt prove range: key %s is not in the tree", lastKeyHash.Short())
	}
	for i := range p.Siblings {
		if bit(&lastKeyHash, i) == 1 {
			p.Siblings[i] = PlaceholderHash
		}
	}
	return RangeProof{Siblings: p.Siblings}, nil
}

// MarshalBinary encodes p: count(2, BE) ‖ bitmap of non-placeholder siblings ‖ their
// hashes.
func (p *RangeProof) MarshalBinary() ([]byte, error) {
	return appendSiblings(make([]byte, 0, 2+MaxDepth/8+len(p.Siblings)*ledger.HashSize), p.Siblings)
}

// DecodeRangeProof decodes an encoded RangeProof, rejecting anything but the canonical
// encoding.
func DecodeRangeProof(b []byte) (RangeProof, error) {
	if len(b) > MaxRangeProofSize {
		return RangeProof{}, fmt.Errorf("smt range proof: %d bytes exceed %d", len(b), MaxRangeProofSize)
	}
	sib, err := decodeSiblings(b)
	if err != nil {
		return RangeProof{}, fmt.Errorf("smt range proof: %w", err)
	}
	return RangeProof{Siblings: sib}, nil
}

// VerifyRange checks that leaves are all the leaves of the tree with the given root up
// to and including the last of them, in strictly increasing key-hash order, given the
// range proof of the last leaf. It builds the leaves' left frontier like the Builder does.
func VerifyRange(root ledger.Hash, leaves []Leaf, proof RangeProof) error {
	_, err := NewChunkVerifier(root).AddChunk(leaves, proof)
	return err
}

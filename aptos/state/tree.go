package state

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/bits"

	"github.com/ledgervault/ledgervault/aptos"
)

// ErrRootMismatch is wrapped when the leaves and a range proof do not hash to the
// expected root.
var ErrRootMismatch = errors.New("state tree root mismatch")

// ErrOrder is wrapped when a leaf's key is not above the previous leaf's.
var ErrOrder = errors.New("state keys not in increasing order")

// ErrProof is wrapped when a range proof cannot be a proof of the last leaf.
var ErrProof = errors.New("invalid sparse Merkle range proof")

const maxDepth = 256

// frontier is a complete subtree left of the last leaf's path: the left child of the
// path's node at depth.
type frontier struct {
	depth int
	hash  HashValue
}

// Tree rebuilds a Jellyfish Merkle root from leaves in key order, keeping only the last
// leaf and the left siblings of its path (at most 256 hashes). It is not safe for
// concurrent use.
type Tree struct {
	h        *Hasher
	root     HashValue
	count    uint64
	last     HashValue // key hash of the last leaf
	lastHash HashValue // its leaf hash
	stack    []frontier
	done     bool
}

// NewTree returns a Tree that must hash to root.
func NewTree(h *Hasher, root HashValue) *Tree {
	return &Tree{h: h, root: root, stack: make([]frontier, 0, 64)}
}

// Leaves returns how many leaves were added.
func (t *Tree) Leaves() uint64 { return t.count }

// LastKey returns the key hash of the last leaf added (zero before the first).
func (t *Tree) LastKey() HashValue { return t.last }

// Add appends a leaf; its key must be above every key added before.
func (t *Tree) Add(key, valueHash HashValue) error {
	if t.done {
		return errors.New("state tree: already finished")
	}
	lh := t.h.Leaf(&key, &valueHash)
	if t.count > 0 {
		c := commonPrefix(&t.last, &key)
		if c == maxDepth || bit(&key, c) == 0 {
			return fmt.Errorf("%w: %s after %s", ErrOrder, key, t.last)
		}
		t.complete(c)
	}
	t.last, t.lastHash = key, lh
	t.count++
	return nil
}

// complete closes the subtree at depth c+1 holding the last leaf, now that a leaf
// diverging from it at bit c has arrived, and pushes it on the frontier.
func (t *Tree) complete(c int) {
	top := len(t.stack) - 1
	depth := c + 1
	if top >= 0 && t.stack[top].depth >= depth {
		depth = t.stack[top].depth + 1
	}
	cur := t.lastHash
	for j := depth - 1; j > c; j-- {
		cur = t.foldOne(j, cur, &top)
	}
	t.stack = append(t.stack[:top+1], frontier{depth: c, hash: cur})
}

// foldOne returns the hash of the node at depth j on the last leaf's path whose child on
// the path hashes to cur; the other child is the frontier entry at j (popped) when the
// path goes right, else empty.
func (t *Tree) foldOne(j int, cur HashValue, top *int) HashValue {
	if bit(&t.last, j) == 0 {
		return t.h.Internal(&cur, &aptos.SparseMerklePlaceholderHash)
	}
	left := aptos.SparseMerklePlaceholderHash
	if *top >= 0 && t.stack[*top].depth == j {
		left = t.stack[*top].hash
		*top--
	}
	return t.h.Internal(&left, &cur)
}

// Verify checks that the leaves added so far, with p (the range proof of the last leaf
// added), hash to the expected root: SparseMerkleRangeProof::verify with the left
// siblings a restore computes. The last leaf's depth is where aptos-core's restore puts
// it: below its deepest non-empty left sibling and the proof's last right sibling.
func (t *Tree) Verify(p *aptos.SparseMerkleRangeProof) error {
	if t.count == 0 {
		return errors.New("state tree: no leaves to prove")
	}
	right := p.RightSiblings
	if len(right) > maxDepth {
		return fmt.Errorf("%w: %d right siblings", ErrProof, len(right))
	}
	depth := 0
	if n := len(t.stack); n > 0 {
		depth = t.stack[n-1].depth + 1
	}
	zeros := 0
	pos := -1 // position of the last zero bit a right sibling is for
	for i := 0; i < maxDepth && zeros < len(right); i++ {
		if bit(&t.last, i) == 0 {
			zeros++
			pos = i
		}
	}
	if zeros < len(right) {
		return fmt.Errorf("%w: %d right siblings, the key %s has %d zero bits", ErrProof, len(right), t.last, zeros)
	}
	depth = max(depth, pos+1)
	if z := zeroBits(&t.last, depth); z != len(right) {
		return fmt.Errorf("%w: the last leaf %s is at depth %d with %d right siblings, the proof has %d", ErrProof, t.last, depth, z, len(right))
	}
	cur := t.lastHash
	top := len(t.stack) - 1
	ri := 0
	for j := depth - 1; j >= 0; j-- {
		if bit(&t.last, j) == 0 {
			cur = t.h.Internal(&cur, &right[ri])
			ri++
			continue
		}
		left := aptos.SparseMerklePlaceholderHash
		if top >= 0 && t.stack[top].depth == j {
			left = t.stack[top].hash
			top--
		}
		cur = t.h.Internal(&left, &cur)
	}
	if cur != t.root {
		return fmt.Errorf("%w: %d leaves up to %s with the proof hash to %s, want %s", ErrRootMismatch, t.count, t.last, cur, t.root)
	}
	return nil
}

// Finish checks that the leaves added are the whole tree: they hash to the expected
// root with nothing on their right. No leaf may be added afterwards.
func (t *Tree) Finish() error {
	if t.done {
		return errors.New("state tree: already finished")
	}
	t.done = true
	if t.count == 0 {
		if t.root != aptos.SparseMerklePlaceholderHash {
			return fmt.Errorf("%w: no leaves, want root %s", ErrRootMismatch, t.root)
		}
		return nil
	}
	depth := 0
	if n := len(t.stack); n > 0 {
		depth = t.stack[n-1].depth + 1
	}
	cur := t.lastHash
	top := len(t.stack) - 1
	for j := depth - 1; j >= 0; j-- {
		cur = t.foldOne(j, cur, &top)
	}
	if cur != t.root {
		return fmt.Errorf("%w: the %d leaves hash to %s, want %s", ErrRootMismatch, t.count, cur, t.root)
	}
	return nil
}

// bit returns bit i (0 = most significant bit of byte 0) of h.
func bit(h *HashValue, i int) int { return int(h[i>>3]>>(7-uint(i&7))) & 1 }

// zeroBits counts the zero bits of h's first n bits.
func zeroBits(h *HashValue, n int) int {
	z := 0
	for i := 0; i < n; i++ {
		z += 1 - bit(h, i)
	}
	return z
}

// commonPrefix returns the number of leading bits a and b share (256 if equal).
func commonPrefix(a, b *HashValue) int {
	for i := 0; i < 4; i++ {
		x := binary.BigEndian.Uint64(a[i*8:]) ^ binary.BigEndian.Uint64(b[i*8:])
		if x != 0 {
			return i*64 + bits.LeadingZeros64(x)
		}
	}
	return maxDepth
}

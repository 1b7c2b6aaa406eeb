package smt

import (
	"crypto/sha256"
	"encoding/binary"
	"math/bits"

	"github.com/ledgervault/ledgervault/ledger"
)

// MaxDepth is the largest depth of a node: a leaf whose key hash shares 255 bits with
// another sits at depth 256.
const MaxDepth = 256

const (
	leafPrefix     = "ledgervault/" + string(ledger.DomainSMTLeaf) + "\x00"
	internalPrefix = "ledgervault/" + string(ledger.DomainSMTInternal) + "\x00"
	valuePrefix    = "ledgervault/" + string(ledger.DomainStateValue) + "\x00"
)

// PlaceholderHash is the hash of an empty subtree (and the root of the empty tree).
var PlaceholderHash = ledger.HashOf(ledger.DomainSMTPlaceholder)

// KeyHash returns the key hash under which a raw state key is stored: plain SHA-256.
func KeyHash(key []byte) ledger.Hash { return sha256.Sum256(key) }

// ValueHash returns the hash of a state value as committed in a leaf; it equals
// HashOf(DomainStateValue, value).
func ValueHash(value []byte) ledger.Hash {
	var buf [len(valuePrefix) + 256]byte
	if len(value) > len(buf)-len(valuePrefix) {
		h := sha256.New()
		_, _ = h.Write([]byte(valuePrefix))
		_, _ = h.Write(value)
		var out ledger.Hash
		h.Sum(out[:0])
		return out
	}
	copy(buf[:], valuePrefix)
	n := copy(buf[len(valuePrefix):], value)
	return sha256.Sum256(buf[:len(valuePrefix)+n])
}

// LeafHash returns the hash of a leaf; it equals HashOf(DomainSMTLeaf, keyHash, valueHash).
func LeafHash(keyHash, valueHash *ledger.Hash) ledger.Hash {
	var buf [len(leafPrefix) + 2*ledger.HashSize]byte
	copy(buf[:], leafPrefix)
	copy(buf[len(leafPrefix):], keyHash[:])
	copy(buf[len(leafPrefix)+ledger.HashSize:], valueHash[:])
	return sha256.Sum256(buf[:])
}

// InternalHash returns the hash of an internal node; it equals
// HashOf(DomainSMTInternal, left, right).
func InternalHash(left, right *ledger.Hash) ledger.Hash {
	var buf [len(internalPrefix) + 2*ledger.HashSize]byte
	copy(buf[:], internalPrefix)
	copy(buf[len(internalPrefix):], left[:])
	copy(buf[len(internalPrefix)+ledger.HashSize:], right[:])
	return sha256.Sum256(buf[:])
}

// bit returns bit i (0 = most significant bit of byte 0) of h.
func bit(h *ledger.Hash, i int) int { return int(h[i>>3]>>(7-uint(i&7))) & 1 }

// setBit returns h with bit i set.
func setBit(h ledger.Hash, i int) ledger.Hash {
	h[i>>3] |= 1 << (7 - uint(i&7))
	return h
}

// commonPrefixLen returns the number of leading bits a and b share (256 if equal).
func commonPrefixLen(a, b *ledger.Hash) int {
	for i := 0; i < 4; i++ {
		x := binary.BigEndian.Uint64(a[i*8:]) ^ binary.BigEndian.Uint64(b[i*8:])
		if x != 0 {
			return i*64 + bits.LeadingZeros64(x)
		}
	}
	return 256
}

// prefix returns h with every bit at position >= depth cleared.
func prefix(h ledger.Hash, depth int) ledger.Hash {
	if depth >= MaxDepth {
		return h
	}
	i := depth >> 3
	h[i] &= ^byte(0xff >> uint(depth&7))
	for j := i + 1; j < ledger.HashSize; j++ {
		h[j] = 0
	}
	return h
}

// childPath returns the path of child b (0 or 1) of the node at depth with the given path.
func childPath(path ledger.Hash, depth, b int) ledger.Hash {
	if b == 1 {
		return setBit(path, depth)
	}
	return path
}

// less reports whether a sorts before b.
func less(a, b *ledger.Hash) bool {
	for i := 0; i < 4; i++ {
		x, y := binary.BigEndian.Uint64(a[i*8:]), binary.BigEndian.Uint64(b[i*8:])
		if x != y {
			return x < y
		}
	}
	return false
}

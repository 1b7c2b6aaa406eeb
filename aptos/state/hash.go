package state

import (
	"crypto/sha3"
	"hash"

	"github.com/ledgervault/ledgervault/aptos"
)

// HashValue is a 32-byte SHA3-256 digest.
type HashValue = aptos.HashValue

// Hasher hashes state keys, values and tree nodes in one chain's hash domain. It is
// safe for concurrent use.
type Hasher struct {
	domain                               *aptos.Domain
	stateKey, stateValue, leaf, internal HashValue
	accountStateBlob                     HashValue
}

// NewHasher returns the hasher of domain d (aptos.AptosDomain, aptos.DiemDomain, ...).
func NewHasher(d *aptos.Domain) *Hasher {
	return &Hasher{
		domain:           d,
		stateKey:         d.Seed("StateKey"),
		stateValue:       d.Seed("StateValue"),
		leaf:             d.Seed("SparseMerkleLeafNode"),
		internal:         d.Seed("SparseMerkleInternal"),
		accountStateBlob: d.Seed("AccountStateBlob"),
	}
}

// Domain returns the hasher's domain.
func (h *Hasher) Domain() *aptos.Domain { return h.domain }

// Leaf returns the hash of the leaf (key, valueHash): SparseMerkleLeafNode's CryptoHash.
func (h *Hasher) Leaf(key, valueHash *HashValue) HashValue {
	return sum2(&h.leaf, key, valueHash)
}

// Internal returns the hash of an internal node: SparseMerkleInternalNode's CryptoHash.
func (h *Hasher) Internal(left, right *HashValue) HashValue {
	return sum2(&h.internal, left, right)
}

// AccountStateBlobHash returns the value hash of a Diem 1.x account state blob (the
// "AccountStateBlob" hasher over the blob's bytes), the leaf values of that generation.
func (h *Hasher) AccountStateBlobHash(blob []byte) HashValue {
	return aptos.HashWithSeed(h.accountStateBlob, blob)
}

func sum2(seed, a, b *HashValue) HashValue {
	var buf [96]byte
	copy(buf[:], seed[:])
	copy(buf[32:], a[:])
	copy(buf[64:], b[:])
	return sha3.Sum256(buf[:])
}

// sum returns SHA3-256(seed || parts...) with a reusable hash.
func sum(x hash.Hash, seed *HashValue, parts ...[]byte) HashValue {
	x.Reset()
	x.Write(seed[:])
	for _, p := range parts {
		x.Write(p)
	}
	var out HashValue
	x.Sum(out[:0])
	return out
}

package aptos

import (
	"crypto/sha3"
	"encoding/hex"
	"fmt"
)

// HashValue is a 32-byte SHA3-256 output, as aptos-crypto's HashValue.
type HashValue [32]byte

// String returns the hash as lowercase hex without a prefix, as Aptos prints it.
func (h HashValue) String() string { return hex.EncodeToString(h[:]) }

// ParseHashValue parses 64 hex digits (an optional "0x" prefix is accepted).
func ParseHashValue(s string) (HashValue, error) {
	var h HashValue
	if len(s) >= 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X') {
		s = s[2:]
	}
	if len(s) != 64 {
		return h, fmt.Errorf("parse hash %q: want 64 hex digits, got %d", s, len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("parse hash %q: %w", s, err)
	}
	return h, nil
}

// Domain is a chain's hash domain: the prefix of every CryptoHasher salt. Aptos
// mainnet uses "APTOS::"; chains forked from Diem that run the Aptos framework (such as
// 0L's libra v7) kept "DIEM::"; 0L's Diem-1.x chain (v5) kept Libra's "LIBRA::". A
// trusted waypoint decides which one a store uses (see DetectDomain).
type Domain struct {
	prefix string

	ledgerInfo             HashValue
	waypoint               HashValue
	transactionInfo        HashValue
	transactionAccumulator HashValue
}

// NewDomain returns the hash domain whose salts begin with prefix.
func NewDomain(prefix string) *Domain {
	d := &Domain{prefix: prefix}
	d.ledgerInfo = d.Seed("LedgerInfo")
	d.waypoint = d.Seed("Ledger2WaypointConverter")
	d.transactionInfo = d.Seed("TransactionInfo")
	d.transactionAccumulator = d.Seed("TransactionAccumulator")
	return d
}

// The hash domains this package knows.
var (
	// AptosDomain is aptos-core's: salts begin with "APTOS::".
	AptosDomain = NewDomain("APTOS::")
	// DiemDomain is Diem's, kept by Aptos-framework chains forked from Diem (0L libra
	// v7): salts begin with "DIEM::".
	DiemDomain = NewDomain("DIEM::")
	// LibraDomain is Libra's, kept by Diem-1.x chains forked before the rename (0L v5):
	// salts begin with "LIBRA::".
	LibraDomain = NewDomain("LIBRA::")
)

// KnownDomains lists the domains DetectDomain tries, in order.
var KnownDomains = []*Domain{AptosDomain, DiemDomain, LibraDomain}

// Prefix returns the domain's salt prefix, such as "APTOS::".
func (d *Domain) Prefix() string { return d.prefix }

// String returns the prefix.
func (d *Domain) String() string { return d.prefix }

// Seed returns a CryptoHasher's seed for a serde type name:
// SHA3-256(prefix || typeName).
func (d *Domain) Seed(typeName string) HashValue {
	return sha3.Sum256([]byte(d.prefix + typeName))
}

// HashWithSeed returns SHA3-256(seed || data): the CryptoHash of a value whose BCS bytes
// are data and whose hasher has that seed.
func HashWithSeed(seed HashValue, data ...[]byte) HashValue {
	h := sha3.New256()
	h.Write(seed[:])
	for _, d := range data {
		h.Write(d)
	}
	var out HashValue
	h.Sum(out[:0])
	return out
}

// AccumulatorPlaceholderHash stands for an empty subtree in the transaction accumulator:
// the bytes "ACCUMULATOR_PLACEHOLDER_HASH" padded with zeros to 32 (aptos-crypto's
// create_literal_hash). Proofs carry it as a sibling where the right subtree is empty.
var AccumulatorPlaceholderHash = literalHash("ACCUMULATOR_PLACEHOLDER_HASH")

// SparseMerklePlaceholderHash stands for an empty subtree in the Jellyfish/sparse Merkle
// state tree: "SPARSE_MERKLE_PLACEHOLDER_HASH" padded with zeros to 32.
var SparseMerklePlaceholderHash = literalHash("SPARSE_MERKLE_PLACEHOLDER_HASH")

func literalHash(s string) HashValue {
	var h HashValue
	copy(h[:], s)
	return h
}

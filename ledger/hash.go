package ledger

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// HashSize is the size in bytes of every hash in the ledger.
const HashSize = 32

// Hash is a SHA-256 digest.
type Hash [HashSize]byte

// ZeroHash is the all-zero hash.
var ZeroHash Hash

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// Short returns the first 8 hex characters, for logs.
func (h Hash) Short() string { return hex.EncodeToString(h[:4]) }

// IsZero reports whether h is the all-zero hash.
func (h Hash) IsZero() bool { return h == ZeroHash }

// ParseHash parses 64 hex characters into a Hash.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*HashSize {
		if len(s) > 80 {
			s = s[:80] + "..."
		}
		return h, fmt.Errorf("parse hash %q: want %d hex characters", s, 2*HashSize)
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("parse hash %q: %w", s, err)
	}
	return h, nil
}

// HashFromBytes copies a 32-byte slice into a Hash.
func HashFromBytes(b []byte) (Hash, error) {
	var h Hash
	if len(b) != HashSize {
		return h, fmt.Errorf("hash: want %d bytes, got %d", HashSize, len(b))
	}
	copy(h[:], b)
	return h, nil
}

// Domain is a hashing domain: every hashed structure type has its own, so that bytes
// of one type can never be passed off as another.
type Domain string

// The hashing domains of the ledger. Each is prefixed, NUL-terminated, to the hashed
// bytes: SHA-256("ledgervault/" + domain + "\x00" + data).
const (
	DomainTransaction     Domain = "Transaction"
	DomainWriteSet        Domain = "WriteSet"
	DomainEvent           Domain = "Event"
	DomainTransactionInfo Domain = "TransactionInfo"
	DomainLedgerInfo      Domain = "LedgerInfo"
	DomainValidatorSet    Domain = "ValidatorSet"
	DomainStateValue      Domain = "StateValue"
	DomainSMTLeaf         Domain = "SMTLeaf"
	DomainSMTInternal     Domain = "SMTInternal"
	DomainSMTPlaceholder  Domain = "SMTPlaceholder"
)

// Hasher computes domain-separated hashes incrementally.
type Hasher struct {
	h interface {
		Write([]byte) (int, error)
		Sum([]byte) []byte
		Reset()
	}
	prefix []byte
}

// NewHasher returns a Hasher for domain d.
func NewHasher(d Domain) *Hasher {
	p := []byte("ledgervault/" + string(d) + "\x00")
	hs := &Hasher{h: sha256.New(), prefix: p}
	hs.Reset()
	return hs
}

// Reset starts a new hash in the same domain.
func (hs *Hasher) Reset() {
	hs.h.Reset()
	_, _ = hs.h.Write(hs.prefix)
}

// Write adds data to the hash; it never fails.
func (hs *Hasher) Write(p []byte) (int, error) { return hs.h.Write(p) }

// Sum returns the hash of everything written since the last Reset.
func (hs *Hasher) Sum() Hash {
	var out Hash
	hs.h.Sum(out[:0])
	return out
}

// HashOf returns the domain-separated hash of the concatenation of parts.
func HashOf(d Domain, parts ...[]byte) Hash {
	h := sha256.New()
	_, _ = h.Write([]byte("ledgervault/" + string(d) + "\x00"))
	for _, p := range parts {
		_, _ = h.Write(p)
	}
	var out Hash
	h.Sum(out[:0])
	return out
}

// Domains added after the first set (append only).
const (
	DomainEventTreeInternal    Domain = "EventTreeInternal"
	DomainEventTreePlaceholder Domain = "EventTreePlaceholder"
)

// MarshalText encodes the hash as 64 lower-case hex characters (used by JSON; the
// canonical CBOR encoding is unaffected and stays a 32-byte string).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes 64 hex characters.
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

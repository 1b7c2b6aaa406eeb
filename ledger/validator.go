package ledger

import (
	"bytes"
	"crypto/ed25519"
	"fmt"
	"io"
	"math/bits"
)

// ValidatorInfo is one validator: its ed25519 public key and voting power.
type ValidatorInfo struct {
	_           struct{} `cbor:",toarray"`
	PublicKey   []byte
	VotingPower uint64
}

// ValidatorSet is the validators of an epoch, sorted by public key (its canonical order).
type ValidatorSet struct {
	_          struct{} `cbor:",toarray"`
	Validators []ValidatorInfo
}

// NewValidatorSet returns the canonical validator set of vals (sorted by key) after
// validating it.
func NewValidatorSet(vals []ValidatorInfo) (*ValidatorSet, error) {
	sorted := make([]ValidatorInfo, len(vals))
	copy(sorted, vals)
	for i := 1; i < len(sorted); i++ { // insertion sort: sets are small
		for j := i; j > 0 && bytes.Compare(sorted[j-1].PublicKey, sorted[j].PublicKey) > 0; j-- {
			sorted[j-1], sorted[j] = sorted[j], sorted[j-1]
		}
	}
	vs := &ValidatorSet{Validators: sorted}
	if err := vs.Validate(); err != nil {
		return nil, err
	}
	return vs, nil
}

// Validate checks that the set is canonical and usable: 1 to MaxValidators validators,
// 32-byte keys in strictly increasing order, non-zero powers whose total fits in 62 bits.
func (vs *ValidatorSet) Validate() error {
	n := len(vs.Validators)
	if n == 0 || n > MaxValidators {
		return fmt.Errorf("validator set: %d validators, want 1 to %d", n, MaxValidators)
	}
	var total uint64
	for i := range vs.Validators {
		v := &vs.Validators[i]
		if len(v.PublicKey) != ed25519.PublicKeySize {
			return fmt.Errorf("validator set: validator %d: public key of %d bytes, want %d", i, len(v.PublicKey), ed25519.PublicKeySize)
		}
		if v.VotingPower == 0 {
			return fmt.Errorf("validator set: validator %d (%x) has no voting power", i, v.PublicKey[:4])
		}
		if i > 0 && bytes.Compare(vs.Validators[i-1].PublicKey, v.PublicKey) >= 0 {
			return fmt.Errorf("validator set: keys not strictly increasing at validator %d", i)
		}
		total += v.VotingPower
		if v.VotingPower > 1<<62 || total > 1<<62 {
			return fmt.Errorf("validator set: total voting power exceeds 2^62")
		}
	}
	return nil
}

// TotalPower returns the sum of the validators' voting power.
func (vs *ValidatorSet) TotalPower() uint64 {
	var t uint64
	for i := range vs.Validators {
		t += vs.Validators[i].VotingPower
	}
	return t
}

// HasQuorum reports whether power is a quorum of the set: strictly more than two thirds
// of its total voting power (exactly two thirds is not enough).
func (vs *ValidatorSet) HasQuorum(power uint64) bool {
	// power*3 > total*2, computed in 128 bits.
	h1, l1 := bits.Mul64(power, 3)
	h2, l2 := bits.Mul64(vs.TotalPower(), 2)
	return h1 > h2 || (h1 == h2 && l1 > l2)
}

// index returns the position of the validator with public key pk, or -1.
func (vs *ValidatorSet) index(pk []byte) int {
	lo, hi := 0, len(vs.Validators)
	for lo < hi {
		m := (lo + hi) / 2
		switch c := bytes.Compare(vs.Validators[m].PublicKey, pk); {
		case c == 0:
			return m
		case c < 0:
			lo = m + 1
		default:
			hi = m
		}
	}
	return -1
}

// Hash returns the domain-separated hash of the set's canonical encoding.
func (vs *ValidatorSet) Hash() Hash { return hashEncoded(DomainValidatorSet, vs) }

// Equal reports whether two sets are identical.
func (vs *ValidatorSet) Equal(o *ValidatorSet) bool {
	if vs == nil || o == nil {
		return vs == o
	}
	if len(vs.Validators) != len(o.Validators) {
		return false
	}
	for i := range vs.Validators {
		a, b := &vs.Validators[i], &o.Validators[i]
		if a.VotingPower != b.VotingPower || !bytes.Equal(a.PublicKey, b.PublicKey) {
			return false
		}
	}
	return true
}

// ValidatorSigner holds a validator's private key and signs ledger infos.
type ValidatorSigner struct {
	priv ed25519.PrivateKey
}

// GenerateValidatorSigner creates a signer with a new key read from rand (crypto/rand's
// Reader when nil; a deterministic reader in tests and dev networks).
func GenerateValidatorSigner(rand io.Reader) (*ValidatorSigner, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("generate validator key: %w", err)
	}
	return &ValidatorSigner{priv: priv}, nil
}

// NewValidatorSignerFromSeed returns the signer of the 32-byte ed25519 seed (as stored in
// a key file).
func NewValidatorSignerFromSeed(seed []byte) (*ValidatorSigner, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("validator key seed: %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	return &ValidatorSigner{priv: ed25519.NewKeyFromSeed(seed)}, nil
}

// Seed returns the signer's 32-byte private seed, for storing in a key file.
func (s *ValidatorSigner) Seed() []byte { return s.priv.Seed() }

// PublicKey returns the signer's public key.
func (s *ValidatorSigner) PublicKey() []byte {
	return []byte(s.priv.Public().(ed25519.PublicKey))
}

// Sign returns the signer's signature of li (over li's hash).
func (s *ValidatorSigner) Sign(li *LedgerInfo) ValidatorSignature {
	h := li.Hash()
	return ValidatorSignature{PublicKey: s.PublicKey(), Signature: ed25519.Sign(s.priv, h[:])}
}

package ledger

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// LedgerInfo is what validators sign: the ledger at Version (AccumulatorRoot is the root
// of the transaction accumulator with Version+1 leaves) in Epoch, and, only when the
// ledger info ends its epoch, the validator set of the next epoch.
type LedgerInfo struct {
	_                struct{} `cbor:",toarray"`
	Epoch            uint64
	Version          Version
	AccumulatorRoot  Hash
	TimestampUsec    uint64
	NextValidatorSet *ValidatorSet
}

// EndsEpoch reports whether li is the last ledger info of its epoch.
func (li *LedgerInfo) EndsEpoch() bool { return li.NextValidatorSet != nil }

// Validate checks the next validator set, if any.
func (li *LedgerInfo) Validate() error {
	if li.NextValidatorSet != nil {
		if err := li.NextValidatorSet.Validate(); err != nil {
			return fmt.Errorf("ledger info of epoch %d: next %w", li.Epoch, err)
		}
	}
	return nil
}

// Hash returns the domain-separated hash of the ledger info's canonical encoding: what
// validators sign and waypoints name.
func (li *LedgerInfo) Hash() Hash { return hashEncoded(DomainLedgerInfo, li) }

// ValidatorSignature is one validator's ed25519 signature of a LedgerInfo hash.
type ValidatorSignature struct {
	_         struct{} `cbor:",toarray"`
	PublicKey []byte
	Signature []byte
}

// LedgerInfoWithSignatures is a LedgerInfo with its validators' signatures, sorted by
// public key without duplicates (its canonical form).
type LedgerInfoWithSignatures struct {
	_          struct{} `cbor:",toarray"`
	LedgerInfo LedgerInfo
	Signatures []ValidatorSignature
}

// SignLedgerInfo returns li signed by every signer, signatures in canonical order.
func SignLedgerInfo(li LedgerInfo, signers ...*ValidatorSigner) LedgerInfoWithSignatures {
	sigs := make([]ValidatorSignature, 0, len(signers))
	for _, s := range signers {
		sigs = append(sigs, s.Sign(&li))
	}
	SortSignatures(sigs)
	return LedgerInfoWithSignatures{LedgerInfo: li, Signatures: sigs}
}

// SortSignatures sorts sigs by public key, the canonical order.
func SortSignatures(sigs []ValidatorSignature) {
	for i := 1; i < len(sigs); i++ {
		for j := i; j > 0 && bytes.Compare(sigs[j-1].PublicKey, sigs[j].PublicKey) > 0; j-- {
			sigs[j-1], sigs[j] = sigs[j], sigs[j-1]
		}
	}
}

// Validate checks the structure: a valid ledger info and at most MaxValidators
// signatures, sorted by public key without duplicates, each of ed25519 sizes.
func (l *LedgerInfoWithSignatures) Validate() error {
	if err := l.LedgerInfo.Validate(); err != nil {
		return err
	}
	if len(l.Signatures) > MaxValidators {
		return fmt.Errorf("ledger info of epoch %d version %d: %d signatures exceeds the limit of %d",
			l.LedgerInfo.Epoch, l.LedgerInfo.Version, len(l.Signatures), MaxValidators)
	}
	for i := range l.Signatures {
		s := &l.Signatures[i]
		if len(s.PublicKey) != ed25519.PublicKeySize || len(s.Signature) != ed25519.SignatureSize {
			return fmt.Errorf("ledger info of epoch %d version %d: signature %d has a malformed key or signature",
				l.LedgerInfo.Epoch, l.LedgerInfo.Version, i)
		}
		if i > 0 {
			switch c := bytes.Compare(l.Signatures[i-1].PublicKey, s.PublicKey); {
			case c == 0:
				return fmt.Errorf("ledger info of epoch %d version %d: duplicate signature by validator %x",
					l.LedgerInfo.Epoch, l.LedgerInfo.Version, s.PublicKey[:4])
			case c > 0:
				return fmt.Errorf("ledger info of epoch %d version %d: signatures not sorted by public key",
					l.LedgerInfo.Epoch, l.LedgerInfo.Version)
			}
		}
	}
	return nil
}

// ErrNoQuorum is returned (wrapped) when valid signatures carry two thirds of the voting
// power or less.
var ErrNoQuorum = errors.New("no quorum")

// VerifySignatures checks that l is signed by a quorum of vs: the structure is valid
// (no duplicate signer), every signature is by a member of vs and valid, and the
// signers' voting power is more than two thirds of vs's total.
func (l *LedgerInfoWithSignatures) VerifySignatures(vs *ValidatorSet) error {
	if err := l.Validate(); err != nil {
		return err
	}
	li := &l.LedgerInfo
	h := li.Hash()
	var power uint64
	for i := range l.Signatures {
		s := &l.Signatures[i]
		idx := vs.index(s.PublicKey)
		if idx < 0 {
			return fmt.Errorf("ledger info of epoch %d version %d: signer %x is not in the validator set",
				li.Epoch, li.Version, s.PublicKey[:4])
		}
		if !ed25519.Verify(s.PublicKey, h[:], s.Signature) {
			return fmt.Errorf("ledger info of epoch %d version %d: invalid signature by validator %x",
				li.Epoch, li.Version, s.PublicKey[:4])
		}
		power += vs.Validators[idx].VotingPower
	}
	if !vs.HasQuorum(power) {
		return fmt.Errorf("ledger info of epoch %d version %d: signers hold %d of %d voting power, need more than 2/3: %w",
			li.Epoch, li.Version, power, vs.TotalPower(), ErrNoQuorum)
	}
	return nil
}

// Encode returns the canonical encoding of l.
func (l *LedgerInfoWithSignatures) Encode() ([]byte, error) { return Encode(l) }

// DecodeLedgerInfoWithSignatures decodes a canonical LedgerInfoWithSignatures of at most
// MaxLedgerInfoSize bytes and validates its structure (not its signatures).
func DecodeLedgerInfoWithSignatures(b []byte) (LedgerInfoWithSignatures, error) {
	var l LedgerInfoWithSignatures
	if err := DecodeCanonical(b, MaxLedgerInfoSize, &l); err != nil {
		return LedgerInfoWithSignatures{}, err
	}
	if err := l.Validate(); err != nil {
		return LedgerInfoWithSignatures{}, fmt.Errorf("decode ledger info with signatures: %w", err)
	}
	return l, nil
}

// Encode returns the canonical encoding of li.
func (li *LedgerInfo) Encode() ([]byte, error) { return Encode(li) }

// DecodeLedgerInfo decodes a canonical LedgerInfo of at most MaxLedgerInfoSize bytes.
func DecodeLedgerInfo(b []byte) (LedgerInfo, error) {
	var li LedgerInfo
	if err := DecodeCanonical(b, MaxLedgerInfoSize, &li); err != nil {
		return LedgerInfo{}, err
	}
	if err := li.Validate(); err != nil {
		return LedgerInfo{}, fmt.Errorf("decode ledger info: %w", err)
	}
	return li, nil
}

// DecodeValidatorSet decodes a canonical ValidatorSet of at most MaxLedgerInfoSize bytes
// and validates it.
func DecodeValidatorSet(b []byte) (ValidatorSet, error) {
	var vs ValidatorSet
	if err := DecodeCanonical(b, MaxLedgerInfoSize, &vs); err != nil {
		return ValidatorSet{}, err
	}
	if err := vs.Validate(); err != nil {
		return ValidatorSet{}, fmt.Errorf("decode: %w", err)
	}
	return vs, nil
}

// Waypoint names a trusted ledger info by version and hash; it is the root of trust of a
// restore or verify. Its text form is "version:hex-hash".
type Waypoint struct {
	Version Version
	Hash    Hash
}

// NewWaypoint returns the waypoint of li.
func NewWaypoint(li *LedgerInfo) Waypoint { return Waypoint{Version: li.Version, Hash: li.Hash()} }

// String returns "version:hex-hash".
func (w Waypoint) String() string { return strconv.FormatUint(w.Version, 10) + ":" + w.Hash.String() }

// ParseWaypoint parses the "version:hex-hash" form.
func ParseWaypoint(s string) (Waypoint, error) {
	v, h, ok := strings.Cut(s, ":")
	if !ok {
		return Waypoint{}, fmt.Errorf("parse waypoint %q: want version:hash", s)
	}
	ver, err := strconv.ParseUint(v, 10, 64)
	if err != nil || (len(v) > 1 && v[0] == '0') || v[0] == '+' {
		return Waypoint{}, fmt.Errorf("parse waypoint %q: bad version %q", s, v)
	}
	hash, err := ParseHash(h)
	if err != nil {
		return Waypoint{}, fmt.Errorf("parse waypoint: %w", err)
	}
	return Waypoint{Version: ver, Hash: hash}, nil
}

// Verify checks that li is the ledger info the waypoint names.
func (w Waypoint) Verify(li *LedgerInfo) error {
	if li.Version != w.Version {
		return fmt.Errorf("ledger info version %d does not match waypoint %s", li.Version, w)
	}
	if h := li.Hash(); h != w.Hash {
		return fmt.Errorf("ledger info hash %s at version %d does not match waypoint %s", h, li.Version, w)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler ("version:hex-hash").
func (w Waypoint) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (w *Waypoint) UnmarshalText(b []byte) error {
	p, err := ParseWaypoint(string(b))
	if err != nil {
		return err
	}
	*w = p
	return nil
}

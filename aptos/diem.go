package aptos

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// Generation is the format generation of a backup-cli store's ledger infos.
type Generation int

// The generations DetectGeneration tells apart.
const (
	// GenerationUnknown is a record neither decoder accepts.
	GenerationUnknown Generation = iota
	// GenerationAptos is the Aptos framework's: BLS12-381 aggregate signatures with a
	// validator bitmask, 32-byte addresses. VerifyEpochChain checks it cryptographically.
	GenerationAptos
	// GenerationDiem1 is Diem 1.x's: a map from 16-byte validator addresses to Ed25519
	// signatures, hashes as length-prefixed byte strings. This package decodes it
	// (DecodeDiemLedgerInfoWithSignatures), computes its waypoints (Domain.DiemWaypoint)
	// and checks one ledger info's signatures against a given validator set
	// (VerifyDiemLedgerInfo), but VerifyEpochChain does not walk a Diem-1.x chain: it
	// returns ErrGenerationNotChecked.
	GenerationDiem1
)

// ErrGenerationNotChecked is wrapped when records are of a generation VerifyEpochChain
// does not check cryptographically; such a store must be reported as not verified.
var ErrGenerationNotChecked = errors.New("generation not checked cryptographically")

// String names the generation.
func (g Generation) String() string {
	switch g {
	case GenerationAptos:
		return "aptos (BLS12-381)"
	case GenerationDiem1:
		return "diem-1.x (Ed25519)"
	}
	return "unknown"
}

// DetectGeneration returns the generation whose strict decoder accepts an epoch-ending
// record; the two layouts differ (address length, key and signature encodings), so at
// most one accepts a real record.
func DetectGeneration(record []byte) Generation {
	if _, err := DecodeLedgerInfoWithSignatures(record); err == nil {
		return GenerationAptos
	}
	if _, err := DecodeDiemLedgerInfoWithSignatures(record); err == nil {
		return GenerationDiem1
	}
	return GenerationUnknown
}

// Diem 1.x sizes.
const (
	diemAddressLen   = 16
	ed25519KeyLen    = 32
	ed25519SigLen    = 64
	maxDiemValidator = 1 << 16
)

// DiemValidator is one validator of a Diem 1.x validator set.
type DiemValidator struct {
	// Address is the 16-byte account address.
	Address [diemAddressLen]byte
	// PublicKey is the Ed25519 consensus key.
	PublicKey ed25519.PublicKey
	// VotingPower is its weight in quorums.
	VotingPower uint64
}

// DiemEpochState is a Diem 1.x EpochState: the validators (sorted by address, a BCS
// BTreeMap) and the quorum and total voting power the chain serialized with them.
type DiemEpochState struct {
	// Epoch is the epoch the set signs for.
	Epoch uint64
	// Validators are sorted by address.
	Validators []DiemValidator
	// QuorumVotingPower is the serialized quorum (2f+1 of the total).
	QuorumVotingPower uint64
	// TotalVotingPower is the serialized total voting power.
	TotalVotingPower uint64
}

// DiemLedgerInfoWithSignatures is a Diem 1.x LedgerInfoWithSignatures::V0.
type DiemLedgerInfoWithSignatures struct {
	// LedgerInfo is what was signed; its CommitInfo.NextEpochState is nil here (the Diem
	// set is in NextEpochState below) but its Raw and waypoint bytes are exact.
	LedgerInfo LedgerInfo
	// NextEpochState is the next epoch's validator set when the ledger info ends an epoch.
	NextEpochState *DiemEpochState
	// Signatures maps signer addresses to Ed25519 signatures, sorted by address.
	Signatures []DiemSignature
}

// DiemSignature is one validator's signature.
type DiemSignature struct {
	// Address is the signer.
	Address [diemAddressLen]byte
	// Signature is its Ed25519 signature over the ledger info's signing message.
	Signature []byte
}

// DecodeDiemLedgerInfoWithSignatures decodes one Diem 1.x epoch-ending record strictly
// (map keys must be strictly increasing, as BCS requires of a BTreeMap).
func DecodeDiemLedgerInfoWithSignatures(b []byte) (*DiemLedgerInfoWithSignatures, error) {
	r := bcs.NewReader(b, bcs.Limits{MaxInput: MaxLedgerInfoBytes})
	var out DiemLedgerInfoWithSignatures
	r.Push("ledger_info_with_signatures")
	r.Variant("variant", 1)
	r.Push("ledger_info")
	start := r.Offset()
	li := &out.LedgerInfo
	c := &li.CommitInfo
	r.Push("commit_info")
	c.Epoch = r.U64("epoch")
	c.Round = r.U64("round")
	c.ID = readDiemHash(r, "id")
	c.ExecutedStateID = readDiemHash(r, "executed_state_id")
	c.Version = r.U64("version")
	c.TimestampUsecs = r.U64("timestamp_usecs")
	nextStart := r.Offset()
	if r.Option("next_epoch_state") {
		s := readDiemEpochState(r)
		out.NextEpochState = &s
	}
	nextEnd := r.Offset()
	r.Pop()
	li.ConsensusDataHash = readDiemHash(r, "consensus_data_hash")
	if r.Err() == nil {
		li.Raw = append([]byte(nil), r.Since(start)...)
		li.nextEpochRaw = li.Raw[nextStart-start : nextEnd-start : nextEnd-start]
	}
	r.Pop()
	n := r.SeqLen("signatures", maxDiemValidator, diemAddressLen+1+ed25519SigLen)
	for i := 0; i < n && r.Err() == nil; i++ {
		r.PushIndex("signatures", i)
		var s DiemSignature
		s.Address = [diemAddressLen]byte(r.Fixed("address", diemAddressLen))
		if i > 0 && bytes.Compare(s.Address[:], out.Signatures[i-1].Address[:]) <= 0 {
			r.Fail("address", fmt.Errorf("%w: map keys not strictly increasing", bcs.ErrInvalid))
		}
		s.Signature = append([]byte(nil), r.Bytes("signature", ed25519SigLen)...)
		if r.Err() == nil && len(s.Signature) != ed25519SigLen {
			r.Fail("signature", fmt.Errorf("%w: %d bytes, want %d", bcs.ErrInvalid, len(s.Signature), ed25519SigLen))
		}
		out.Signatures = append(out.Signatures, s)
		r.Pop()
	}
	r.Pop()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode Diem LedgerInfoWithSignatures: %w", err)
	}
	return &out, nil
}

func readDiemEpochState(r *bcs.Reader) DiemEpochState {
	r.Push("next_epoch_state")
	defer r.Pop()
	var s DiemEpochState
	s.Epoch = r.U64("epoch")
	r.Push("verifier")
	n := r.SeqLen("address_to_validator_info", maxDiemValidator, diemAddressLen+1+ed25519KeyLen+8)
	for i := 0; i < n && r.Err() == nil; i++ {
		r.PushIndex("address_to_validator_info", i)
		var v DiemValidator
		v.Address = [diemAddressLen]byte(r.Fixed("address", diemAddressLen))
		if i > 0 && bytes.Compare(v.Address[:], s.Validators[i-1].Address[:]) <= 0 {
			r.Fail("address", fmt.Errorf("%w: map keys not strictly increasing", bcs.ErrInvalid))
		}
		pk := r.Bytes("public_key", ed25519KeyLen)
		if r.Err() == nil && len(pk) != ed25519KeyLen {
			r.Fail("public_key", fmt.Errorf("%w: %d bytes, want %d", bcs.ErrInvalid, len(pk), ed25519KeyLen))
		}
		v.PublicKey = append(ed25519.PublicKey(nil), pk...)
		v.VotingPower = r.U64("voting_power")
		s.Validators = append(s.Validators, v)
		r.Pop()
	}
	s.QuorumVotingPower = r.U64("quorum_voting_power")
	s.TotalVotingPower = r.U64("total_voting_power")
	r.Pop()
	return s
}

// VerifyDiemLedgerInfo checks a Diem 1.x ledger info's signatures against the validator
// set of its epoch (announced by the previous epoch's ending): every signer known, no
// more signers than validators, their voting power at least the quorum (recomputed as
// total*2/3+1, and the serialized values must agree), every Ed25519 signature valid
// over seed("LedgerInfo") || bcs(LedgerInfo) in domain d.
func VerifyDiemLedgerInfo(d *Domain, set *DiemEpochState, li *DiemLedgerInfoWithSignatures) (signers int, err error) {
	if li.LedgerInfo.Epoch() != set.Epoch {
		return 0, fmt.Errorf("ledger info of epoch %d checked against the validator set of epoch %d", li.LedgerInfo.Epoch(), set.Epoch)
	}
	var total uint64
	for _, v := range set.Validators {
		if total+v.VotingPower < total {
			return 0, fmt.Errorf("epoch %d validator set: total voting power overflows", set.Epoch)
		}
		total += v.VotingPower
	}
	quorum := uint64(0)
	if len(set.Validators) > 0 {
		// total*2/3+1 without overflow: total < 2^64, so compute in two steps.
		quorum = total/3*2 + (total%3)*2/3 + 1
	}
	if total != set.TotalVotingPower || quorum != set.QuorumVotingPower {
		return 0, fmt.Errorf("epoch %d validator set: serialized total %d and quorum %d, computed %d and %d",
			set.Epoch, set.TotalVotingPower, set.QuorumVotingPower, total, quorum)
	}
	if len(li.Signatures) > len(set.Validators) {
		return 0, fmt.Errorf("%w: %d signatures for %d validators", ErrSignature, len(li.Signatures), len(set.Validators))
	}
	msg := d.SigningMessage(&li.LedgerInfo)
	var power uint64
	for _, s := range li.Signatures {
		v := findDiemValidator(set, s.Address)
		if v == nil {
			return 0, fmt.Errorf("%w: signer 0x%x is not in the epoch %d validator set", ErrSignature, s.Address, set.Epoch)
		}
		if !ed25519.Verify(v.PublicKey, msg, s.Signature) {
			return 0, fmt.Errorf("%w: Ed25519 signature of 0x%x", ErrSignature, s.Address)
		}
		power += v.VotingPower
	}
	if power < quorum {
		return 0, fmt.Errorf("%w: signers' voting power %d below the quorum %d of the epoch %d validator set", ErrSignature, power, quorum, set.Epoch)
	}
	return len(li.Signatures), nil
}

func findDiemValidator(set *DiemEpochState, a [diemAddressLen]byte) *DiemValidator {
	for i := range set.Validators {
		if set.Validators[i].Address == a {
			return &set.Validators[i]
		}
	}
	return nil
}

// readDiemHash reads a Diem 1.x HashValue, which serde serializes as a byte string
// (length 32, then the bytes), unlike Aptos's fixed array.
func readDiemHash(r *bcs.Reader, field string) HashValue {
	b := r.Bytes(field, 32)
	if r.Err() == nil && len(b) != 32 {
		r.Fail(field, fmt.Errorf("%w: hash of %d bytes", bcs.ErrInvalid, len(b)))
	}
	var h HashValue
	copy(h[:], b)
	return h
}

// DiemWaypoint returns the waypoint of a Diem 1.x ledger info in domain d: the hash of
// its Ledger2WaypointConverter, whose root hash is a length-prefixed byte string there.
func (d *Domain) DiemWaypoint(li *DiemLedgerInfoWithSignatures) Waypoint {
	l := &li.LedgerInfo
	b := make([]byte, 0, 8+33+8+8+len(l.nextEpochRaw))
	b = bcs.AppendU64(b, l.Epoch())
	b = bcs.AppendBytes(b, l.CommitInfo.ExecutedStateID[:])
	b = bcs.AppendU64(b, l.Version())
	b = bcs.AppendU64(b, l.CommitInfo.TimestampUsecs)
	b = append(b, l.nextEpochRaw...)
	return Waypoint{Version: l.Version(), Value: HashWithSeed(d.waypoint, b)}
}

package aptos

import (
	"fmt"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// Limits on epoch-ending records.
const (
	// MaxValidators is the most validators a validator set may hold (aptos-bitvec's
	// bitmask addresses at most 65536 positions).
	MaxValidators = 1 << 16
	// MaxBitmaskBytes is the longest validator bitmask accepted (aptos-bitvec MAX_BUCKETS).
	MaxBitmaskBytes = MaxValidators / 8
	// MaxLedgerInfoBytes is the largest LedgerInfoWithSignatures record accepted.
	MaxLedgerInfoBytes = 16 << 20
	// PublicKeyLen is the length of a BLS12-381 (min-pk) public key: a compressed G1 point.
	PublicKeyLen = 48
	// SignatureLen is the length of a BLS12-381 (min-pk) signature: a compressed G2 point.
	SignatureLen = 96
)

// ValidatorInfo is one validator of a validator set (aptos-core's ValidatorConsensusInfo).
type ValidatorInfo struct {
	// Address is the validator's account address.
	Address [32]byte
	// PublicKey is its BLS12-381 consensus key, a compressed G1 point.
	PublicKey []byte
	// VotingPower is its weight in quorums.
	VotingPower uint64
}

// EpochState is the validator set of an epoch (aptos-core's EpochState).
type EpochState struct {
	// Epoch is the epoch this set signs for.
	Epoch uint64
	// Validators are the set in bitmask order (index i is bit i of a signature bitmask).
	Validators []ValidatorInfo
}

// BlockInfo is the block a ledger info commits (aptos-core's BlockInfo).
type BlockInfo struct {
	// Epoch is the block's epoch.
	Epoch uint64
	// Round is the consensus round.
	Round uint64
	// ID is the block id.
	ID HashValue
	// ExecutedStateID is the transaction accumulator root after the block.
	ExecutedStateID HashValue
	// Version is the last version the block commits.
	Version uint64
	// TimestampUsecs is the block time in microseconds.
	TimestampUsecs uint64
	// NextEpochState is the next epoch's validator set when the block ends an epoch.
	NextEpochState *EpochState
}

// LedgerInfo is what validators sign (aptos-core's LedgerInfo).
type LedgerInfo struct {
	// CommitInfo is the committed block.
	CommitInfo BlockInfo
	// ConsensusDataHash is the hash of consensus-internal data.
	ConsensusDataHash HashValue
	// Raw is the exact BCS encoding of the ledger info (a copy): its signing message is
	// seed("LedgerInfo") || Raw (Domain.SigningMessage).
	Raw []byte
	// nextEpochRaw is the BCS encoding of Option<EpochState>, hashed into the waypoint.
	nextEpochRaw []byte
}

// Epoch returns the ledger info's epoch.
func (li *LedgerInfo) Epoch() uint64 { return li.CommitInfo.Epoch }

// Version returns the ledger info's version.
func (li *LedgerInfo) Version() uint64 { return li.CommitInfo.Version }

// AccumulatorRoot returns the transaction accumulator root the ledger info commits to.
func (li *LedgerInfo) AccumulatorRoot() HashValue { return li.CommitInfo.ExecutedStateID }

// EndsEpoch reports whether the ledger info announces a next validator set.
func (li *LedgerInfo) EndsEpoch() bool { return li.CommitInfo.NextEpochState != nil }

// LedgerInfoHash returns a ledger info's CryptoHash, SHA3-256(seed("LedgerInfo") || bcs).
func (d *Domain) LedgerInfoHash(li *LedgerInfo) HashValue {
	return HashWithSeed(d.ledgerInfo, li.Raw)
}

// SigningMessage returns the bytes a validator's BLS signature over li covers:
// seed("LedgerInfo") || bcs(LedgerInfo) (aptos-crypto's signing_message).
func (d *Domain) SigningMessage(li *LedgerInfo) []byte {
	m := make([]byte, 0, 32+len(li.Raw))
	m = append(m, d.ledgerInfo[:]...)
	return append(m, li.Raw...)
}

// AggregateSignature is a BLS multi-signature with the bitmask of its signers
// (aptos-core's AggregateSignature).
type AggregateSignature struct {
	// Bitmask marks signer i by bit 0x80>>(i%8) of byte i/8 (aptos-bitvec order).
	Bitmask []byte
	// Signature is the aggregated compressed G2 signature, nil when absent.
	Signature []byte
}

// Signers returns the indices of the bits set in the bitmask, in increasing order.
func (a *AggregateSignature) Signers() []int {
	var out []int
	for i, b := range a.Bitmask {
		for j := 0; j < 8; j++ {
			if b&(0x80>>j) != 0 {
				out = append(out, i*8+j)
			}
		}
	}
	return out
}

// LedgerInfoWithSignatures is a ledger info with its validators' aggregate signature
// (aptos-core's LedgerInfoWithSignatures::V0), the record of an epoch-ending backup.
type LedgerInfoWithSignatures struct {
	// LedgerInfo is what was signed.
	LedgerInfo LedgerInfo
	// Signatures is the aggregate signature over it.
	Signatures AggregateSignature
}

// DecodeLedgerInfoWithSignatures decodes one BCS LedgerInfoWithSignatures that must fill b.
func DecodeLedgerInfoWithSignatures(b []byte) (*LedgerInfoWithSignatures, error) {
	r := bcs.NewReader(b, bcs.Limits{MaxInput: MaxLedgerInfoBytes})
	li := ReadLedgerInfoWithSignatures(r, "ledger_info_with_signatures")
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode LedgerInfoWithSignatures: %w", err)
	}
	return &li, nil
}

// ReadLedgerInfoWithSignatures decodes a BCS LedgerInfoWithSignatures at r's position;
// field names it in errors.
func ReadLedgerInfoWithSignatures(r *bcs.Reader, field string) LedgerInfoWithSignatures {
	r.Push(field)
	defer r.Pop()
	var out LedgerInfoWithSignatures
	r.Variant("variant", 1)
	out.LedgerInfo = readLedgerInfo(r)
	r.Push("signatures")
	out.Signatures.Bitmask = append([]byte(nil), r.Bytes("validator_bitmask", MaxBitmaskBytes)...)
	if r.Option("sig") {
		sig := r.Bytes("sig", SignatureLen)
		if r.Err() == nil && len(sig) != SignatureLen {
			r.Fail("sig", fmt.Errorf("signature is %d bytes, want %d", len(sig), SignatureLen))
		}
		out.Signatures.Signature = append([]byte(nil), sig...)
	}
	r.Pop()
	return out
}

func readLedgerInfo(r *bcs.Reader) LedgerInfo {
	r.Push("ledger_info")
	defer r.Pop()
	start := r.Offset()
	var li LedgerInfo
	c := &li.CommitInfo
	r.Push("commit_info")
	c.Epoch = r.U64("epoch")
	c.Round = r.U64("round")
	c.ID = r.Fixed32("id")
	c.ExecutedStateID = r.Fixed32("executed_state_id")
	c.Version = r.U64("version")
	c.TimestampUsecs = r.U64("timestamp_usecs")
	nextStart := r.Offset()
	if r.Option("next_epoch_state") {
		s := readEpochState(r)
		c.NextEpochState = &s
	}
	nextEnd := r.Offset()
	r.Pop()
	li.ConsensusDataHash = r.Fixed32("consensus_data_hash")
	if r.Err() == nil {
		li.Raw = append([]byte(nil), r.Since(start)...)
		li.nextEpochRaw = li.Raw[nextStart-start : nextEnd-start : nextEnd-start]
	}
	return li
}

func readEpochState(r *bcs.Reader) EpochState {
	r.Push("next_epoch_state")
	defer r.Pop()
	var s EpochState
	s.Epoch = r.U64("epoch")
	r.Push("verifier")
	// Each validator takes at least 32 + 1 + 48 + 8 bytes.
	n := r.SeqLen("validator_infos", MaxValidators, 32+1+PublicKeyLen+8)
	if n > 0 {
		s.Validators = make([]ValidatorInfo, n)
	}
	for i := 0; i < n && r.Err() == nil; i++ {
		r.PushIndex("validator_infos", i)
		v := &s.Validators[i]
		v.Address = r.Fixed32("address")
		pk := r.Bytes("public_key", PublicKeyLen)
		if r.Err() == nil && len(pk) != PublicKeyLen {
			r.Fail("public_key", fmt.Errorf("public key is %d bytes, want %d", len(pk), PublicKeyLen))
		}
		v.PublicKey = append([]byte(nil), pk...)
		v.VotingPower = r.U64("voting_power")
		r.Pop()
	}
	r.Pop()
	return s
}

package proof

import (
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
)

// MaxSize bounds an encoded StateRoot or TransactionRange (a ledger info and two small
// proofs in an envelope): decoders refuse longer input, and readers of the service's
// answers and of proof files read no more.
const MaxSize = ledger.MaxLedgerInfoSize + 2*ledger.MaxSmallStructSize + 64

// StateRoot ties the state root after a version to a signed ledger info: the
// transaction info at the version (which holds the state root), its accumulator
// inclusion proof, and the ledger info that covers the version.
type StateRoot struct {
	// Info is the transaction info at the version; Info.StateRootHash is the root.
	Info ledger.TransactionInfo
	// Proof proves Info at the version in the accumulator of LedgerInfo.
	Proof accumulator.InclusionProof
	// LedgerInfo is the signed ledger info the proof is against.
	LedgerInfo ledger.LedgerInfoWithSignatures
}

// Verify checks the proof for version v against a ledger info the caller has already
// verified (signatures, epoch history), and returns the proven state root.
func (p *StateRoot) Verify(v uint64, trusted *ledger.LedgerInfo) (ledger.Hash, error) {
	if p.LedgerInfo.LedgerInfo.Hash() != trusted.Hash() {
		return ledger.Hash{}, errors.New("state root proof: ledger info differs from the trusted one")
	}
	if err := accumulator.VerifyInclusion(trusted.AccumulatorRoot, trusted.Version+1, v, p.Info.Hash(), p.Proof); err != nil {
		return ledger.Hash{}, fmt.Errorf("state root proof at %d: %w", v, err)
	}
	return p.Info.StateRootHash, nil
}

// stateRootWire is the encoding of a StateRoot: canonical CBOR array of the canonical
// encodings of its three parts.
type stateRootWire struct {
	_          struct{} `cbor:",toarray"`
	Info       []byte
	Proof      []byte
	LedgerInfo []byte
}

// Encode returns the canonical encoding of the proof.
func (p *StateRoot) Encode() ([]byte, error) {
	info, err := p.Info.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode state root proof: %w", err)
	}
	proof, err := p.Proof.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode state root proof: %w", err)
	}
	li, err := p.LedgerInfo.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode state root proof: %w", err)
	}
	return ledger.Encode(&stateRootWire{Info: info, Proof: proof, LedgerInfo: li})
}

// DecodeStateRoot decodes an encoded StateRoot (at most MaxSize bytes). It checks
// encodings, not the proof: call Verify.
func DecodeStateRoot(b []byte) (StateRoot, error) {
	var w stateRootWire
	if err := ledger.DecodeCanonical(b, MaxSize, &w); err != nil {
		return StateRoot{}, fmt.Errorf("decode state root proof: %w", err)
	}
	info, err := ledger.DecodeTransactionInfo(w.Info)
	if err != nil {
		return StateRoot{}, fmt.Errorf("decode state root proof info: %w", err)
	}
	proof, err := accumulator.DecodeInclusionProof(w.Proof)
	if err != nil {
		return StateRoot{}, fmt.Errorf("decode state root proof: %w", err)
	}
	li, err := ledger.DecodeLedgerInfoWithSignatures(w.LedgerInfo)
	if err != nil {
		return StateRoot{}, fmt.Errorf("decode state root proof ledger info: %w", err)
	}
	return StateRoot{Info: info, Proof: proof, LedgerInfo: li}, nil
}

// TransactionRange is an accumulator range proof of transactions [first, last]
// against the signed ledger info that covers last (the first ledger info at or after
// last).
type TransactionRange struct {
	// Proof proves the range in the accumulator of LedgerInfo.
	Proof accumulator.RangeProof
	// LedgerInfo is the signed ledger info the proof is against.
	LedgerInfo ledger.LedgerInfoWithSignatures
}

// transactionRangeWire is the encoding of a TransactionRange: canonical CBOR array of
// the canonical encodings of its two parts.
type transactionRangeWire struct {
	_          struct{} `cbor:",toarray"`
	Proof      []byte
	LedgerInfo []byte
}

// Encode returns the canonical encoding of the proof.
func (p *TransactionRange) Encode() ([]byte, error) {
	proof, err := p.Proof.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode transaction range proof: %w", err)
	}
	li, err := p.LedgerInfo.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode transaction range proof: %w", err)
	}
	return ledger.Encode(&transactionRangeWire{Proof: proof, LedgerInfo: li})
}

// DecodeTransactionRange decodes an encoded TransactionRange (at most MaxSize bytes).
// It checks encodings, not the proof.
func DecodeTransactionRange(b []byte) (TransactionRange, error) {
	var w transactionRangeWire
	if err := ledger.DecodeCanonical(b, MaxSize, &w); err != nil {
		return TransactionRange{}, fmt.Errorf("decode transaction range proof: %w", err)
	}
	proof, err := accumulator.DecodeRangeProof(w.Proof)
	if err != nil {
		return TransactionRange{}, fmt.Errorf("decode transaction range proof: %w", err)
	}
	li, err := ledger.DecodeLedgerInfoWithSignatures(w.LedgerInfo)
	if err != nil {
		return TransactionRange{}, fmt.Errorf("decode transaction range proof ledger info: %w", err)
	}
	return TransactionRange{Proof: proof, LedgerInfo: li}, nil
}

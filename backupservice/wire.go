package backupservice

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// Size limits of the non-streamed responses; the client refuses longer bodies.
const (
	// MaxDBStateSize bounds the db_state JSON document.
	MaxDBStateSize = 2 * ledger.MaxLedgerInfoSize
	// MaxProofResponseSize bounds the state root proof and transaction range proof
	// responses (a ledger info and two small proofs in an envelope).
	MaxProofResponseSize = ledger.MaxLedgerInfoSize + 2*ledger.MaxSmallStructSize + 64
	// maxSmallResponse bounds the state_item_count answer and error messages.
	maxSmallResponse = 4 << 10
)

// DBState is what the db_state endpoint reports about the node's store.
type DBState struct {
	// NextVersion is the number of committed versions (the next version to commit).
	NextVersion uint64 `json:"next_version"`
	// CommittedVersion is the version of the newest signed ledger info (nil when
	// nothing is committed); every version up to it can be proven against it.
	CommittedVersion *uint64 `json:"committed_version,omitempty"`
	// Epoch is the epoch of the newest ledger info.
	Epoch uint64 `json:"epoch"`
	// FirstTxnVersion is the first version whose transaction is stored.
	FirstTxnVersion uint64 `json:"first_txn_version"`
	// StateBaseVersion is set when the store was restored from a state snapshot at
	// that version (no state exists before it).
	StateBaseVersion *uint64 `json:"state_base_version,omitempty"`
	// LatestLedgerInfo is the canonical CBOR encoding of the newest
	// LedgerInfoWithSignatures (base64 in JSON).
	LatestLedgerInfo []byte `json:"latest_ledger_info,omitempty"`
}

// DecodeDBState parses and checks a db_state document.
func DecodeDBState(b []byte) (DBState, error) {
	if len(b) > MaxDBStateSize {
		return DBState{}, fmt.Errorf("decode db state: %d bytes exceeds %d", len(b), MaxDBStateSize)
	}
	var s DBState
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return DBState{}, fmt.Errorf("decode db state: %w", err)
	}
	if dec.More() {
		return DBState{}, fmt.Errorf("decode db state: data after the document")
	}
	if (s.CommittedVersion == nil) != (s.LatestLedgerInfo == nil) {
		return DBState{}, fmt.Errorf("decode db state: committed_version and latest_ledger_info must come together")
	}
	if s.CommittedVersion != nil {
		li, err := s.LedgerInfo()
		if err != nil {
			return DBState{}, err
		}
		if li.LedgerInfo.Version != *s.CommittedVersion || li.LedgerInfo.Epoch != s.Epoch {
			return DBState{}, fmt.Errorf("decode db state: latest ledger info (epoch %d, version %d) disagrees with epoch %d, committed version %d",
				li.LedgerInfo.Epoch, li.LedgerInfo.Version, s.Epoch, *s.CommittedVersion)
		}
		if *s.CommittedVersion >= s.NextVersion {
			return DBState{}, fmt.Errorf("decode db state: committed version %d not below next version %d", *s.CommittedVersion, s.NextVersion)
		}
	}
	return s, nil
}

// LedgerInfo decodes LatestLedgerInfo. It is not verified: check it against an epoch
// history before trusting it.
func (s *DBState) LedgerInfo() (ledger.LedgerInfoWithSignatures, error) {
	li, err := ledger.DecodeLedgerInfoWithSignatures(s.LatestLedgerInfo)
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("decode db state latest ledger info: %w", err)
	}
	return li, nil
}

// stateRootProofWire is the state_root_proof response: canonical CBOR array of the
// canonical encodings of its three parts.
type stateRootProofWire struct {
	_          struct{} `cbor:",toarray"`
	Info       []byte
	Proof      []byte
	LedgerInfo []byte
}

// EncodeStateRootProof encodes a state root proof for the wire.
func EncodeStateRootProof(p *ledgerdb.StateRootProof) ([]byte, error) {
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
	return ledger.Encode(&stateRootProofWire{Info: info, Proof: proof, LedgerInfo: li})
}

// DecodeStateRootProof decodes a state root proof response (at most
// MaxProofResponseSize bytes). It checks encodings, not the proof: call Verify.
func DecodeStateRootProof(b []byte) (ledgerdb.StateRootProof, error) {
	var w stateRootProofWire
	if err := ledger.DecodeCanonical(b, MaxProofResponseSize, &w); err != nil {
		return ledgerdb.StateRootProof{}, fmt.Errorf("decode state root proof: %w", err)
	}
	info, err := ledger.DecodeTransactionInfo(w.Info)
	if err != nil {
		return ledgerdb.StateRootProof{}, fmt.Errorf("decode state root proof info: %w", err)
	}
	proof, err := accumulator.DecodeInclusionProof(w.Proof)
	if err != nil {
		return ledgerdb.StateRootProof{}, fmt.Errorf("decode state root proof: %w", err)
	}
	li, err := ledger.DecodeLedgerInfoWithSignatures(w.LedgerInfo)
	if err != nil {
		return ledgerdb.StateRootProof{}, fmt.Errorf("decode state root proof ledger info: %w", err)
	}
	return ledgerdb.StateRootProof{Info: info, Proof: proof, LedgerInfo: li}, nil
}

// TransactionRangeProof is the transaction_range_proof response: an accumulator range
// proof of transactions [first, last] against the signed ledger info that covers last
// (the first ledger info at or after last).
type TransactionRangeProof struct {
	Proof      accumulator.RangeProof
	LedgerInfo ledger.LedgerInfoWithSignatures
}

type txnRangeProofWire struct {
	_          struct{} `cbor:",toarray"`
	Proof      []byte
	LedgerInfo []byte
}

// EncodeTransactionRangeProof encodes a transaction range proof response.
func EncodeTransactionRangeProof(p *TransactionRangeProof) ([]byte, error) {
	proof, err := p.Proof.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode transaction range proof: %w", err)
	}
	li, err := p.LedgerInfo.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode transaction range proof: %w", err)
	}
	return ledger.Encode(&txnRangeProofWire{Proof: proof, LedgerInfo: li})
}

// DecodeTransactionRangeProof decodes a transaction range proof response (at most
// MaxProofResponseSize bytes). It checks encodings, not the proof.
func DecodeTransactionRangeProof(b []byte) (TransactionRangeProof, error) {
	var w txnRangeProofWire
	if err := ledger.DecodeCanonical(b, MaxProofResponseSize, &w); err != nil {
		return TransactionRangeProof{}, fmt.Errorf("decode transaction range proof: %w", err)
	}
	proof, err := accumulator.DecodeRangeProof(w.Proof)
	if err != nil {
		return TransactionRangeProof{}, fmt.Errorf("decode transaction range proof: %w", err)
	}
	li, err := ledger.DecodeLedgerInfoWithSignatures(w.LedgerInfo)
	if err != nil {
		return TransactionRangeProof{}, fmt.Errorf("decode transaction range proof ledger info: %w", err)
	}
	return TransactionRangeProof{Proof: proof, LedgerInfo: li}, nil
}

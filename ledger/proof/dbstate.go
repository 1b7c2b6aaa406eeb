package proof

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
)

// MaxDBStateSize bounds an encoded DBState document.
const MaxDBStateSize = 2 * ledger.MaxLedgerInfoSize

// DBState is what a node reports about its store (the backup service's db_state
// answer), encoded as a JSON document.
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

// DecodeDBState parses and checks a db_state document (at most MaxDBStateSize bytes).
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

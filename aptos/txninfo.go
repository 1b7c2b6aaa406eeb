package aptos

import (
	"fmt"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// Limits on strings inside an execution status (Move identifiers and abort descriptions).
const (
	maxIdentifierLen  = 1 << 16
	maxAbortInfoBytes = 1 << 16
)

// ExecutionStatus kinds, in BCS variant order of aptos-core's ExecutionStatus.
const (
	StatusSuccess uint32 = iota
	StatusOutOfGas
	StatusMoveAbort
	StatusExecutionFailure
	StatusMiscellaneousError
)

// ExecutionStatus is how a transaction ended (aptos-core's ExecutionStatus), kept in the
// detail this package checks: the kind, and the abort or status code where there is one.
type ExecutionStatus struct {
	// Kind is one of the Status* constants.
	Kind uint32
	// Code is the Move abort code (MoveAbort) or VM status code (MiscellaneousError, when
	// present).
	Code uint64
	// Location names the aborting module as "0xADDRESS::name", or "script"; empty when the
	// kind has no location.
	Location string
}

// TransactionInfo is what the transaction accumulator commits to for one version
// (aptos-core's TransactionInfo::V0).
type TransactionInfo struct {
	// GasUsed is the gas the transaction used.
	GasUsed uint64
	// Status is how it ended.
	Status ExecutionStatus
	// TransactionHash is the CryptoHash of the transaction.
	TransactionHash HashValue
	// EventRootHash is the root of the transaction's event accumulator.
	EventRootHash HashValue
	// StateChangeHash is the hash of the transaction's write set.
	StateChangeHash HashValue
	// StateCheckpointHash is the state tree root after the transaction, present at state
	// checkpoints (nil otherwise).
	StateCheckpointHash *HashValue
	// AuxiliaryHash is the trailing optional hash (state_cemetery_hash, later
	// auxiliary_info_hash), nil when absent.
	AuxiliaryHash *HashValue
	// Raw is the exact BCS encoding the info was decoded from (a copy), which Domain.TransactionInfoHash hashes.
	Raw []byte
}

// TransactionInfoHash returns a TransactionInfo's CryptoHash, its accumulator leaf:
// SHA3-256(seed("TransactionInfo") || bcs).
func (d *Domain) TransactionInfoHash(t *TransactionInfo) HashValue {
	return HashWithSeed(d.transactionInfo, t.Raw)
}

// ReadTransactionInfo decodes a BCS TransactionInfo (enum, variant V0) at r's position;
// field names it in errors.
func ReadTransactionInfo(r *bcs.Reader, field string) TransactionInfo {
	r.Push(field)
	defer r.Pop()
	start := r.Offset()
	var t TransactionInfo
	r.Variant("variant", 1)
	t.GasUsed = r.U64("gas_used")
	t.Status = readExecutionStatus(r)
	t.TransactionHash = r.Fixed32("transaction_hash")
	t.EventRootHash = r.Fixed32("event_root_hash")
	t.StateChangeHash = r.Fixed32("state_change_hash")
	if r.Option("state_checkpoint_hash") {
		h := HashValue(r.Fixed32("state_checkpoint_hash"))
		t.StateCheckpointHash = &h
	}
	if r.Option("auxiliary_info_hash") {
		h := HashValue(r.Fixed32("auxiliary_info_hash"))
		t.AuxiliaryHash = &h
	}
	if r.Err() == nil {
		t.Raw = append([]byte(nil), r.Since(start)...)
	}
	return t
}

// DecodeTransactionInfo decodes one BCS TransactionInfo that must fill b.
func DecodeTransactionInfo(b []byte) (*TransactionInfo, error) {
	r := bcs.NewReader(b, bcs.Limits{})
	t := ReadTransactionInfo(r, "transaction_info")
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode transaction info: %w", err)
	}
	return &t, nil
}

func readExecutionStatus(r *bcs.Reader) ExecutionStatus {
	r.Push("status")
	defer r.Pop()
	var s ExecutionStatus
	s.Kind = r.Variant("variant", 5)
	switch s.Kind {
	case StatusMoveAbort:
		s.Location = readAbortLocation(r)
		s.Code = r.U64("code")
		if r.Option("info") {
			r.String("reason_name", maxAbortInfoBytes)
			r.String("description", maxAbortInfoBytes)
		}
	case StatusExecutionFailure:
		s.Location = readAbortLocation(r)
		r.U16("function")
		r.U16("code_offset")
	case StatusMiscellaneousError:
		if r.Option("status_code") {
			s.Code = r.U64("status_code")
		}
	}
	return s
}

func readAbortLocation(r *bcs.Reader) string {
	r.Push("location")
	defer r.Pop()
	switch r.Variant("variant", 2) {
	case 0:
		addr := r.Fixed32("address")
		name := r.String("name", maxIdentifierLen)
		return fmt.Sprintf("0x%x::%s", addr, name)
	default:
		return "script"
	}
}

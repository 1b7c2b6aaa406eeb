package aptos

import (
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// MaxStateProofBytes is the largest state.proof file accepted.
const MaxStateProofBytes = 16 << 20

// ErrStateRoot is wrapped when a snapshot's root hash disagrees with its proven
// transaction info.
var ErrStateRoot = errors.New("state root does not match the proven transaction info")

// TransactionInfoWithProof is a transaction info with the accumulator proof tying it to
// a ledger info's root (aptos-core's TransactionInfoWithProof).
type TransactionInfoWithProof struct {
	// Proof is the ledger-info-to-transaction-info accumulator proof.
	Proof AccumulatorProof
	// Info is the proven transaction info.
	Info TransactionInfo
}

// ReadTransactionInfoWithProof decodes a BCS TransactionInfoWithProof at r's position.
func ReadTransactionInfoWithProof(r *bcs.Reader, field string) TransactionInfoWithProof {
	r.Push(field)
	defer r.Pop()
	var t TransactionInfoWithProof
	t.Proof = ReadAccumulatorProof(r, "ledger_info_to_transaction_info_proof")
	t.Info = ReadTransactionInfo(r, "transaction_info")
	return t
}

// Verify checks that the info is the leaf at version of li's transaction accumulator.
func (t *TransactionInfoWithProof) Verify(d *Domain, li *LedgerInfo, version uint64) error {
	if version > li.Version() {
		return fmt.Errorf("transaction info at version %d is after the ledger info's version %d", version, li.Version())
	}
	if err := t.Proof.Verify(d, li.AccumulatorRoot(), d.TransactionInfoHash(&t.Info), version); err != nil {
		return fmt.Errorf("transaction info at version %d into the accumulator of ledger info (epoch %d, version %d): %w",
			version, li.Epoch(), li.Version(), err)
	}
	return nil
}

// StateSnapshotProof is the content of a state snapshot's state.proof file:
// BCS (TransactionInfoWithProof, LedgerInfoWithSignatures), as backup-cli writes it.
type StateSnapshotProof struct {
	// TxnInfo proves the transaction info at the snapshot's version.
	TxnInfo TransactionInfoWithProof
	// LedgerInfo is the signed ledger info whose accumulator holds it.
	LedgerInfo LedgerInfoWithSignatures
}

// DecodeStateSnapshotProof decodes a state.proof file's bytes strictly.
func DecodeStateSnapshotProof(b []byte) (*StateSnapshotProof, error) {
	r := bcs.NewReader(b, bcs.Limits{MaxInput: MaxStateProofBytes})
	var p StateSnapshotProof
	p.TxnInfo = ReadTransactionInfoWithProof(r, "txn_info_with_proof")
	p.LedgerInfo = ReadLedgerInfoWithSignatures(r, "ledger_info")
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode state snapshot proof: %w", err)
	}
	return &p, nil
}

// SparseMerkleRangeProof is a state snapshot chunk's proof (aptos-core's
// SparseMerkleRangeProof): the right siblings of the path from the root to the chunk's
// last leaf, bottom level first. Checking it needs the chunk's records (their leaves
// and the left siblings they imply): package aptos/state does that.
type SparseMerkleRangeProof struct {
	// RightSiblings are bottom level first; an empty subtree is
	// SparseMerklePlaceholderHash.
	RightSiblings []HashValue
}

// maxSparseMerkleDepth is the most siblings a state tree proof may have (256 key bits).
const maxSparseMerkleDepth = 256

// DecodeSparseMerkleRangeProof decodes a state snapshot chunk's .proof file strictly.
func DecodeSparseMerkleRangeProof(b []byte) (*SparseMerkleRangeProof, error) {
	r := bcs.NewReader(b, bcs.Limits{MaxInput: 1 + maxSparseMerkleDepth*32 + 8})
	r.Push("sparse_merkle_range_proof")
	p := &SparseMerkleRangeProof{RightSiblings: readHashes(r, "right_siblings", maxSparseMerkleDepth)}
	r.Pop()
	if err := r.Done(); err != nil {
		return nil, fmt.Errorf("decode state chunk range proof: %w", err)
	}
	return p, nil
}

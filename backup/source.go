package backup

import (
	"context"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// EpochSource is what the epoch ending writer reads from a node: the signed ledger
// infos that ended epochs [startEpoch, endEpoch).
type EpochSource interface {
	EpochEndingLedgerInfos(ctx context.Context, startEpoch, endEpoch uint64) (*backupservice.LedgerInfoStream, error)
}

// StateSource is what the state snapshot writer reads from a node: the proof of the
// state root at a version, the number of items, the items in key-hash order and the
// range proof of a chunk's last item.
type StateSource interface {
	StateRootProof(ctx context.Context, version uint64) (proof.StateRoot, error)
	StateItemCount(ctx context.Context, version uint64) (uint64, error)
	StateSnapshotChunk(ctx context.Context, version, start, limit uint64) (*backupservice.StateStream, error)
	StateRangeProof(ctx context.Context, version uint64, last ledger.Hash) (smt.RangeProof, error)
}

// TransactionSource is what the transaction writer reads from a node: what it has
// committed, the transactions of a range and their accumulator range proof.
type TransactionSource interface {
	DBState(ctx context.Context) (proof.DBState, error)
	Transactions(ctx context.Context, first, count uint64) (*backupservice.TransactionStream, error)
	TransactionRangeProof(ctx context.Context, first, last uint64) (proof.TransactionRange, error)
}

// Source is everything the writers read from a node. The backup service's client
// (*backupservice.Client) is one.
type Source interface {
	EpochSource
	StateSource
	TransactionSource
}

var _ Source = (*backupservice.Client)(nil)

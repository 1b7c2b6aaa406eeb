package ledgerdb

import (
	"context"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledger/proof"
)

// Summary describes what a store holds.
type Summary struct {
	// NextVersion is the number of committed versions (the next version to commit).
	NextVersion uint64
	// FirstTxnVersion is the first version whose transaction is stored.
	FirstTxnVersion uint64
	// HasStateBase and StateBaseVersion tell whether the store was restored from a
	// state snapshot, and at which version.
	HasStateBase     bool
	StateBaseVersion uint64
	// LatestEpoch is the epoch of the newest ledger info.
	LatestEpoch uint64
	// LatestLedgerInfo is the newest signed ledger info, if any.
	LatestLedgerInfo *ledger.LedgerInfoWithSignatures
}

// Empty reports whether nothing has been committed.
func (s Summary) Empty() bool { return s.NextVersion == 0 && !s.HasStateBase }

// Summary returns what the store holds.
func (d *DB) Summary(ctx context.Context) (Summary, error) {
	st := d.state()
	s := Summary{
		NextVersion:      st.NextVersion,
		FirstTxnVersion:  st.FirstTxnVersion,
		HasStateBase:     st.HasStateBase,
		StateBaseVersion: st.StateBaseVersion,
		LatestEpoch:      st.LatestEpoch,
	}
	if st.HasLedgerInfo {
		li, err := d.LedgerInfoAt(ctx, st.LatestLedgerInfoVersion)
		if err != nil {
			return Summary{}, err
		}
		s.LatestLedgerInfo = &li
	}
	return s, nil
}

// LedgerInfoAt returns the signed ledger info stored for exactly version v.
func (d *DB) LedgerInfoAt(ctx context.Context, v uint64) (ledger.LedgerInfoWithSignatures, error) {
	if err := ctx.Err(); err != nil {
		return ledger.LedgerInfoWithSignatures{}, err
	}
	b, err := d.get(versionKey(tableLedgerInfo, v))
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("ledger info at version %d: %w", v, err)
	}
	li, err := ledger.DecodeLedgerInfoWithSignatures(b)
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("ledger info at version %d: %w", v, err)
	}
	return li, nil
}

// LedgerInfoCovering returns the first signed ledger info whose version is at least v:
// the one that commits to version v.
func (d *DB) LedgerInfoCovering(ctx context.Context, v uint64) (ledger.LedgerInfoWithSignatures, error) {
	if err := ctx.Err(); err != nil {
		return ledger.LedgerInfoWithSignatures{}, err
	}
	lo, hi := tableBounds(tableLedgerInfo)
	it, err := d.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, err
	}
	defer it.Close()
	if !it.SeekGE(versionKey(tableLedgerInfo, v)) {
		if err := it.Error(); err != nil {
			return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("ledger info covering version %d: %w", v, err)
		}
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("ledger info covering version %d: %w", v, ErrNotFound)
	}
	li, err := ledger.DecodeLedgerInfoWithSignatures(it.Value())
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("ledger info covering version %d: %w", v, err)
	}
	return li, nil
}

// EpochEnding returns the signed ledger info that ended epoch e.
func (d *DB) EpochEnding(ctx context.Context, e uint64) (ledger.LedgerInfoWithSignatures, error) {
	if err := ctx.Err(); err != nil {
		return ledger.LedgerInfoWithSignatures{}, err
	}
	b, err := d.get(versionKey(tableEpochEnding, e))
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("epoch ending ledger info of epoch %d: %w", e, err)
	}
	li, err := ledger.DecodeLedgerInfoWithSignatures(b)
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("epoch ending ledger info of epoch %d: %w", e, err)
	}
	return li, nil
}

// EpochEndings calls fn with the encoded epoch-ending ledger info of every epoch in
// [startEpoch, endEpoch), in order. It fails with ErrNotFound if one is missing. The
// bytes passed to fn are valid only during the call.
func (d *DB) EpochEndings(ctx context.Context, startEpoch, endEpoch uint64, fn func(epoch uint64, raw []byte) error) error {
	return d.scanVersions(ctx, tableEpochEnding, startEpoch, endEpoch, "epoch ending ledger info", fn)
}

// Transactions calls fn with the encoded TransactionWithOutput of every version in
// [first, first+count), in order, without holding the range in memory. It fails with
// ErrNotFound if one is missing. The bytes passed to fn are valid only during the call.
func (d *DB) Transactions(ctx context.Context, first, count uint64, fn func(version uint64, raw []byte) error) error {
	end := first + count
	if end < first {
		return fmt.Errorf("transactions [%d, +%d): range overflows", first, count)
	}
	// A restore ingests transactions just before it records their versions: the table
	// may hold some the store has not reached.
	if next := d.state().NextVersion; end > next && count > 0 {
		return fmt.Errorf("transaction %d: only %d versions committed: %w", max(first, next), next, ErrNotFound)
	}
	r := newTxnReader(d.pdb)
	err := d.scanVersions(ctx, tableTxn, first, end, "transaction", func(v uint64, rec []byte) error {
		raw, err := r.canonical(v, rec)
		if err != nil {
			return err
		}
		return fn(v, raw)
	})
	if cerr := r.close(); err == nil && cerr != nil {
		err = fmt.Errorf("transactions [%d, +%d): close state values: %w", first, count, cerr)
	}
	return err
}

// scanVersions iterates table over keys [start, end) and requires every one present.
func (d *DB) scanVersions(ctx context.Context, table byte, start, end uint64, what string, fn func(uint64, []byte) error) error {
	if start >= end {
		return nil
	}
	it, err := d.pdb.NewIterWithContext(ctx, &pebble.IterOptions{
		LowerBound: versionKey(table, start),
		UpperBound: versionKey(table, end),
	})
	if err != nil {
		return err
	}
	defer it.Close()
	next := start
	for ok := it.First(); ok; ok = it.Next() {
		if err := ctx.Err(); err != nil {
			return err
		}
		v, err := parseVersionKey(table, it.Key())
		if err != nil {
			return err
		}
		if v != next {
			return fmt.Errorf("%s %d: %w", what, next, ErrNotFound)
		}
		if err := fn(v, it.Value()); err != nil {
			return err
		}
		next++
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("scan %s [%d, %d): %w", what, start, end, err)
	}
	if next != end {
		return fmt.Errorf("%s %d: %w", what, next, ErrNotFound)
	}
	return nil
}

// Transaction returns the transaction with output at version v.
func (d *DB) Transaction(ctx context.Context, v uint64) (ledger.TransactionWithOutput, error) {
	if err := ctx.Err(); err != nil {
		return ledger.TransactionWithOutput{}, err
	}
	if st := d.state(); v >= st.NextVersion {
		return ledger.TransactionWithOutput{}, fmt.Errorf("transaction %d: only %d versions committed: %w", v, st.NextVersion, ErrNotFound)
	}
	rec, err := d.get(versionKey(tableTxn, v))
	if err != nil {
		return ledger.TransactionWithOutput{}, fmt.Errorf("transaction %d: %w", v, err)
	}
	r := newTxnReader(d.pdb)
	t, err := r.transaction(v, rec)
	if cerr := r.close(); err == nil && cerr != nil {
		err = fmt.Errorf("transaction %d: close state values: %w", v, cerr)
	}
	if err != nil {
		return ledger.TransactionWithOutput{}, err
	}
	return t, nil
}

// accGetter reads accumulator nodes for the proof functions.
func (d *DB) accGetter() accumulator.NodeGetter { return d.accNode }

// AccumulatorRoot returns the root of the transaction accumulator after version v
// (v+1 leaves).
func (d *DB) AccumulatorRoot(ctx context.Context, v uint64) (ledger.Hash, error) {
	if st := d.state(); v >= st.NextVersion {
		return ledger.Hash{}, fmt.Errorf("accumulator root at version %d: only %d versions committed: %w", v, st.NextVersion, ErrNotFound)
	}
	h, err := accumulator.RootAt(ctx, d.accGetter(), v+1)
	if err != nil {
		return ledger.Hash{}, fmt.Errorf("accumulator root at version %d: %w", v, err)
	}
	return h, nil
}

// TransactionRangeProof proves transactions [first, last] against the accumulator root
// after version proofVersion (the version of the ledger info the proof is checked with).
func (d *DB) TransactionRangeProof(ctx context.Context, first, last, proofVersion uint64) (accumulator.RangeProof, error) {
	if st := d.state(); proofVersion >= st.NextVersion || last > proofVersion {
		return accumulator.RangeProof{}, fmt.Errorf("transaction range proof [%d, %d] at version %d: beyond committed version %d: %w",
			first, last, proofVersion, int64(st.NextVersion)-1, ErrNotFound)
	}
	return accumulator.ProveRange(ctx, d.accGetter(), proofVersion+1, first, last)
}

// StateRootProof returns the proof of the state root after version v: the transaction
// info at v, its accumulator inclusion proof and the signed ledger info covering v.
func (d *DB) StateRootProof(ctx context.Context, v uint64) (proof.StateRoot, error) {
	li, err := d.LedgerInfoCovering(ctx, v)
	if err != nil {
		return proof.StateRoot{}, fmt.Errorf("state root proof at %d: %w", v, err)
	}
	txn, err := d.Transaction(ctx, v)
	if err != nil {
		return proof.StateRoot{}, fmt.Errorf("state root proof at %d: %w", v, err)
	}
	p, err := accumulator.ProveInclusion(ctx, d.accGetter(), v, li.LedgerInfo.Version+1)
	if err != nil {
		return proof.StateRoot{}, fmt.Errorf("state root proof at %d: %w", v, err)
	}
	return proof.StateRoot{Info: txn.Info, Proof: p, LedgerInfo: li}, nil
}

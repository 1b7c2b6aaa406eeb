package ledgerdb

import "context"

// SetIngestedHook makes every SaveTransactions group call f between ingesting its
// tables and committing the rest; an error from f fails the group there. It returns a
// function that removes the hook.
func SetIngestedHook(f func(first uint64) error) (reset func()) {
	ingestedHook = f
	return func() { ingestedHook = nil }
}

// ScanTxnRecords calls fn with the stored record of every transaction in [first, end),
// as the table holds it (for benchmarks to compare reading records with reading
// transactions).
func (d *DB) ScanTxnRecords(ctx context.Context, first, end uint64, fn func(v uint64, rec []byte) error) error {
	return d.scanVersions(ctx, tableTxn, first, end, "transaction", fn)
}

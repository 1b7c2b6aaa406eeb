package ledgerdb

import (
	"context"
	"fmt"
)

// DebugMetrics returns Pebble's metrics report, for diagnostics.
func (d *DB) DebugMetrics() string { return d.pdb.Metrics().String() }

// Compact compacts the whole store, for example after a restore ingested many tables,
// so that reads afterwards do not pay for overlapping tables and no compaction debt
// competes with the next workload.
func (d *DB) Compact(ctx context.Context) error {
	if err := d.pdb.Compact(ctx, []byte{0}, []byte{0xff}, true); err != nil {
		return fmt.Errorf("compact ledger store: %w", err)
	}
	return nil
}

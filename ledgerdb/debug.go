package ledgerdb

// DebugMetrics returns Pebble's metrics report, for diagnostics.
func (d *DB) DebugMetrics() string { return d.pdb.Metrics().String() }

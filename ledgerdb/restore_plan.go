package ledgerdb

// RestoreStatus tells a resuming restore where a store stands.
type RestoreStatus struct {
	// NextVersion is the next version to save.
	NextVersion uint64
	// HasStateBase and StateBaseVersion tell whether a state snapshot restore finished,
	// and at which version.
	HasStateBase     bool
	StateBaseVersion uint64
	// AccumulatorSeeded is false after a state snapshot restore until SeedAccumulator
	// gives the store its accumulator frontier.
	AccumulatorSeeded bool
}

// RestoreStatus returns what a restore needs to resume on this store.
func (d *DB) RestoreStatus() RestoreStatus {
	st := d.state()
	return RestoreStatus{
		NextVersion:       st.NextVersion,
		HasStateBase:      st.HasStateBase,
		StateBaseVersion:  st.StateBaseVersion,
		AccumulatorSeeded: !st.AccumulatorMissing,
	}
}

package ledgerdb

// SetIngestedHook makes every SaveTransactions group call f between ingesting its
// tables and committing the rest; an error from f fails the group there. It returns a
// function that removes the hook.
func SetIngestedHook(f func(first uint64) error) (reset func()) {
	ingestedHook = f
	return func() { ingestedHook = nil }
}

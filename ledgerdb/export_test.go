package ledgerdb

// SetNodesIngestedHook makes every SaveTransactions step call f between ingesting its
// nodes and committing the rest; an error from f fails the step there. It returns a
// function that removes the hook.
func SetNodesIngestedHook(f func(first uint64) error) (reset func()) {
	nodesIngestedHook = f
	return func() { nodesIngestedHook = nil }
}

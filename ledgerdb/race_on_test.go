//go:build race

package ledgerdb_test

// raceEnabled reports whether the race detector is on; heavy tests shrink under it and
// scripts/test.sh runs them at full size in a separate pass without it.
const raceEnabled = true

//go:build !race

package txn

// raceEnabled reports a -race build, under which the property tests run fewer cases.
const raceEnabled = false

//go:build !race

package aptosverify_test

// raceEnabled reports a -race build, where the full 60000 transactions take too long.
const raceEnabled = false

//go:build !race

package backup_test

// raceEnabled reports a -race build (child processes of the test binary start slowly).
const raceEnabled = false

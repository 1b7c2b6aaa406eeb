//go:build race

package tamper

// raceEnabled is true under the race detector, whose instrumentation makes a full
// 4 GiB decompression take a minute.
const raceEnabled = true

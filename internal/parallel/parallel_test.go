package parallel

import (
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestForCoversEachIndexOnce checks that every index is visited exactly once, for
// sizes below, at and above the part size, and that no range is shorter than asked
// unless the whole loop is.
func TestForCoversEachIndexOnce(t *testing.T) {
	for _, n := range []int{0, 1, 4095, 4096, 8191, 8192, 8193, 100_000} {
		seen := make([]atomic.Int32, n)
		var short atomic.Int32
		For(n, 4096, func(lo, hi int) {
			if hi-lo < 4096 && hi-lo != n {
				short.Add(1)
			}
			for i := lo; i < hi; i++ {
				seen[i].Add(1)
			}
		})
		for i := range seen {
			if c := seen[i].Load(); c != 1 {
				t.Fatalf("n=%d: index %d visited %d times", n, i, c)
			}
		}
		if s := short.Load(); s > 1 {
			t.Fatalf("n=%d: %d ranges shorter than the part size", n, s)
		}
	}
}

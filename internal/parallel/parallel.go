// Package parallel splits CPU-bound loops over the processors.
package parallel

import (
	"runtime"
	"sync"
)

// For calls fn on consecutive ranges [lo, hi) that together cover [0, n), spread over
// up to GOMAXPROCS goroutines, each range at least minPart long: a loop shorter than
// two parts runs as one call on the calling goroutine. It returns when every call has
// returned. fn must be safe to run concurrently on disjoint ranges.
func For(n, minPart int, fn func(lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), n/max(minPart, 1))
	if parts < 2 {
		fn(0, n)
		return
	}
	var wg sync.WaitGroup
	step := (n + parts - 1) / parts
	for lo := step; lo < n; lo += step {
		wg.Go(func() { fn(lo, min(lo+step, n)) })
	}
	fn(0, step)
	wg.Wait()
}

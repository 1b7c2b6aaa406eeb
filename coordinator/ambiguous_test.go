package coordinator

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// TestMetadataCommitThenFail runs the coordinator over a store whose first
// transaction metadata line commits and then reports failure (and, in the second
// case, is run twice, as a client retrying its own committed attempt): the read-back
// takes the line for ours, so the coordinator counts no failure, goes on to back
// everything up, and no range is visible twice.
func TestMetadataCommitThenFail(t *testing.T) {
	n := newNode(t, 200, 0)
	for _, mode := range []storagetest.Mode{storagetest.FailAfter, storagetest.Duplicate} {
		t.Run(mode.String(), func(t *testing.T) {
			base, _ := localStore(t)
			var mu sync.Mutex
			fired := 0
			st := storagetest.NewFaultStore(base, func(c storagetest.Call) storagetest.Fault {
				mu.Lock()
				defer mu.Unlock()
				if c.Op != storagetest.OpSaveMetadata || fired > 0 || !strings.HasPrefix(c.Name, "transaction_") {
					return storagetest.Fault{}
				}
				fired++
				return storagetest.Fault{Mode: mode}
			})
			cfg := testConfig(n, st, "me")
			r := start(cfg)
			waitFor(t, 20*time.Second, "all backed up", func() bool {
				return gauge(cfg.Metrics.lastTransaction) == 199 && gauge(cfg.Metrics.lastEpochEnding) == 2 && gauge(cfg.Metrics.lastSnapshot) == 200
			})
			if err := r.stop(t); err != nil {
				t.Fatal(err)
			}
			mu.Lock()
			if fired != 1 {
				t.Fatalf("fault injected %d times", fired)
			}
			mu.Unlock()
			if f := gauge(cfg.Metrics.failures.WithLabelValues(KindTransaction, "transient")); f != 0 {
				t.Fatalf("%v transaction failures counted for a write that committed", f)
			}
			checkInventory(t, base, 200)
		})
	}
}

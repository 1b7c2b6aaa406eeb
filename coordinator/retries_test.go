package coordinator

import (
	"errors"
	"net"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// TestPollAndMetadataRetriesCounted: with metadata listings failing at first and
// the node unreachable, retries_total counts the metadata and poll retries that the
// logs announce (they were retried uncounted).
func TestPollAndMetadataRetriesCounted(t *testing.T) {
	// An address nothing listens on: every poll fails at once.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	svc, err := backupservice.New(addr, backupservice.ClientOptions{RequestTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	base, _ := localStore(t)
	// Fail metadata listings 3 to 5 (the lease's acquisition lists twice before the
	// coordinator reads metadata).
	st := storagetest.NewFaultStore(base, func(c storagetest.Call) storagetest.Fault {
		if c.Op == storagetest.OpListMetadata && c.N > 2 && c.N <= 5 {
			return storagetest.Fault{Mode: storagetest.FailBefore, Err: errors.New("listing refused")}
		}
		return storagetest.Fault{}
	})
	cfg := testConfig(&testNode{svc: svc}, st, "me")
	r := start(cfg)
	waitFor(t, 20*time.Second, "poll retries", func() bool {
		return gauge(cfg.Metrics.retries.WithLabelValues(KindPoll)) >= 3
	})
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{KindMetadata, KindPoll} {
		retries := gauge(cfg.Metrics.retries.WithLabelValues(k))
		failures := gauge(cfg.Metrics.failures.WithLabelValues(k, "transient"))
		// Every failure but possibly the last (stopped before its retry) was retried.
		if retries < 1 || retries > failures || retries < failures-1 {
			t.Fatalf("%s: %v retries for %v transient failures", k, retries, failures)
		}
	}
	if got := gauge(cfg.Metrics.failures.WithLabelValues(KindMetadata, "transient")); got != 3 {
		t.Fatalf("metadata failures %v, want 3", got)
	}
}

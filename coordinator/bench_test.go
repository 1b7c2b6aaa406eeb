package coordinator

import (
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/storage/local"
)

// BenchmarkCatchUp measures how fast a coordinator started on empty local storage
// backs up a node of 20,000 versions (20 epochs, 50,000 state items): epoch endings,
// one snapshot of the newest epoch, two transaction batches of 10,000. It reports
// versions per second of wall time, the lease and metadata round trips included.
func BenchmarkCatchUp(b *testing.B) {
	n := newNode(b, 20_000, 50_000)
	b.ResetTimer()
	for range b.N {
		st, err := local.New(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		cfg := Config{Service: n.svc, Store: st, PollInterval: 5 * time.Millisecond, StateSnapshotIntervalEpochs: 1,
			TransactionBatchSize: 10_000, Owner: "bench", Metrics: NewMetrics(),
			Backup: backup.Options{MaxChunkSize: 4 << 20}}
		r := start(cfg)
		for gauge(cfg.Metrics.lastTransaction) != 19_999 || gauge(cfg.Metrics.lastSnapshot) != 20_000 {
			time.Sleep(2 * time.Millisecond)
		}
		r.cancel()
		if err := <-r.done; err != nil {
			b.Fatal(err)
		}
		st.Close()
	}
	b.ReportMetric(float64(20_000*b.N)/b.Elapsed().Seconds(), "versions/s")
}

package compact_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/maintenance/compact"
	"github.com/ledgervault/ledgervault/storage/local"
)

// BenchmarkRun measures a compaction of n small metadata files into one on local
// storage, and the later run that deletes them. The files are laid out by hand
// between iterations (not timed).
func BenchmarkRun(b *testing.B) {
	for _, n := range []int{100, 1000, 10000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				root := b.TempDir()
				if err := os.MkdirAll(filepath.Join(root, "metadata"), 0o755); err != nil {
					b.Fatal(err)
				}
				for j := 0; j < n; j++ {
					if err := os.WriteFile(filepath.Join(root, "metadata", fmt.Sprintf("backup_%d.meta", j)), encode(b, meta(j)), 0o644); err != nil {
						b.Fatal(err)
					}
				}
				st, err := local.New(root)
				if err != nil {
					b.Fatal(err)
				}
				clk := &clock{t: time.Now()}
				o := compact.Options{Now: clk.Now}
				b.StartTimer()
				rep, err := compact.Run(ctx, st, o)
				if err != nil || rep.WrittenLines != n {
					b.Fatalf("%v %+v", err, rep)
				}
				clk.Add(2 * time.Hour)
				rep, err = compact.Run(ctx, st, o)
				if err != nil || len(rep.Deleted) != n {
					b.Fatalf("%v %+v", err, rep)
				}
			}
			b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "files/s")
		})
	}
}

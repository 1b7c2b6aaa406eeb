package gc_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/maintenance/gc"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

// BenchmarkRun measures a GC run on local storage holding n referenced backups (one
// metadata file each) and n unreferenced old folders, which it deletes. The store is
// laid out by hand between iterations (not timed).
func BenchmarkRun(b *testing.B) {
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			ctx := context.Background()
			old := time.Now().Add(-2 * time.Hour)
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				root := b.TempDir()
				if err := os.MkdirAll(filepath.Join(root, "metadata"), 0o755); err != nil {
					b.Fatal(err)
				}
				for j := 0; j < 2*n; j++ {
					dir := filepath.Join(root, fmt.Sprintf("transaction-%d-0123456789abcdef", j))
					if err := os.Mkdir(dir, 0o755); err != nil {
						b.Fatal(err)
					}
					for _, name := range []string{"chunk-0", "manifest.json"} {
						if err := os.WriteFile(filepath.Join(dir, name), make([]byte, 1024), 0o644); err != nil {
							b.Fatal(err)
						}
						os.Chtimes(filepath.Join(dir, name), old, old)
					}
					os.Chtimes(dir, old, old)
					if j%2 == 0 {
						m := line(b, uint64(j)*10, storage.FileHandle(fmt.Sprintf("transaction-%d-0123456789abcdef/manifest.json", j)))
						if err := os.WriteFile(filepath.Join(root, "metadata", fmt.Sprintf("transaction_%d.meta", j)), m, 0o644); err != nil {
							b.Fatal(err)
						}
					}
				}
				st, err := local.New(root)
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				rep, err := gc.Run(ctx, st, gc.Options{Grace: time.Hour, BatchSize: 64})
				if err != nil || rep.BackupsRemoved != n || rep.Referenced != n {
					b.Fatalf("%v %+v", err, rep)
				}
			}
			b.ReportMetric(float64(2*n)*float64(b.N)/b.Elapsed().Seconds(), "folders/s")
		})
	}
}

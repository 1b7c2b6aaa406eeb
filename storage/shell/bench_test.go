package shell_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// BenchmarkShellLocalSample runs samples/local.yaml (each write goes through a guard
// and a bash pipeline): go test -run XXX -bench . ./storage/shell
func BenchmarkShellLocalSample(b *testing.B) {
	storagetest.Benchmark(b, func(tb testing.TB) storage.Store {
		st, err := shell.New(localConfig(tb, tb.TempDir()))
		if err != nil {
			tb.Fatal(err)
		}
		return st
	})
}

// BenchmarkAbortToGone measures Abort of a running guarded write (1 MiB sent) until
// it returns, which is when the guard and every pipeline process have been reaped.
func BenchmarkAbortToGone(b *testing.B) {
	st, err := shell.New(localConfig(b, b.TempDir()))
	if err != nil {
		b.Fatal(err)
	}
	bk, err := st.CreateBackup(b.Context(), "abort")
	if err != nil {
		b.Fatal(err)
	}
	data := make([]byte, 1<<20)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		w, err := st.Create(b.Context(), bk, fmt.Sprintf("f-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := w.Write(data); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		if err := w.Abort(); err != nil {
			b.Fatal(err)
		}
		total += time.Since(start)
	}
	b.StopTimer()
	if pids, _ := proc.ChildProcesses(); len(pids) > 0 {
		b.Fatalf("children left: %s", proc.Describe(pids))
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-abort-to-gone/op")
}

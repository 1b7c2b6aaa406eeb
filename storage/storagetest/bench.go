package storagetest

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

const (
	benchFileSize = 32 << 20
	benchFiles    = 8 // 256 MiB per operation
)

// Benchmark measures write and read throughput of a store: 256 MiB in 32 MiB files
// per operation, reported as MB/s, with the peak heap growth and the peak RSS of the
// process during the run. A "Baseline" case writes the same bytes with fsynced
// os.File writes into a temporary folder, for comparison on the same machine.
func Benchmark(b *testing.B, newStore func(tb testing.TB) storage.Store) {
	block := make([]byte, 1<<20)
	rand.Read(block)
	b.Run("Baseline", func(b *testing.B) {
		dir := b.TempDir()
		b.SetBytes(benchFiles * benchFileSize)
		m := startMemProbe()
		for i := 0; i < b.N; i++ {
			for j := 0; j < benchFiles; j++ {
				f, err := os.Create(filepath.Join(dir, fmt.Sprintf("f-%d-%d", i, j)))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(f, blockReader(block, benchFileSize)); err != nil {
					b.Fatal(err)
				}
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
				f.Close()
			}
		}
		m.report(b)
	})
	b.Run("Write", func(b *testing.B) {
		st := newStore(b)
		defer st.Close()
		bk, err := st.CreateBackup(b.Context(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(benchFiles * benchFileSize)
		m := startMemProbe()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for j := 0; j < benchFiles; j++ {
				w, err := st.Create(b.Context(), bk, fmt.Sprintf("f-%d-%d", i, j))
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.CopyBuffer(w, blockReader(block, benchFileSize), make([]byte, 1<<20)); err != nil {
					w.Abort()
					b.Fatal(err)
				}
				if err := w.Commit(); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.StopTimer()
		m.report(b)
	})
	b.Run("Read", func(b *testing.B) {
		st := newStore(b)
		defer st.Close()
		bk, err := st.CreateBackup(b.Context(), "bench")
		if err != nil {
			b.Fatal(err)
		}
		var hs []storage.FileHandle
		for j := 0; j < benchFiles; j++ {
			w, err := st.Create(b.Context(), bk, fmt.Sprintf("f-%d", j))
			if err != nil {
				b.Fatal(err)
			}
			if _, err := io.Copy(w, blockReader(block, benchFileSize)); err != nil {
				b.Fatal(err)
			}
			if err := w.Commit(); err != nil {
				b.Fatal(err)
			}
			hs = append(hs, w.Handle())
		}
		b.SetBytes(benchFiles * benchFileSize)
		buf := make([]byte, 1<<20)
		m := startMemProbe()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			for _, h := range hs {
				r, err := st.Open(b.Context(), h)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, r, buf)
				r.Close()
				if err != nil || n != benchFileSize {
					b.Fatalf("read %s: %d bytes, %v", h, n, err)
				}
			}
		}
		b.StopTimer()
		m.report(b)
	})
}

// blockReader repeats block up to n bytes.
func blockReader(block []byte, n int64) io.Reader {
	readers := make([]io.Reader, 0, n/int64(len(block))+1)
	for left := n; left > 0; left -= int64(len(block)) {
		readers = append(readers, bytes.NewReader(block[:min(int64(len(block)), left)]))
	}
	return io.MultiReader(readers...)
}

// memProbe samples the heap while a benchmark runs and reads the RSS high-water mark.
type memProbe struct {
	base uint64
	peak atomic.Uint64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startMemProbe() *memProbe {
	// Reset the kernel's peak RSS counter (VmHWM) for this process.
	os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	m := &memProbe{base: ms.HeapAlloc, stop: make(chan struct{})}
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-t.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > m.peak.Load() {
					m.peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	return m
}

func (m *memProbe) report(b *testing.B) {
	close(m.stop)
	m.wg.Wait()
	growth := float64(0)
	if p := m.peak.Load(); p > m.base {
		growth = float64(p-m.base) / (1 << 20)
	}
	b.ReportMetric(growth, "peak-heap-MiB")
	if rss := vmHWM(); rss > 0 {
		b.ReportMetric(float64(rss)/(1<<20), "peak-RSS-MiB")
	}
}

// vmHWM reads the process's peak resident set size in bytes.
func vmHWM() int64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

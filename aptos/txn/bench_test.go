package txn

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha3"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/aptos"
)

// cpuTime returns the process's user plus system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// streamRSS is the peak RSS measured right after the first streaming pass.
var streamRSS float64

// peakRSSMiB returns the process's peak resident set size so far.
func peakRSSMiB(b *testing.B) float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return float64(ru.Maxrss) / 1024 // Linux reports KiB
}

// BenchmarkCorpus measures, in one run over the 60000 transactions of aptos-libra7:
// verify_gz (VerifyChunk streaming each gzip chunk file from disk, as verify does: the
// bounded-memory path, run first so its peak RSS is measured alone), decode (only
// DecodeRecord over the decompressed records, one goroutine: the baseline cost of
// decoding) and verify (VerifyChunk over the decompressed records in memory: decoding,
// hashing and the range proof, on all cores), and as a baseline measured in the same run
// one SHA3-256 over each whole record on one goroutine. It reports transactions per
// second of each, the CPU time per verified transaction (a figure that holds on a busy
// machine) and the peak RSS after the streaming pass and at the end.
func BenchmarkCorpus(b *testing.B) {
	root := corpusPath(b)
	chunks := corpusChunks(b)
	ctx := context.Background()
	opts := Options{LedgerInfo: acceptAll, Domain: aptos.DiemDomain}
	proofs := make([][]byte, len(chunks))
	for i, c := range chunks {
		proofs[i] = gunzip(b, filepath.Join(root, c.ProofName))
	}
	var n float64
	var gzTime, decTime, verTime time.Duration
	// Streaming from the gzip files.
	start := time.Now()
	for i := 0; i < b.N; i++ {
		for j, c := range chunks {
			f, err := os.Open(filepath.Join(root, c.Name))
			if err != nil {
				b.Fatal(err)
			}
			zr, err := gzip.NewReader(f)
			if err != nil {
				b.Fatal(err)
			}
			st, err := VerifyChunk(ctx, c, zr, proofs[j], opts)
			f.Close()
			if err != nil {
				b.Fatal(err)
			}
			if i == 0 {
				n += float64(st.Transactions)
			}
		}
	}
	gzTime = time.Since(start)
	// The first call (b.N = 1) streams before anything is loaded whole, so the peak RSS
	// right after it is the streaming path's alone.
	if streamRSS == 0 {
		streamRSS = peakRSSMiB(b)
	}

	data := make([][]byte, len(chunks))
	for i, c := range chunks {
		data[i] = gunzip(b, filepath.Join(root, c.Name))
	}
	b.ResetTimer()
	start = time.Now()
	for i := 0; i < b.N; i++ {
		for _, d := range data {
			fr := NewFrameReader(bytes.NewReader(d), 0)
			for {
				rec, err := fr.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				if _, err := DecodeRecord(rec); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	decTime = time.Since(start)

	start = time.Now()
	cpu0 := cpuTime(b)
	for i := 0; i < b.N; i++ {
		for j, c := range chunks {
			if _, err := VerifyChunk(ctx, c, bytes.NewReader(data[j]), proofs[j], opts); err != nil {
				b.Fatal(err)
			}
		}
	}
	verTime = time.Since(start)
	verCPU := cpuTime(b) - cpu0

	// Baseline: one SHA3-256 over each whole record on one goroutine, less work than
	// verifying does (which hashes every record's parts once, plus the accumulators).
	start = time.Now()
	for i := 0; i < b.N; i++ {
		for _, d := range data {
			fr := NewFrameReader(bytes.NewReader(d), 0)
			for {
				rec, err := fr.Next()
				if err != nil {
					break
				}
				sha3.Sum256(rec)
			}
		}
	}
	shaTime := time.Since(start)
	iters := float64(b.N)
	b.ReportMetric(n*iters/gzTime.Seconds(), "verify_gz_txn/s")
	b.ReportMetric(n*iters/decTime.Seconds(), "decode_txn/s")
	b.ReportMetric(n*iters/verTime.Seconds(), "verify_txn/s")
	// CPU time per verified transaction does not depend on how busy the machine is:
	// GOMAXPROCS free cores verify about GOMAXPROCS/cpu_us_per_txn million per second.
	b.ReportMetric(float64(verCPU.Microseconds())/(n*iters), "verify_cpu_us/txn")
	b.ReportMetric(n*iters/shaTime.Seconds(), "baseline_sha3_1core_txn/s")
	b.ReportMetric(streamRSS, "peak_rss_stream_MiB")
	b.ReportMetric(peakRSSMiB(b), "peak_rss_MiB")
}

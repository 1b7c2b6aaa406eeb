package state_test

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/state"
	"github.com/ledgervault/ledgervault/format/backupcli"
)

// BenchmarkSnapshot verifies a synthetic snapshot of 50,000 records in 10 chunks and
// reports keys verified per second, and, from the same run, the cost of decoding and
// hashing the records alone (no tree): decode-keys/s.
func BenchmarkSnapshot(b *testing.B) {
	h := state.NewHasher(aptos.DiemDomain)
	s := build(b, h, 50000, 5000, 1)
	b.ResetTimer()
	var verifyT, decodeT time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		if err := verify(h, s.Root, s.Chunks); err != nil {
			b.Fatal(err)
		}
		verifyT += time.Since(start)
		start = time.Now()
		d := state.NewDecoder(h)
		for _, c := range s.Chunks {
			it := backupcli.NewRecords(bytes.NewReader(c.Data), backupcli.RecordLimits{})
			for it.Next() {
				if _, err := d.DecodeRecord(it.Record()); err != nil {
					b.Fatal(err)
				}
			}
		}
		decodeT += time.Since(start)
	}
	keys := float64(50000 * b.N)
	b.ReportMetric(keys/verifyT.Seconds(), "keys/s")
	b.ReportMetric(keys/decodeT.Seconds(), "decode-keys/s")
}

// TestTreeMemoryFlat feeds a Tree 1,000 then 300,000 leaves generated on the fly (key
// hashes increasing by random steps) and checks that the live heap does not grow with
// them: the Tree keeps the last leaf and at most 256 left siblings.
func TestTreeMemoryFlat(t *testing.T) {
	h := state.NewHasher(aptos.AptosDomain)
	live := func(n int) uint64 {
		tr := state.NewTree(h, aptos.HashValue{})
		rng := rand.New(rand.NewPCG(uint64(n), 1))
		var key aptos.HashValue
		hi := uint64(0)
		for i := 0; i < n; i++ {
			hi += 1 + rng.Uint64N(1<<40)
			binary.BigEndian.PutUint64(key[:8], hi)
			binary.BigEndian.PutUint64(key[8:], rng.Uint64())
			if err := tr.Add(key, aptos.HashValue{byte(i)}); err != nil {
				t.Fatal(err)
			}
		}
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		runtime.KeepAlive(tr)
		return ms.HeapAlloc
	}
	small, large := live(1000), live(300000)
	if large > small+256<<10 {
		t.Fatalf("live heap %d bytes after 1,000 leaves, %d after 300,000", small, large)
	}
	t.Logf("live heap %d bytes after 1,000 leaves, %d after 300,000", small, large)
}

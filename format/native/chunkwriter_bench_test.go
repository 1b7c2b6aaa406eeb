package native_test

import (
	"context"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

// discardStore is a storage.Store whose writers drop bytes: the benchmark measures
// the chunk writer (framing, zstd, SHA-256), not a backend.
type discardStore struct{ storage.Store }

type discardWriter struct{ io.Writer }

func (discardWriter) Handle() storage.FileHandle { return "b/chunk" }
func (discardWriter) Commit() error              { return nil }
func (discardWriter) Abort() error               { return nil }

func (discardStore) Create(context.Context, storage.BackupHandle, string) (storage.Writer, error) {
	return discardWriter{io.Discard}, nil
}

// stateRecords returns n state item records like the devnet's (32-byte keys,
// 100-byte random values): 132-byte payloads.
func stateRecords(n int) [][]byte {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		k, v := make([]byte, 32), make([]byte, 100)
		for j := range k {
			k[j] = byte(rng.Uint32())
		}
		for j := range v {
			v[j] = byte(rng.Uint32() % 16) // compressible like account values
		}
		rec := make([]byte, records.KeyValueSize(k, v))
		records.PutKeyValue(rec, k, v)
		out[i] = rec
	}
	return out
}

// BenchmarkChunkWriter writes 64k state records per chunk through the chunk writer;
// the baseline does the same framing, zstd and SHA-256 without it.
func BenchmarkChunkWriter(b *testing.B) {
	recs := stateRecords(1 << 16)
	var raw int64
	for _, r := range recs {
		raw += int64(4 + len(r))
	}
	b.Run("chunk-writer", func(b *testing.B) {
		o := native.ChunkOptions{}
		st := discardStore{}
		b.SetBytes(raw)
		b.ReportAllocs()
		for b.Loop() {
			cw, err := native.CreateChunk(context.Background(), st, "b", "chunk", o)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range recs {
				if err := cw.WriteRecord(r); err != nil {
					b.Fatal(err)
				}
			}
			var stats native.WriteStats
			if _, err := cw.Commit(&stats); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("baseline-records-zstd-sha256", func(b *testing.B) {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
		if err != nil {
			b.Fatal(err)
		}
		b.SetBytes(raw)
		for b.Loop() {
			h := sha256.New()
			enc.Reset(h)
			rw := records.NewWriterSize(enc, 256<<10)
			for _, r := range recs {
				rw.WriteRecord(r)
			}
			rw.Close()
			enc.Close()
			h.Sum(nil)
		}
	})
}

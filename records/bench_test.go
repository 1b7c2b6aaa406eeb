package records

import (
	"bytes"
	"io"
	"testing"
)

// BenchmarkWrite and BenchmarkRead measure the framing of 132-byte records (the state
// snapshot record size the design targets, ~1.8M records/s end to end); the copy
// baseline is a plain memmove of the same bytes.
func BenchmarkWrite(b *testing.B) {
	rec := bytes.Repeat([]byte{7}, 132)
	b.SetBytes(int64(len(rec)))
	w := NewWriter(io.Discard)
	b.ReportAllocs()
	for b.Loop() {
		if err := w.WriteRecord(rec); err != nil {
			b.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkRead(b *testing.B) {
	rec := bytes.Repeat([]byte{7}, 132)
	const n = 100_000
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for range n {
		_ = w.WriteRecord(rec)
	}
	_ = w.Close()
	data := buf.Bytes()
	b.SetBytes(int64(len(rec)) * n)
	b.ReportAllocs()
	for b.Loop() {
		r := NewReader(bytes.NewReader(data), 0)
		for r.Next() {
		}
		if r.Err() != nil {
			b.Fatal(r.Err())
		}
	}
	b.ReportMetric(float64(b.N)*n/b.Elapsed().Seconds(), "records/s")
}

func BenchmarkCopyBaseline(b *testing.B) {
	data := make([]byte, 136*100_000)
	dst := make([]byte, len(data))
	b.SetBytes(132 * 100_000)
	for b.Loop() {
		copy(dst, data)
	}
}

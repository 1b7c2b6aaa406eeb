package native_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

// scan decodes the stored bytes of a chunk that no manifest describes.
func scan(t testing.TB, data []byte, lim native.Limits) (native.File, [][]byte, error) {
	var got [][]byte
	f, err := native.ScanChunk(context.Background(), bytes.NewReader(data), "b/c.zst", lim, func(rec []byte) error {
		got = append(got, bytes.Clone(rec))
		return nil
	})
	return f, got, err
}

// TestScanChunkDescribesWhatTheWriterWrote checks that a chunk read without its
// manifest entry is described exactly as the writer described it (size, raw size,
// SHA-256), with the same records.
func TestScanChunkDescribesWhatTheWriterWrote(t *testing.T) {
	fx := newFixture(t)
	recs := sampleRecords(3000)
	want := fx.writeChunk(t, "c.zst", recs)
	data, err := os.ReadFile(filepath.Join(fx.root, filepath.FromSlash(string(want.Handle))))
	if err != nil {
		t.Fatal(err)
	}
	f, err := native.ScanChunk(context.Background(), bytes.NewReader(data), want.Handle, native.Limits{}, func(rec []byte) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	if f != want {
		t.Fatalf("described as %+v, the writer said %+v", f, want)
	}
	_, got2, err := scan(t, data, native.Limits{})
	if err != nil || len(got2) != len(recs) {
		t.Fatalf("%d records, want %d: %v", len(got2), len(recs), err)
	}
	for i := range recs {
		if !bytes.Equal(got2[i], recs[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
}

func TestScanChunkRejects(t *testing.T) {
	fx := newFixture(t)
	good := fx.writeChunk(t, "c.zst", sampleRecords(200))
	data, err := os.ReadFile(filepath.Join(fx.root, filepath.FromSlash(string(good.Handle))))
	if err != nil {
		t.Fatal(err)
	}
	t.Run("truncated", func(t *testing.T) {
		_, _, err := scan(t, data[:len(data)-3], native.Limits{})
		expectErr(t, err, nil, "b/c.zst")
	})
	t.Run("data after the frame", func(t *testing.T) {
		_, _, err := scan(t, append(bytes.Clone(data), 1, 2, 3), native.Limits{})
		expectErr(t, err, nil, "b/c.zst")
	})
	t.Run("stored size above the limit", func(t *testing.T) {
		_, _, err := scan(t, data, native.Limits{MaxStoredSize: int64(len(data)) - 1})
		expectErr(t, err, native.ErrTooLarge, "b/c.zst", "limit")
	})
	t.Run("raw size above the limit", func(t *testing.T) {
		_, _, err := scan(t, data, native.Limits{MaxRawSize: good.RawSize - 1})
		expectErr(t, err, native.ErrTooLarge, "b/c.zst", "decompresses to more than")
	})
	t.Run("record above the limit", func(t *testing.T) {
		_, _, err := scan(t, compress(t, framed(bytes.Repeat([]byte("y"), 5000))), native.Limits{MaxRecord: 4096})
		expectErr(t, err, nil, "b/c.zst", "record too large")
	})
	t.Run("no trailer", func(t *testing.T) {
		_, _, err := scan(t, compress(t, framed([]byte("a"), []byte("b"))), native.Limits{})
		expectErr(t, err, nil, "b/c.zst", "truncated")
	})
	t.Run("callback error", func(t *testing.T) {
		_, err := native.ScanChunk(context.Background(), bytes.NewReader(data), "b/c.zst", native.Limits{}, func([]byte) error { return fmt.Errorf("boom") })
		expectErr(t, err, nil, "b/c.zst", "record 0", "boom")
	})
	t.Run("zstd bomb", func(t *testing.T) {
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
		if err != nil {
			t.Fatal(err)
		}
		defer enc.Close()
		bomb := enc.EncodeAll(make([]byte, 64<<20), nil)
		_, _, err = scan(t, bomb, native.Limits{MaxRawSize: 1 << 20})
		expectErr(t, err, native.ErrTooLarge, "decompresses to more than")
	})
	t.Run("cancelled", func(t *testing.T) {
		big := fx.writeChunk(t, "big.zst", sampleRecords(5000))
		b, err := os.ReadFile(filepath.Join(fx.root, filepath.FromSlash(string(big.Handle))))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = native.ScanChunk(ctx, bytes.NewReader(b), big.Handle, native.Limits{}, func([]byte) error { return nil })
		expectErr(t, err, context.Canceled)
	})
}

// FuzzScanChunk feeds arbitrary bytes to the decoder of chunks no manifest describes:
// it must return an error or a description of exactly its input, never panic, and
// never hand out records above the limit or more bytes than the raw size it reports.
func FuzzScanChunk(f *testing.F) {
	fx := newFixture(f)
	for i, n := range []int{0, 1, 7, 300} {
		fd := fx.writeChunk(f, "seed"+string(rune('a'+i))+".zst", sampleRecords(n))
		stored, err := native.ReadFile(context.Background(), fx.st, fd, 1<<30)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(stored)
		f.Add(stored[:len(stored)/2])
	}
	f.Add(compress(f, framed([]byte("x"))))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, stored []byte) {
		var total int64
		d, err := native.ScanChunk(context.Background(), bytes.NewReader(stored), storage.FileHandle("x/c.zst"),
			native.Limits{MaxRawSize: 1 << 20, MaxRecord: 1 << 16, MaxWindow: 1 << 20}, func(rec []byte) error {
				total += int64(len(rec)) + 4
				if len(rec) > 1<<16 {
					t.Fatalf("record of %d bytes above the limit", len(rec))
				}
				return nil
			})
		if err != nil {
			return
		}
		if d.Size != int64(len(stored)) || total+16 != d.RawSize || d.RawSize > 1<<20 {
			t.Fatalf("described %+v for %d stored bytes and %d bytes of records", d, len(stored), total)
		}
	})
}

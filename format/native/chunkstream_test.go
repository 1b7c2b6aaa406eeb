package native_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

func streamAll(fx *fixture, f native.File, lim native.Limits) ([][]byte, int64, error) {
	var got [][]byte
	n, err := native.StreamChunk(context.Background(), fx.st, f, lim, func(rec []byte) error {
		got = append(got, append([]byte(nil), rec...))
		return nil
	})
	return got, n, err
}

// TestStreamChunkReadsWhatReadChunkReads: the same records and stored size, for chunks
// of every shape the writer makes.
func TestStreamChunkReadsWhatReadChunkReads(t *testing.T) {
	fx := newFixture(t)
	for _, n := range []int{0, 1, 7, 300, 20000} {
		recs := sampleRecords(n)
		f := fx.writeChunk(t, "c"+string(rune('a'+n%26))+".zst", recs)
		got, stored, err := streamAll(fx, f, native.Limits{})
		if err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		if stored != f.Size {
			t.Fatalf("%d records: stored %d bytes, the file has %d", n, stored, f.Size)
		}
		if len(got) != len(recs) {
			t.Fatalf("%d records: got %d", n, len(got))
		}
		for i := range recs {
			if !bytes.Equal(got[i], recs[i]) {
				t.Fatalf("%d records: record %d differs", n, i)
			}
		}
	}
}

// TestStreamChunkRefusesChangedFiles: any change to the stored bytes is a mismatch
// with the manifest, wherever it is and whatever the decoder made of it first.
func TestStreamChunkRefusesChangedFiles(t *testing.T) {
	fx := newFixture(t)
	f := fx.writeChunk(t, "c.zst", sampleRecords(3000))
	path := filepath.Join(fx.root, filepath.FromSlash(string(f.Handle)))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	write := func(d []byte) {
		if err := os.WriteFile(path, d, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, pos := range []int{0, 3, 5, 17, len(data) / 3, len(data) / 2, len(data) - 5, len(data) - 1} {
		d := bytes.Clone(data)
		d[pos] ^= 0x10
		write(d)
		_, _, err := streamAll(fx, f, native.Limits{})
		expectErr(t, err, native.ErrMismatch, string(f.Handle), "SHA-256")
	}
	write(data[:len(data)-3])
	_, _, err = streamAll(fx, f, native.Limits{})
	expectErr(t, err, native.ErrMismatch, string(f.Handle), "truncated")
	write(append(bytes.Clone(data), 0))
	_, _, err = streamAll(fx, f, native.Limits{})
	expectErr(t, err, native.ErrMismatch, string(f.Handle), "larger")
	write(data)

	g := f
	g.RawSize++
	_, _, err = streamAll(fx, g, native.Limits{})
	expectErr(t, err, native.ErrMismatch, "decompresses to")
	g.RawSize -= 2
	_, _, err = streamAll(fx, g, native.Limits{})
	expectErr(t, err, native.ErrTooLarge, "decompresses to more than")
	g = f
	g.Size = 1 << 40
	_, _, err = streamAll(fx, g, native.Limits{})
	expectErr(t, err, native.ErrTooLarge, string(f.Handle))
	g = f
	g.Handle = "../x"
	_, _, err = streamAll(fx, g, native.Limits{})
	expectErr(t, err, storage.ErrInvalidName)

	// An intact file: the caller's error comes back as it is.
	stop := errors.New("caller stops")
	_, err = native.StreamChunk(context.Background(), fx.st, f, native.Limits{}, func([]byte) error { return stop })
	if !errors.Is(err, stop) || errors.Is(err, native.ErrMismatch) {
		t.Fatalf("error %v, want the caller's", err)
	}
	// A changed file: the mismatch, not the caller's refusal of what it was handed.
	d := bytes.Clone(data)
	d[len(d)/2] ^= 1
	write(d)
	_, err = native.StreamChunk(context.Background(), fx.st, f, native.Limits{}, func([]byte) error { return stop })
	expectErr(t, err, native.ErrMismatch, "SHA-256")
}

// TestStreamChunkCancel: a cancelled read returns the context's error.
func TestStreamChunkCancel(t *testing.T) {
	fx := newFixture(t)
	f := fx.writeChunk(t, "c.zst", sampleRecords(5000))
	ctx, cancel := context.WithCancel(context.Background())
	n := 0
	_, err := native.StreamChunk(ctx, fx.st, f, native.Limits{}, func([]byte) error {
		if n++; n == 10 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// memOpener serves one file from memory.
type memOpener struct{ b []byte }

func (m memOpener) Open(context.Context, storage.FileHandle) (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(m.b)), nil
}

// FuzzStreamChunk: StreamChunk accepts exactly what ReadChunk accepts, with the same
// records, and a file changed after its description was taken is a mismatch.
func FuzzStreamChunk(f *testing.F) {
	ctx := context.Background()
	for _, c := range seedChunks(f) {
		f.Add(c.stored, c.raw, uint16(0))
		f.Add(c.stored, c.raw, uint16(len(c.stored)/2+1))
	}
	f.Add(compress(f, framed([]byte("x"))), int64(5), uint16(0))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, int64(0), uint16(2))
	f.Fuzz(func(t *testing.T, stored []byte, raw int64, flip uint16) {
		fd := native.File{Handle: "x/c.zst", Size: int64(len(stored)), RawSize: raw, SHA256: sha256.Sum256(stored)}
		changed := flip > 0 && len(stored) > 0
		if changed {
			stored = bytes.Clone(stored)
			stored[int(flip)%len(stored)] ^= 0x40
		}
		lim := native.Limits{MaxRawSize: 1 << 20, MaxRecord: 1 << 16, MaxWindow: 1 << 20}
		st := memOpener{stored}
		var want, got [][]byte
		_, werr := native.ReadChunk(ctx, st, fd, lim, func(rec []byte) error { want = append(want, bytes.Clone(rec)); return nil })
		n, gerr := native.StreamChunk(ctx, st, fd, lim, func(rec []byte) error { got = append(got, bytes.Clone(rec)); return nil })
		if (werr == nil) != (gerr == nil) {
			t.Fatalf("ReadChunk: %v, StreamChunk: %v", werr, gerr)
		}
		if changed && raw >= 0 && raw <= lim.MaxRawSize && !errors.Is(gerr, native.ErrMismatch) {
			t.Fatalf("changed file: %v, want a mismatch", gerr)
		}
		if gerr != nil {
			return
		}
		if n != int64(len(stored)) || len(got) != len(want) {
			t.Fatalf("stored %d of %d bytes, %d records of %d", n, len(stored), len(got), len(want))
		}
		for i := range want {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("record %d differs", i)
			}
		}
	})
}

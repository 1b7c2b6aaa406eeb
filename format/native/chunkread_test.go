package native_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type fixture struct {
	st   storage.Store
	root string
	b    storage.BackupHandle
}

func newFixture(t testing.TB) *fixture {
	root := t.TempDir()
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b, err := st.CreateBackup(context.Background(), "test")
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{st: st, root: root, b: b}
}

// writeChunk writes records as a real chunk through the backup package's writer.
func (fx *fixture) writeChunk(t testing.TB, name string, recs [][]byte) native.File {
	t.Helper()
	cw, err := native.CreateChunk(context.Background(), fx.st, fx.b, name, native.ChunkOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer cw.Abort()
	for _, r := range recs {
		if err := cw.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	f, err := cw.Commit(new(native.WriteStats))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// writeRaw stores arbitrary bytes as a file and returns a matching description.
func (fx *fixture) writeRaw(t testing.TB, name string, data []byte, rawSize int64) native.File {
	t.Helper()
	w, err := fx.st.Create(context.Background(), fx.b, name)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	return native.File{Handle: w.Handle(), Size: int64(len(data)), RawSize: rawSize, SHA256: sha256.Sum256(data)}
}

func sampleRecords(n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "record-%06d-%s", i, strings.Repeat("x", i%50))
	}
	return out
}

func readAll(t testing.TB, fx *fixture, f native.File, lim native.Limits) ([][]byte, error) {
	var got [][]byte
	_, err := native.ReadChunk(context.Background(), fx.st, f, lim, func(rec []byte) error {
		got = append(got, append([]byte(nil), rec...))
		return nil
	})
	return got, err
}

func TestRoundTrip(t *testing.T) {
	fx := newFixture(t)
	recs := sampleRecords(5000)
	f := fx.writeChunk(t, "c.zst", recs)
	got, err := readAll(t, fx, f, native.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d", len(got), len(recs))
	}
	for i := range recs {
		if !bytes.Equal(got[i], recs[i]) {
			t.Fatalf("record %d differs", i)
		}
	}
}

func expectErr(t *testing.T, err error, target error, words ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	if target != nil && !errors.Is(err, target) {
		t.Fatalf("error %v is not %v", err, target)
	}
	for _, w := range words {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q does not mention %q", err, w)
		}
	}
}

func TestTamperedStoredBytes(t *testing.T) {
	fx := newFixture(t)
	f := fx.writeChunk(t, "c.zst", sampleRecords(100))
	path := filepath.Join(fx.root, filepath.FromSlash(string(f.Handle)))
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("bit flip", func(t *testing.T) {
		d := bytes.Clone(data)
		d[len(d)/2] ^= 1
		if err := os.WriteFile(path, d, 0o644); err != nil {
			t.Fatal(err)
		}
		calls := 0
		_, err := native.ReadChunk(context.Background(), fx.st, f, native.Limits{}, func([]byte) error { calls++; return nil })
		expectErr(t, err, native.ErrMismatch, string(f.Handle), "SHA-256")
		if calls != 0 {
			t.Fatalf("%d records handed out before the hash check", calls)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		if err := os.WriteFile(path, data[:len(data)-3], 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readAll(t, fx, f, native.Limits{})
		expectErr(t, err, native.ErrMismatch, string(f.Handle), "truncated")
	})
	t.Run("longer", func(t *testing.T) {
		if err := os.WriteFile(path, append(bytes.Clone(data), 0), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := readAll(t, fx, f, native.Limits{})
		expectErr(t, err, native.ErrMismatch, string(f.Handle), "larger")
	})
	t.Run("bad handle", func(t *testing.T) {
		for _, h := range []string{"../x", "/etc/passwd", "a/../../b"} {
			g := f
			g.Handle = storage.FileHandle(h)
			_, err := readAll(t, fx, g, native.Limits{})
			expectErr(t, err, storage.ErrInvalidName, h)
		}
	})
	t.Run("oversized manifest size", func(t *testing.T) {
		g := f
		g.Size = 1 << 40
		_, err := readAll(t, fx, g, native.Limits{})
		expectErr(t, err, native.ErrTooLarge, string(f.Handle))
	})
}

func compress(t testing.TB, raw []byte) []byte {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer enc.Close()
	return enc.EncodeAll(raw, nil)
}

func framed(recs ...[]byte) []byte {
	var buf bytes.Buffer
	for _, r := range recs {
		buf.Write(binary.BigEndian.AppendUint32(nil, uint32(len(r))))
		buf.Write(r)
	}
	return buf.Bytes()
}

func TestZstdBomb(t *testing.T) {
	fx := newFixture(t)
	// 1 GiB of zeros compresses to a few tens of KiB; streaming it would take GBs
	// of output.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderConcurrency(1), zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	enc.Reset(&bomb)
	zeros := make([]byte, 1<<20)
	for i := 0; i < 1024; i++ {
		if _, err := enc.Write(zeros); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	f := fx.writeRaw(t, "bomb.zst", bomb.Bytes(), 1<<20)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = readAll(t, fx, f, native.Limits{})
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	expectErr(t, err, native.ErrTooLarge, "bomb.zst", "decompresses to more than")
	if grown := after.TotalAlloc - before.TotalAlloc; grown > 256<<20 {
		t.Fatalf("decoding the bomb allocated %d MiB", grown>>20)
	}
	// A manifest that claims a huge raw size is refused by the limit.
	f.RawSize = 1 << 40
	_, err = readAll(t, fx, f, native.Limits{})
	expectErr(t, err, native.ErrTooLarge, "bomb.zst")
}

func TestBadFraming(t *testing.T) {
	fx := newFixture(t)
	cases := []struct {
		name string
		raw  []byte
		want string
	}{
		{"length prefix 2^32-2", append(framed([]byte("ok")), 0xFF, 0xFF, 0xFF, 0xFE, 1, 2, 3), "length prefix"},
		{"length prefix 2^32-1 without a trailer", append(framed([]byte("ok")), 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3), "trailer"},
		{"no trailer", framed([]byte("a"), []byte("b")), "truncated"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stored := compress(t, c.raw)
			f := fx.writeRaw(t, fmt.Sprintf("f%d.zst", i), stored, int64(len(c.raw)))
			_, err := readAll(t, fx, f, native.Limits{})
			expectErr(t, err, nil, string(f.Handle), c.want)
		})
	}
	t.Run("raw size differs", func(t *testing.T) {
		good := fx.writeChunk(t, "good.zst", sampleRecords(10))
		good.RawSize++
		_, err := readAll(t, fx, good, native.Limits{})
		expectErr(t, err, native.ErrMismatch, "decompresses to")
	})
	t.Run("not zstd", func(t *testing.T) {
		f := fx.writeRaw(t, "plain", []byte("this is not a zstd frame at all"), 31)
		_, err := readAll(t, fx, f, native.Limits{})
		expectErr(t, err, nil, "plain")
	})
	t.Run("record above the limit", func(t *testing.T) {
		f := fx.writeChunk(t, "big.zst", [][]byte{bytes.Repeat([]byte("y"), 5000)})
		_, err := readAll(t, fx, f, native.Limits{MaxRecord: 4096})
		expectErr(t, err, nil, "big.zst", "record too large")
	})
	t.Run("callback error", func(t *testing.T) {
		f := fx.writeChunk(t, "cb.zst", sampleRecords(3))
		boom := errors.New("boom")
		_, err := native.ReadChunk(context.Background(), fx.st, f, native.Limits{}, func([]byte) error { return boom })
		expectErr(t, err, boom, "cb.zst", "record 0")
	})
}

func TestReadManifestLimits(t *testing.T) {
	fx := newFixture(t)
	f := fx.writeRaw(t, "manifest.json", []byte(`{}`), 2)
	b, err := native.ReadManifest(context.Background(), fx.st, f.Handle)
	if err != nil || string(b) != "{}" {
		t.Fatalf("%q %v", b, err)
	}
	_, err = native.ReadManifest(context.Background(), fx.st, "../manifest.json")
	expectErr(t, err, storage.ErrInvalidName, "../manifest.json")
}

package backupcli_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/format/backupcli"
)

// seedFiles adds real corpus files matching glob (relative to each store root),
// without their gzip layer, at most max of them.
func seedFiles(f *testing.F, glob string, max int) {
	n := 0
	for _, root := range stores(f) {
		ps, _ := filepath.Glob(filepath.Join(root, glob))
		for _, p := range ps {
			if n >= max {
				return
			}
			if fi, err := os.Stat(p); err != nil || fi.Size() > 64<<10 {
				continue
			}
			f.Add(plain(f, p))
			n++
		}
	}
	if n == 0 {
		f.Fatalf("no corpus file matches %s", glob)
	}
}

func FuzzDecodeMetadataFile(f *testing.F) {
	seedFiles(f, "metadata/*", 40)
	f.Add([]byte(`{"CompactionTimestamps":{"file_compacted_at":1,"compaction_timestamps":{"metadata/a.meta":null}}}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := backupcli.DecodeMetadataFile("metadata/f.meta", b)
		if err != nil {
			var me *backupcli.MetadataError
			if !errors.As(err, &me) || !strings.Contains(err.Error(), "metadata/f.meta") {
				t.Fatalf("error does not name the file: %v", err)
			}
			return
		}
		for _, m := range ms {
			if m.Kind == "" {
				t.Fatal("line without a kind")
			}
			// What decodes re-encodes and decodes to the same.
			enc, err := m.MarshalJSON()
			if err != nil {
				t.Fatal(err)
			}
			again, err := backupcli.DecodeMetadataLine(enc)
			if err != nil || again.Kind != m.Kind || again.ManifestHandle() != m.ManifestHandle() {
				t.Fatalf("re-decode %s: %v", enc, err)
			}
		}
		backupcli.NewView([]backupcli.MetadataFile{{Handle: "metadata/f.meta", Lines: ms}})
		backupcli.Detect(b)
	})
}

func fuzzManifest(f *testing.F, typ, glob string) {
	seedFiles(f, glob, 20)
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := backupcli.DecodeManifest(typ, b)
		if err != nil {
			if !errors.Is(err, backupcli.ErrInvalid) {
				t.Fatalf("error not ErrInvalid: %v", err)
			}
			return
		}
		if err := m.Verify(); err == nil {
			if len(m.Files()) == 0 {
				t.Fatal("a verified manifest references no file")
			}
		}
		m.CheckAgainst(&backupcli.Backup{Type: typ})
	})
}

func FuzzDecodeManifestEpochEnding(f *testing.F) {
	fuzzManifest(f, backupcli.TypeEpochEnding, "epoch_ending_*/epoch_ending.manifest")
}

func FuzzDecodeManifestStateSnapshot(f *testing.F) {
	fuzzManifest(f, backupcli.TypeStateSnapshot, "state_*/state.manifest")
}

func FuzzDecodeManifestTransaction(f *testing.F) {
	fuzzManifest(f, backupcli.TypeTransaction, "transaction_*/transaction.manifest")
}

// FuzzRecords feeds chunk bytes, plain or gzip-wrapped (the real aptos-libra7 chunks
// are), through the gzip layer, the framing and the content checks: never a panic,
// errors of the known kinds, and a clean end only when the framing consumed the
// decompressed input exactly.
func FuzzRecords(f *testing.F) {
	seedFiles(f, "epoch_ending_*/*.chunk", 10)
	seedFiles(f, "transaction_*/*.chunk", 4)
	for _, root := range stores(f) { // gzip-wrapped chunks as stored, whole and cut
		ps, _ := filepath.Glob(filepath.Join(root, "epoch_ending_1*/*.chunk"))
		for _, p := range ps[:min(3, len(ps))] {
			if b, err := os.ReadFile(p); err == nil && backupcli.IsGzip(b) {
				f.Add(b)
				f.Add(b[:len(b)-5])
			}
		}
	}
	f.Add([]byte{0, 0, 0, 1, 7})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, _, err := backupcli.Decompress(bytes.NewReader(b), 1<<20)
		if err != nil {
			if !backupcli.IsDecodeError(err) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		cr := &countReader{r: r}
		it := backupcli.NewRecords(cr, backupcli.RecordLimits{MaxRecordSize: 1 << 16, MaxRecords: 1 << 12})
		var total int64
		for it.Next() {
			total += 4 + int64(len(it.Record()))
			backupcli.DecodeLedgerInfoHeader(it.Record())
			backupcli.StateRecordKey(it.Record())
		}
		err = it.Err()
		if err == nil && total != cr.n {
			t.Fatalf("clean end after %d of %d bytes", total, cr.n)
		}
		if err != nil && !backupcli.IsDecodeError(err) {
			t.Fatalf("unclassified error %v", err)
		}
		backupcli.CheckStateChunk(bytes.NewReader(b), backupcli.StateSnapshotChunk{LastIdx: 3}, backupcli.RecordLimits{MaxRecordSize: 1 << 16})
		backupcli.CheckEpochEndingChunk(bytes.NewReader(b), backupcli.EpochEndingChunk{LastEpoch: 1}, 0, nil, backupcli.RecordLimits{MaxRecordSize: 1 << 16})
	})
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestRecordsPartialAndLimits(t *testing.T) {
	rec := func(n int) []byte {
		b := binary.BigEndian.AppendUint32(nil, uint32(n))
		return append(b, bytes.Repeat([]byte{7}, n)...)
	}
	two := append(rec(3), rec(5)...)
	for cut := 1; cut < len(two); cut++ {
		it := backupcli.NewRecords(bytes.NewReader(two[:cut]), backupcli.RecordLimits{})
		for it.Next() {
		}
		if cut == len(rec(3)) {
			if it.Err() != nil || it.Count() != 1 {
				t.Fatalf("cut at a record boundary: %v", it.Err())
			}
			continue
		}
		if !errors.Is(it.Err(), backupcli.ErrPartial) {
			t.Fatalf("cut at %d: %v", cut, it.Err())
		}
	}
	it := backupcli.NewRecords(bytes.NewReader(two), backupcli.RecordLimits{MaxRecordSize: 4})
	for it.Next() {
	}
	if !errors.Is(it.Err(), backupcli.ErrTooLarge) || it.Count() != 1 {
		t.Fatalf("record over the size limit: %v after %d", it.Err(), it.Count())
	}
	it = backupcli.NewRecords(bytes.NewReader(two), backupcli.RecordLimits{MaxRecords: 1})
	for it.Next() {
	}
	if !errors.Is(it.Err(), backupcli.ErrTooLarge) {
		t.Fatalf("records over the count limit: %v", it.Err())
	}
}

func TestGzipLayer(t *testing.T) {
	payload := bytes.Repeat([]byte("ledger "), 10000)
	var one, two bytes.Buffer
	zw := gzip.NewWriter(&one)
	zw.Write(payload)
	zw.Close()
	two.Write(one.Bytes())
	two.Write(one.Bytes())
	read := func(b []byte, max int64) ([]byte, bool, error) {
		r, gz, err := backupcli.Decompress(bytes.NewReader(b), max)
		if err != nil {
			return nil, gz, err
		}
		out, err := io.ReadAll(r)
		return out, gz, err
	}
	if out, gz, err := read(two.Bytes(), 0); err != nil || !gz || !bytes.Equal(out, append(append([]byte{}, payload...), payload...)) {
		t.Fatalf("two members: %d bytes, %v, %v", len(out), gz, err)
	}
	if out, gz, err := read(payload, 0); err != nil || gz || !bytes.Equal(out, payload) {
		t.Fatalf("plain: %v %v", gz, err)
	}
	if _, _, err := read(two.Bytes(), int64(len(payload))+10); !errors.Is(err, backupcli.ErrTooLarge) {
		t.Fatalf("cap: %v", err)
	}
	full := one.Bytes()
	for _, cut := range []int{2, 5, 10, len(full) / 2, len(full) - 8, len(full) - 1, len(full) + 3} {
		b := full[:min(cut, len(full))]
		if cut > len(full) {
			b = append(append([]byte{}, full...), full[:3]...) // a second member cut inside its header
		}
		if _, _, err := read(b, 0); !errors.Is(err, backupcli.ErrPartial) {
			t.Errorf("cut at %d: %v", cut, err)
		}
	}
	bad := append([]byte{}, full...)
	bad[len(bad)-6] ^= 1 // inside the CRC
	if _, _, err := read(bad, 0); !errors.Is(err, backupcli.ErrCorrupt) {
		t.Errorf("flipped CRC: %v", err)
	}
	garbage := append(append([]byte{}, full...), 'x', 'y', 'z')
	if _, _, err := read(garbage, 0); !errors.Is(err, backupcli.ErrCorrupt) && !errors.Is(err, backupcli.ErrPartial) {
		t.Errorf("trailing garbage: %v", err)
	}
}

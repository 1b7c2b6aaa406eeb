package native_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"testing"

	"github.com/ledgervault/ledgervault/format/native"
)

// seedChunk is a chunk file the writer wrote, as a fuzz seed.
type seedChunk struct {
	stored []byte
	raw    int64
}

// seedChunks writes chunks of 0, 1, 7 and 300 records and returns their stored bytes
// and raw sizes.
func seedChunks(f *testing.F) []seedChunk {
	fx := newFixture(f)
	var out []seedChunk
	for i, n := range []int{0, 1, 7, 300} {
		fd := fx.writeChunk(f, "seed"+string(rune('a'+i))+".zst", sampleRecords(n))
		stored, err := native.ReadFile(context.Background(), fx.st, fd, 1<<30)
		if err != nil {
			f.Fatal(err)
		}
		out = append(out, seedChunk{stored, fd.RawSize})
	}
	return out
}

// FuzzDecodeChunk feeds arbitrary stored bytes and raw sizes to the chunk decoder: it
// must return an error or records, never panic, and never hand out more than the
// declared raw size.
func FuzzDecodeChunk(f *testing.F) {
	for _, c := range seedChunks(f) {
		f.Add(c.stored, c.raw)
	}
	f.Add(compress(f, framed([]byte("x"))), int64(5))
	f.Add(compress(f, append(framed([]byte("ok")), 0xFF, 0xFF, 0xFF, 0xFE)), int64(10))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd}, int64(0))
	f.Fuzz(func(t *testing.T, stored []byte, raw int64) {
		fd := native.File{Handle: "x/c.zst", Size: int64(len(stored)), RawSize: raw, SHA256: sha256.Sum256(stored)}
		var total int64
		err := native.DecodeChunk("x/c.zst", stored, fd, native.Limits{MaxRawSize: 1 << 20, MaxRecord: 1 << 16, MaxWindow: 1 << 20},
			func(rec []byte) error {
				total += int64(len(rec)) + 4
				if len(rec) > 1<<16 {
					t.Fatalf("record of %d bytes above the limit", len(rec))
				}
				return nil
			})
		if total > raw && raw >= 0 {
			t.Fatalf("handed out %d bytes of records for a raw size of %d", total, raw)
		}
		if err == nil && raw < 16 {
			t.Fatalf("accepted a chunk of raw size %d (smaller than a trailer)", raw)
		}
	})
}

// FuzzDecodeManifest checks that the manifest decoders never panic and that what they
// accept has only valid handles.
func FuzzDecodeManifest(f *testing.F) {
	f.Add([]byte(`{"format":1,"first_version":0,"last_version":0,"chunks":[{"first_version":0,"last_version":0,"handle":"a/b","size":1,"raw_size":1,"sha256":"` + string(bytes.Repeat([]byte("00"), 32)) + `","proof":{"handle":"a/p","size":1,"raw_size":1,"sha256":"` + string(bytes.Repeat([]byte("00"), 32)) + `"}}]}`))
	f.Add([]byte(`{"format":1,"first_epoch":0,"last_epoch":0,"waypoints":["0:` + string(bytes.Repeat([]byte("00"), 32)) + `"],"chunks":[{"first_epoch":0,"last_epoch":0,"handle":"../x","size":1,"raw_size":1,"sha256":"` + string(bytes.Repeat([]byte("00"), 32)) + `"}]}`))
	f.Add([]byte(`{"format":1,"version":5,"epoch":1,"root_hash":"00","item_count":0,"root_proof":{"handle":"/abs","size":1,"raw_size":1,"sha256":""},"chunks":[]}`))
	f.Add([]byte(`{"format":1} trailing`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := native.DecodeTransaction(b); err == nil {
			if err := m.Validate(); err != nil {
				t.Fatalf("accepted an invalid transaction manifest: %v", err)
			}
		}
		if m, err := native.DecodeEpochEnding(b); err == nil {
			if err := m.Validate(); err != nil {
				t.Fatalf("accepted an invalid epoch ending manifest: %v", err)
			}
		}
		if m, err := native.DecodeStateSnapshot(b); err == nil {
			if err := m.Validate(); err != nil {
				t.Fatalf("accepted an invalid state snapshot manifest: %v", err)
			}
		}
	})
}

// FuzzDecodeMetadataFile checks that metadata decoding never panics and returns only
// valid lines.
func FuzzDecodeMetadataFile(f *testing.F) {
	f.Add([]byte(`{"format":1,"type":"transaction","first_version":1,"last_version":9,"manifest":"t/manifest.json","size":10}` + "\n"))
	f.Add([]byte(`{"format":1,"type":"nope","manifest":"x"}`))
	f.Add([]byte(`{"format":1,"type":"state_snapshot","version":3,"manifest":"../m"}`))
	f.Add([]byte("{broken"))
	f.Fuzz(func(t *testing.T, b []byte) {
		ms, err := native.DecodeMetadataFile("fuzz.meta", b)
		if err != nil {
			return
		}
		for i := range ms {
			if err := ms[i].Validate(); err != nil {
				t.Fatalf("accepted an invalid line: %v", err)
			}
		}
	})
}

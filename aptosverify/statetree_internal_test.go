package aptosverify

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/state"
	"github.com/ledgervault/ledgervault/aptos/state/statetest"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage/storageurl"
)

// These tests run the chunk path of a state snapshot row (stateTree) on a synthetic
// snapshot in a file:// store with the operator's gzip layer, the root given as proven:
// no corpus has Aptos state chunks, and a synthetic signed chain to prove a synthetic
// root is not built here.

const folder = "state_epoch_5_ver_100.ab12"

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeSnapshot writes the chunks and proofs of s under dir, gzipped.
func writeSnapshot(t *testing.T, dir string, chunks []statetest.Chunk) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, folder), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range chunks {
		if err := os.WriteFile(filepath.Join(dir, string(c.Manifest.Blobs)), gz(t, c.Data), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, string(c.Manifest.Proof)), gz(t, c.Proof), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func runTree(t *testing.T, dir string, root aptos.HashValue, chunks []statetest.Chunk) (Row, *Report) {
	t.Helper()
	st, err := storageurl.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	v := &verifier{src: st, rep: &Report{}}
	sm := &backupcli.StateSnapshotManifest{Version: 100, RootHash: backupcli.Hash(root), Proof: folder + "/state.proof"}
	for _, c := range chunks {
		sm.Chunks = append(sm.Chunks, c.Manifest)
	}
	var row Row
	if err := v.stateTree(context.Background(), sm, aptos.DiemDomain, "root proven (given)", &row); err != nil {
		t.Fatal(err)
	}
	return row, v.rep
}

func synthetic(t *testing.T) *statetest.Snapshot {
	t.Helper()
	s, err := statetest.Build(state.NewHasher(aptos.DiemDomain), 1000, 250, 11, folder)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestStateTreeVerified(t *testing.T) {
	s := synthetic(t)
	dir := t.TempDir()
	writeSnapshot(t, dir, s.Chunks)
	row, rep := runTree(t, dir, s.Root, s.Chunks)
	if row.Status != StatusVerified || rep.StateRecords != 1000 || row.Files != 8 {
		t.Fatalf("row %+v, %d records", row, rep.StateRecords)
	}
	if !strings.Contains(row.Detail, "1000 records in 4 chunks") {
		t.Fatalf("detail %q", row.Detail)
	}
}

func TestStateTreeMissingChunk(t *testing.T) {
	s := synthetic(t)
	dir := t.TempDir()
	writeSnapshot(t, dir, s.Chunks)
	gone := s.Chunks[2].Manifest.Blobs
	if err := os.Remove(filepath.Join(dir, string(gone))); err != nil {
		t.Fatal(err)
	}
	row, rep := runTree(t, dir, s.Root, s.Chunks)
	if row.Status != StatusIncomplete || len(row.Missing) != 1 || row.Missing[0] != gone || rep.StateRecords != 0 {
		t.Fatalf("row %+v", row)
	}
	for _, w := range []string{"missing " + string(gone), "the proven part passed: root proven (given)", "500 records in the 2 chunks before the first missing one verified"} {
		if !strings.Contains(row.Error, w) {
			t.Errorf("error %q does not say %q", row.Error, w)
		}
	}
}

func records(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := binary.BigEndian.Uint32(b)
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

func frame(recs [][]byte) []byte {
	var out []byte
	for _, r := range recs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(r)))
		out = append(out, r...)
	}
	return out
}

// TestStateTreeTamper: each change must fail the row, naming the file.
func TestStateTreeTamper(t *testing.T) {
	s := synthetic(t)
	for _, tc := range []struct {
		name   string
		change func(cs []statetest.Chunk, root *aptos.HashValue)
		want   string
	}{
		{"one byte of one value", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			recs := records(cs[1].Data)
			recs[77][len(recs[77])-1] ^= 0x10
			cs[1].Data = frame(recs) // the gzip layer is rebuilt by writeSnapshot
		}, folder + "/250-.chunk with range proof " + folder + "/250-499.proof"},
		{"swapped pair of chunks", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[1].Data, cs[2].Data = cs[2].Data, cs[1].Data
		}, folder + "/250-.chunk record 0 (index 250)"},
		{"removed record", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			recs := records(cs[3].Data)
			cs[3].Data = frame(append(recs[:100:100], recs[101:]...))
		}, folder + "/750-.chunk has 249 records"},
		{"truncated range proof", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[0].Proof = cs[0].Proof[:len(cs[0].Proof)-5]
		}, "chunk proof " + folder + "/0-249.proof"},
		{"changed root_hash", func(_ []statetest.Chunk, root *aptos.HashValue) {
			root[5] ^= 1
		}, folder + "/0-.chunk with range proof " + folder + "/0-249.proof"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := make([]statetest.Chunk, len(s.Chunks))
			for i, c := range s.Chunks {
				cs[i] = statetest.Chunk{Manifest: c.Manifest, Data: bytes.Clone(c.Data), Proof: bytes.Clone(c.Proof)}
			}
			root := s.Root
			tc.change(cs, &root)
			dir := t.TempDir()
			writeSnapshot(t, dir, cs)
			row, rep := runTree(t, dir, root, s.Chunks)
			if row.Status != StatusFailed || rep.StateRecords != 0 {
				t.Fatalf("row %+v", row)
			}
			if !strings.Contains(row.Error, tc.want) {
				t.Fatalf("error %q does not say %q", row.Error, tc.want)
			}
		})
	}
}

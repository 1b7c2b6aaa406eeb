package state_test

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/state"
	"github.com/ledgervault/ledgervault/aptos/txn"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/corpora"
)

// realRecords returns state records built from the first write sets of aptos-libra7's
// transactions 1-20000 (real state keys and values of the chain; the corpus has no state
// chunk of its own), each (key, V0(data)) or (key, WithMetadata{data, metadata}) as the
// write op carried it.
func realRecords(tb testing.TB, max int) [][]byte {
	tb.Helper()
	root, _, err := corpora.Aptos()
	if err != nil {
		tb.Fatal(err)
	}
	f, err := os.Open(filepath.Join(root, "transaction_1-.90bf", "1-.chunk"))
	if err != nil {
		tb.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		tb.Fatal(err)
	}
	var out [][]byte
	it := backupcli.NewRecords(zr, backupcli.RecordLimits{})
	for len(out) < max && it.Next() {
		rec, err := txn.DecodeRecord(it.Record())
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range rec.WriteSet.Entries {
			if e.Op.Data == nil || len(out) >= max {
				continue
			}
			v := state.StateValue{Data: e.Op.Data, Metadata: e.Op.Metadata}
			out = append(out, state.AppendRecord(nil, &e.Key, &v))
		}
	}
	if err := it.Err(); err != nil && len(out) < max {
		tb.Fatal(err)
	}
	return out
}

func TestRealRecordsRoundTrip(t *testing.T) {
	d := state.NewDecoder(state.NewHasher(aptos.DiemDomain))
	recs := realRecords(t, 200)
	if len(recs) < 50 {
		t.Fatalf("only %d records", len(recs))
	}
	for i, b := range recs {
		r, err := d.DecodeRecord(b)
		if err != nil {
			t.Fatalf("record %d: %v", i, err)
		}
		if again := state.AppendRecord(nil, &r.Key, &r.Value); !bytes.Equal(again, b) {
			t.Fatalf("record %d does not re-encode to its bytes", i)
		}
	}
}

func FuzzDecodeRecord(f *testing.F) {
	for _, b := range realRecords(f, 20) {
		f.Add(b)
	}
	d := state.NewDecoder(state.NewHasher(aptos.AptosDomain))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := d.DecodeRecord(b)
		if err != nil {
			return
		}
		// Strict BCS: what decodes re-encodes to exactly the input.
		if again := state.AppendRecord(nil, &r.Key, &r.Value); !bytes.Equal(again, b) {
			t.Fatalf("decoded record re-encodes to %x, input %x", again, b)
		}
	})
}

// FuzzSnapshotChunk feeds arbitrary chunk and proof bytes to a Snapshot expecting a real
// synthetic chunk: errors are fine, panics are not, and only the true chunk verifies.
func FuzzSnapshotChunk(f *testing.F) {
	h := state.NewHasher(aptos.AptosDomain)
	s, err := statetestBuild(h)
	if err != nil {
		f.Fatal(err)
	}
	c := s.Chunks[0]
	f.Add(c.Data, c.Proof)
	f.Add(c.Data[:len(c.Data)/2], c.Proof[:1])
	f.Fuzz(func(t *testing.T, data, proof []byte) {
		v := state.NewSnapshot(h, s.Root)
		err := v.AddChunk(t.Context(), bytes.NewReader(data), c.Manifest, proof)
		// Records are strict BCS and a proof is determined by the tree: anything else
		// verifying would need a hash collision.
		if err == nil && (!bytes.Equal(data, c.Data) || !bytes.Equal(proof, c.Proof)) {
			t.Fatal("a different chunk or proof verified")
		}
	})
}

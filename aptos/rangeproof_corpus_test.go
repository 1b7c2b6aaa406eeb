package aptos_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/txn"
	"github.com/ledgervault/ledgervault/internal/corpora"
)

func gunzip(t *testing.T, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(io.LimitReader(z, 256<<20))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRangeProofOnRealChunk checks AccumulatorRangeProof.Verify over the 20000
// TransactionInfo hashes of a real transaction chunk (decoded with aptos/txn).
func TestRangeProofOnRealChunk(t *testing.T) {
	root, err := corpora.Dir()
	if err != nil {
		t.Fatal(err) // a missing corpus is a broken checkout
	}
	dir := filepath.Join(root, "aptos-libra7", "snapshots", "transaction_1-.90bf")
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("corpus incomplete: %v", err)
	}
	proof, err := txn.DecodeChunkProof(gunzip(t, filepath.Join(dir, "1-20000.proof")))
	if err != nil {
		t.Fatal(err)
	}
	fr := txn.NewFrameReader(bytes.NewReader(gunzip(t, filepath.Join(dir, "1-.chunk"))), txn.MaxRecordSize)
	var leaves []aptos.HashValue
	for {
		rec, err := fr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		r, err := txn.DecodeRecord(rec)
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, aptos.HashValue(r.Hash(aptos.DiemDomain).Info))
	}
	if len(leaves) != 20000 {
		t.Fatalf("%d records", len(leaves))
	}
	li := &proof.LedgerInfo.LedgerInfo
	if err := proof.Range.Verify(aptos.DiemDomain, li.AccumulatorRoot(), 1, leaves); err != nil {
		t.Fatal(err)
	}
	leaves[19999][0] ^= 1
	if err := proof.Range.Verify(aptos.DiemDomain, li.AccumulatorRoot(), 1, leaves); err == nil {
		t.Fatal("tampered last leaf verified")
	}
}

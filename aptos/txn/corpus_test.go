package txn

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
)

// corpusPath returns the snapshots/ folder of the real aptos-libra7 store, from
// $LEDGERVAULT_CORPORA or the shared folder (as package aptos's tests find it), skipping
// the test when the corpus is not on this machine. Tests only read it.
func corpusPath(t testing.TB) string {
	t.Helper()
	root := os.Getenv("LEDGERVAULT_CORPORA")
	if root == "" {
		root = "/work/shared/corpora"
	}
	p := filepath.Join(root, "aptos-libra7", "snapshots")
	if _, err := os.Stat(filepath.Join(p, "metadata")); err != nil {
		t.Skipf("aptos-libra7 corpus not present (%v); set LEDGERVAULT_CORPORA", err)
	}
	return p
}

// gunzip reads a gzip file of the corpus whole.
func gunzip(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return b
}

// corpusChunks lists the transaction chunks of the corpus through its metadata and
// manifests, in version order.
func corpusChunks(t testing.TB) []Chunk {
	t.Helper()
	root := corpusPath(t)
	metas, err := filepath.Glob(filepath.Join(root, "metadata", "transaction_*.meta"))
	if err != nil {
		t.Fatal(err)
	}
	var chunks []Chunk
	for _, m := range metas {
		var meta struct {
			TransactionBackup struct {
				FirstVersion uint64 `json:"first_version"`
				Manifest     string `json:"manifest"`
			}
		}
		if err := json.Unmarshal(gunzip(t, m), &meta); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		var man struct {
			Chunks []struct {
				FirstVersion uint64 `json:"first_version"`
				LastVersion  uint64 `json:"last_version"`
				Transactions string `json:"transactions"`
				Proof        string `json:"proof"`
			} `json:"chunks"`
		}
		if err := json.Unmarshal(gunzip(t, filepath.Join(root, meta.TransactionBackup.Manifest)), &man); err != nil {
			t.Fatalf("%s: %v", meta.TransactionBackup.Manifest, err)
		}
		for _, c := range man.Chunks {
			if c.FirstVersion == 0 {
				continue // the genesis chunk was not published (the corpus README says so)
			}
			chunks = append(chunks, Chunk{Name: c.Transactions, ProofName: c.Proof, FirstVersion: c.FirstVersion, LastVersion: c.LastVersion})
		}
	}
	for i := 1; i < len(chunks); i++ {
		for j := i; j > 0 && chunks[j].FirstVersion < chunks[j-1].FirstVersion; j-- {
			chunks[j], chunks[j-1] = chunks[j-1], chunks[j]
		}
	}
	return chunks
}

// acceptAll stands in for the epoch history's signature check, which package aptos
// tests; here the ledger info is taken as signed.
var acceptAll = LedgerInfoVerifierFunc(func(context.Context, *aptos.LedgerInfoWithSignatures) error { return nil })

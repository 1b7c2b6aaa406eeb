package txn

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
)

// corpusHistory verifies the corpus's epoch chain from its genesis waypoint with
// package aptos, up to and including epoch last, and returns the history.
func corpusHistory(t *testing.T, last uint64) (*aptos.EpochHistory, aptos.ChainStats) {
	t.Helper()
	root := corpusPath(t)
	wb, err := os.ReadFile(filepath.Join(root, "..", "genesis", "waypoint.txt"))
	if err != nil {
		t.Fatal(err)
	}
	trusted, err := aptos.ParseWaypoint(strings.TrimSpace(string(wb)))
	if err != nil {
		t.Fatal(err)
	}
	metas, err := filepath.Glob(filepath.Join(root, "metadata", "epoch_ending_*.meta"))
	if err != nil {
		t.Fatal(err)
	}
	type ee struct {
		FirstEpoch uint64 `json:"first_epoch"`
		Manifest   string `json:"manifest"`
	}
	var list []ee
	for _, m := range metas {
		var line struct{ EpochEndingBackup ee }
		if err := json.Unmarshal(gunzip(t, m), &line); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		if line.EpochEndingBackup.FirstEpoch <= last {
			list = append(list, line.EpochEndingBackup)
		}
	}
	sort.Slice(list, func(i, j int) bool { return list[i].FirstEpoch < list[j].FirstEpoch })
	var endings aptos.SliceSource
	for _, e := range list {
		var man struct {
			Chunks []struct {
				LedgerInfos string `json:"ledger_infos"`
			} `json:"chunks"`
		}
		if err := json.Unmarshal(gunzip(t, filepath.Join(root, e.Manifest)), &man); err != nil {
			t.Fatalf("%s: %v", e.Manifest, err)
		}
		for _, c := range man.Chunks {
			fr := NewFrameReader(bytes.NewReader(gunzip(t, filepath.Join(root, c.LedgerInfos))), 0)
			for i := 0; ; i++ {
				rec, err := fr.Next()
				if err != nil {
					break
				}
				endings = append(endings, aptos.Ending{Source: fmt.Sprintf("%s record %d", c.LedgerInfos, i), Record: rec})
			}
		}
	}
	h, st, err := aptos.VerifyEpochChain(context.Background(), trusted, &endings, aptos.ChainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if h.LastEpoch() != last {
		t.Fatalf("history reaches epoch %d, want %d", h.LastEpoch(), last)
	}
	return h, st
}

// TestEndToEndFromWaypoint verifies transactions 1-60000 trusting only the genesis
// waypoint: package aptos verifies the epoch chain (BLS quorum signatures) and each
// chunk proof's ledger info against it; VerifyChunk does the rest.
func TestEndToEndFromWaypoint(t *testing.T) {
	root := corpusPath(t)
	chunks := corpusChunks(t)
	// The chunks' proofs end in ledger infos of epochs 33, 64 and 94.
	h, chain := corpusHistory(t, 94)
	verifier := LedgerInfoVerifierFunc(func(_ context.Context, li *aptos.LedgerInfoWithSignatures) error {
		return h.VerifyLedgerInfo(li)
	})
	var total uint64
	manifests, err := filepath.Glob(filepath.Join(root, "transaction_*", "transaction.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, p := range manifests {
		m, err := decodeManifest(gunzip(t, p))
		if err != nil {
			t.Fatal(err)
		}
		if raceEnabled && m.FirstVersion > 1 {
			// Under -race (how make test runs) only the first backup's records are
			// verified here: TestVerifyBackupsOfCorpus verifies all 60000 records there
			// with the same code, so this checks the epoch history's verdict on the
			// other two chunks' ledger infos, the part only this test covers.
			for _, mc := range m.Chunks {
				proof, err := DecodeChunkProof(gunzip(t, filepath.Join(root, string(mc.Proof))))
				if err != nil {
					t.Fatal(err)
				}
				if err := h.VerifyLedgerInfo(&proof.LedgerInfo); err != nil {
					t.Fatalf("%s: %v", mc.Proof, err)
				}
				checked++
				total += mc.LastVersion - mc.FirstVersion + 1
			}
			continue
		}
		st, err := VerifyBackup(context.Background(), gzipDir(root), m, Options{Domain: h.Domain(), LedgerInfo: verifier})
		if m.FirstVersion == 0 {
			if !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("genesis backup (its chunk was not published): %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		total += st.Total.Transactions
		checked += st.Chunks
	}
	if total != 60000 || checked != 3 {
		t.Fatalf("verified %d transactions in %d chunks", total, checked)
	}
	t.Logf("epoch chain: %d endings, %d signatures; %d transactions verified", chain.Endings, chain.Signatures, total)

	// One bit of the aggregate signature, and one bit of the signed timestamp, of a
	// chunk's ledger info.
	c := chunks[0]
	proof := gunzip(t, filepath.Join(root, c.ProofName))
	p, err := DecodeChunkProof(proof)
	if err != nil {
		t.Fatal(err)
	}
	timestampAt := 1 + 32*len(p.Range.LeftSiblings) + 1 + 32*len(p.Range.RightSiblings) + 1 + 8 + 8 + 32 + 32 + 8
	for name, at := range map[string]int{"signature": len(proof) - 10, "timestamp": timestampAt} {
		bad := bytes.Clone(proof)
		bad[at] ^= 0x01
		_, err := VerifyChunk(context.Background(), c, bytes.NewReader(nil), bad, Options{Domain: h.Domain(), LedgerInfo: verifier})
		if err == nil || !strings.Contains(err.Error(), c.ProofName) {
			t.Fatalf("flipped %s bit: %v", name, err)
		}
		t.Logf("flipped %s bit: %v", name, err)
	}
	// A ledger info of an epoch the history does not reach is not trusted (package
	// aptos's own tests cover this; here it costs 34 more BLS checks, too slow under
	// -race).
	if raceEnabled {
		return
	}
	short, _ := corpusHistory(t, 33)
	_, err = VerifyChunk(context.Background(), chunks[2], bytes.NewReader(nil), gunzip(t, filepath.Join(root, chunks[2].ProofName)),
		Options{Domain: short.Domain(), LedgerInfo: LedgerInfoVerifierFunc(func(_ context.Context, li *aptos.LedgerInfoWithSignatures) error {
			return short.VerifyLedgerInfo(li)
		})})
	if err == nil || !strings.Contains(err.Error(), chunks[2].ProofName) || errors.Is(err, ErrMismatch) {
		t.Fatalf("ledger info beyond the history: %v", err)
	}
	t.Logf("beyond the history: %v", err)
}

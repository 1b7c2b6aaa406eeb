package aptos

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/corpora"
)

// corpusDir returns the aptos-libra7 corpus folder (internal/corpora: shared/corpora
// above the checkout, or $LEDGERVAULT_CORPORA). A missing corpus fails the test: it is
// a broken checkout, not a reason to skip.
func corpusDir(t testing.TB) string {
	t.Helper()
	root, err := corpora.Dir()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "aptos-libra7")
	if _, err := os.Stat(filepath.Join(dir, "genesis", "waypoint.txt")); err != nil {
		t.Fatalf("aptos-libra7 corpus incomplete: %v", err)
	}
	return dir
}

// gunzipFile reads one gzip-compressed corpus file (every file went through gzip -c).
func gunzipFile(t testing.TB, path string) []byte {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	z, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("gunzip %s: %v", path, err)
	}
	b, err := io.ReadAll(io.LimitReader(z, 64<<20))
	if err != nil {
		t.Fatalf("gunzip %s: %v", path, err)
	}
	return b
}

// splitRecords splits a chunk into its records (big-endian u32 length, then bytes).
func splitRecords(t testing.TB, name string, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		if len(b) < 4 {
			t.Fatalf("%s: truncated record header", name)
		}
		n := binary.BigEndian.Uint32(b)
		if uint64(n) > uint64(len(b)-4) {
			t.Fatalf("%s: record of %d bytes, %d left", name, n, len(b)-4)
		}
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

type epochManifest struct {
	FirstEpoch uint64   `json:"first_epoch"`
	LastEpoch  uint64   `json:"last_epoch"`
	Waypoints  []string `json:"waypoints"`
	Chunks     []struct {
		FirstEpoch  uint64 `json:"first_epoch"`
		LastEpoch   uint64 `json:"last_epoch"`
		LedgerInfos string `json:"ledger_infos"`
	} `json:"chunks"`
}

// corpusEnding is one epoch-ending record with where it came from.
type corpusEnding struct {
	source   string
	record   []byte
	waypoint string // from the manifest
}

// loadCorpusEndings reads every epoch-ending backup named by metadata, in epoch order.
func loadCorpusEndings(t testing.TB) []corpusEnding {
	t.Helper()
	snap := filepath.Join(corpusDir(t), "snapshots")
	metas, err := filepath.Glob(filepath.Join(snap, "metadata", "epoch_ending_*.meta"))
	if err != nil {
		t.Fatal(err)
	}
	type ee struct {
		FirstEpoch uint64 `json:"first_epoch"`
		Manifest   string `json:"manifest"`
	}
	var list []ee
	for _, m := range metas {
		var line map[string]ee
		if err := json.Unmarshal(bytes.TrimSpace(gunzipFile(t, m)), &line); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		e, ok := line["EpochEndingBackup"]
		if !ok {
			t.Fatalf("%s: not an EpochEndingBackup", m)
		}
		list = append(list, e)
	}
	sort.Slice(list, func(i, j int) bool { return list[i].FirstEpoch < list[j].FirstEpoch })
	var out []corpusEnding
	for _, e := range list {
		var man epochManifest
		if err := json.Unmarshal(gunzipFile(t, filepath.Join(snap, e.Manifest)), &man); err != nil {
			t.Fatalf("%s: %v", e.Manifest, err)
		}
		w := 0
		for _, c := range man.Chunks {
			recs := splitRecords(t, c.LedgerInfos, gunzipFile(t, filepath.Join(snap, c.LedgerInfos)))
			for i, r := range recs {
				src := fmt.Sprintf("%s record %d", c.LedgerInfos, i)
				if w >= len(man.Waypoints) {
					t.Fatalf("%s: more records than waypoints", e.Manifest)
				}
				out = append(out, corpusEnding{source: src, record: r, waypoint: man.Waypoints[w]})
				w++
			}
		}
	}
	return out
}

func genesisWaypoint(t testing.TB) Waypoint {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(corpusDir(t), "genesis", "waypoint.txt"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := ParseWaypoint(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestGenesisWaypointMatchesEpochZero(t *testing.T) {
	endings := loadCorpusEndings(t)
	if len(endings) != 210 {
		t.Fatalf("%d epoch endings, want 210", len(endings))
	}
	li, err := DecodeLedgerInfoWithSignatures(endings[0].record)
	if err != nil {
		t.Fatal(err)
	}
	d, err := DetectDomain(genesisWaypoint(t), &li.LedgerInfo)
	if err != nil {
		t.Fatal(err)
	}
	if d != DiemDomain {
		t.Fatalf("domain %s, want DIEM:: (libra v7 kept Diem's salt prefix)", d)
	}
	for _, e := range endings {
		li, err := DecodeLedgerInfoWithSignatures(e.record)
		if err != nil {
			t.Fatalf("%s: %v", e.source, err)
		}
		if got := d.Waypoint(&li.LedgerInfo).String(); got != e.waypoint {
			t.Fatalf("%s: waypoint %s, manifest %s", e.source, got, e.waypoint)
		}
	}
}

type stateManifest struct {
	Version  uint64 `json:"version"`
	Epoch    uint64 `json:"epoch"`
	RootHash string `json:"root_hash"`
	Proof    string `json:"proof"`
}

type corpusSnapshot struct {
	manifestPath string
	manifest     stateManifest
	proofPath    string
	proof        []byte
}

// loadCorpusSnapshots reads the three state snapshots' manifests and state.proof files.
func loadCorpusSnapshots(t testing.TB) []corpusSnapshot {
	t.Helper()
	snap := filepath.Join(corpusDir(t), "snapshots")
	mans, err := filepath.Glob(filepath.Join(snap, "state_epoch_*", "state.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(mans)
	var out []corpusSnapshot
	for _, m := range mans {
		var s corpusSnapshot
		s.manifestPath = m
		if err := json.Unmarshal(gunzipFile(t, m), &s.manifest); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		s.proofPath = s.manifest.Proof
		s.proof = gunzipFile(t, filepath.Join(snap, s.manifest.Proof))
		out = append(out, s)
	}
	if len(out) != 3 {
		t.Fatalf("%d state snapshots, want 3", len(out))
	}
	return out
}

func TestStateProofAccumulator(t *testing.T) {
	for _, s := range loadCorpusSnapshots(t) {
		p, err := DecodeStateSnapshotProof(s.proof)
		if err != nil {
			t.Fatalf("%s: %v", s.proofPath, err)
		}
		if err := p.TxnInfo.Verify(DiemDomain, &p.LedgerInfo.LedgerInfo, s.manifest.Version); err != nil {
			t.Fatalf("%s: %v", s.proofPath, err)
		}
		h := p.TxnInfo.Info.StateCheckpointHash
		if h == nil || h.String() != s.manifest.RootHash {
			t.Fatalf("%s: checkpoint %v, manifest root %s", s.proofPath, h, s.manifest.RootHash)
		}
		t.Logf("%s: li epoch %d version %d", s.proofPath, p.LedgerInfo.LedgerInfo.Epoch(), p.LedgerInfo.LedgerInfo.Version())
	}
}

// TestStateChunkProofsDecode decodes the three snapshots' chunk proofs. Their chunks
// (the state records) were not published with the archive, so the Jellyfish root cannot
// be rebuilt from this corpus: only the proofs' form is checked here (package
// aptos/state rebuilds roots from the Diem-1.x corpus's chunks and synthetic ones).
func TestStateChunkProofsDecode(t *testing.T) {
	snap := filepath.Join(corpusDir(t), "snapshots")
	files, _ := filepath.Glob(filepath.Join(snap, "state_epoch_*", "0-85049.proof"))
	if len(files) != 3 {
		t.Fatalf("%d chunk proofs", len(files))
	}
	for _, f := range files {
		b := gunzipFile(t, f)
		p, err := DecodeSparseMerkleRangeProof(b)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		// The only chunk ends at the last key: everything right of it is empty.
		for _, s := range p.RightSiblings {
			if s != SparseMerklePlaceholderHash {
				t.Fatalf("%s: right sibling %s of the last chunk is not the placeholder", f, s)
			}
		}
		if _, err := DecodeSparseMerkleRangeProof(b[:len(b)-1]); err == nil {
			t.Fatalf("%s: truncated proof decoded", f)
		}
		blobs := filepath.Join(filepath.Dir(f), "0-.chunk")
		if _, err := os.Stat(blobs); err == nil {
			t.Fatalf("%s exists: the corpus README says the state chunks are absent; rebuild the root", blobs)
		}
	}
}

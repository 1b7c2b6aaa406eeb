package aptos

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/corpora"
)

type diemEnding struct {
	store, source string
	record        []byte
	waypoint      Waypoint
}

// loadDiemEndings reads the epoch-ending chunks of the five diem-0l-v5 stores (plain
// files), each with the waypoint its manifest lists.
func loadDiemEndings(t *testing.T) []diemEnding {
	t.Helper()
	root, err := corpora.Dir()
	if err != nil {
		t.Fatal(err) // a missing corpus is a broken checkout
	}
	mans, _ := filepath.Glob(filepath.Join(root, "diem-0l-v5", "*", "epoch_ending_*", "epoch_ending.manifest"))
	if len(mans) == 0 {
		t.Fatalf("diem-0l-v5 corpus not found under %s", root)
	}
	var out []diemEnding
	for _, m := range mans {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		var man epochManifest
		if err := json.Unmarshal(b, &man); err != nil {
			t.Fatalf("%s: %v", m, err)
		}
		store := filepath.Dir(filepath.Dir(m))
		for _, c := range man.Chunks {
			data, err := os.ReadFile(filepath.Join(store, c.LedgerInfos))
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range splitRecords(t, c.LedgerInfos, data) {
				w, err := ParseWaypoint(man.Waypoints[i])
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, diemEnding{store: filepath.Base(store), source: c.LedgerInfos, record: r, waypoint: w})
			}
		}
	}
	return out
}

func TestDiemEndingsDecodeAndMatchWaypoints(t *testing.T) {
	endings := loadDiemEndings(t)
	if len(endings) != 6 {
		t.Fatalf("%d Diem endings, want 6 (155 has two backups)", len(endings))
	}
	for _, e := range endings {
		if g := DetectGeneration(e.record); g != GenerationDiem1 {
			t.Fatalf("%s: generation %v", e.source, g)
		}
		li, err := DecodeDiemLedgerInfoWithSignatures(e.record)
		if err != nil {
			t.Fatalf("%s: %v", e.source, err)
		}
		if w := LibraDomain.DiemWaypoint(li); w != e.waypoint {
			t.Fatalf("%s: waypoint %s, manifest %s", e.source, w, e.waypoint)
		}
		if li.NextEpochState == nil || li.NextEpochState.Epoch != li.LedgerInfo.Epoch()+1 {
			t.Fatalf("%s: not an epoch ending", e.source)
		}
	}
	// The Aptos-generation records are not Diem's.
	if g := DetectGeneration(seedFile(t, "epoch1.bcs")); g != GenerationAptos {
		t.Fatalf("aptos record detected as %v", g)
	}
}

func seedFile(t *testing.T, name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// standInSet returns the validators of the next set that signed li, as the set of li's
// epoch, with its total and quorum computed.
func standInSet(li *DiemLedgerInfoWithSignatures) *DiemEpochState {
	set := &DiemEpochState{Epoch: li.LedgerInfo.Epoch()}
	for _, v := range li.NextEpochState.Validators {
		for _, s := range li.Signatures {
			if s.Address == v.Address {
				set.Validators = append(set.Validators, v)
				set.TotalVotingPower += v.VotingPower
			}
		}
	}
	set.QuorumVotingPower = set.TotalVotingPower*2/3 + 1
	return set
}

// TestDiemSignaturesReal checks real Ed25519 signatures. Each store holds one ending, so
// the validator set that signed it (announced by the ending before) is not in the store;
// in stores 14, 77, 89 and 104 the next set holds every signer with the same key, so the
// signers' entries of it stand in for the signing set here (only for this test).
func TestDiemSignaturesReal(t *testing.T) {
	for _, e := range loadDiemEndings(t) {
		li, err := DecodeDiemLedgerInfoWithSignatures(e.record)
		if err != nil {
			t.Fatal(err)
		}
		set := standInSet(li)
		n, err := VerifyDiemLedgerInfo(LibraDomain, set, li)
		if e.store == "155" {
			// One signer of epoch 155 left the set for 156: the stand-in set lacks it.
			if !errors.Is(err, ErrSignature) {
				t.Fatalf("%s: %v", e.source, err)
			}
			continue
		}
		if err != nil || n != len(li.Signatures) {
			t.Fatalf("%s: %d signatures verified: %v", e.source, n, err)
		}
		// One flipped bit of one signature, and the wrong domain, fail.
		li.Signatures[0].Signature[5] ^= 1
		if _, err := VerifyDiemLedgerInfo(LibraDomain, set, li); !errors.Is(err, ErrSignature) {
			t.Fatalf("%s: flipped signature: %v", e.source, err)
		}
		li.Signatures[0].Signature[5] ^= 1
		if _, err := VerifyDiemLedgerInfo(DiemDomain, set, li); !errors.Is(err, ErrSignature) {
			t.Fatalf("%s: wrong domain: %v", e.source, err)
		}
		// Dropping signers below the quorum fails.
		li.Signatures = li.Signatures[:1]
		if _, err := VerifyDiemLedgerInfo(LibraDomain, set, li); !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), "below the quorum") {
			t.Fatalf("%s: one signer: %v", e.source, err)
		}
	}
}

func TestVerifyEpochChainReportsDiemNotChecked(t *testing.T) {
	e := loadDiemEndings(t)[0]
	// The trusted waypoint is the ending's own (from its manifest): the chain walk
	// still refuses to call a Diem-1.x store verified.
	src := SliceSource{{Source: e.source, Record: e.record, ManifestWaypoint: &e.waypoint}}
	_, _, err := VerifyEpochChain(context.Background(), e.waypoint, &src, ChainOptions{})
	if !errors.Is(err, ErrGenerationNotChecked) || !strings.Contains(err.Error(), e.source) {
		t.Fatalf("Diem chain: %v", err)
	}
	t.Log(err)
}

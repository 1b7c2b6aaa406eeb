package state_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/bcs"
	"github.com/ledgervault/ledgervault/aptos/state"
	"github.com/ledgervault/ledgervault/aptos/state/statetest"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/corpora"
)

// The only real state snapshot chunks in the corpora are the Diem-1.x ones of
// diem-0l-v5 (records (HashValue, AccountStateBlob), hashes under "LIBRA::"): the same
// binary sparse Merkle tree, leaf and internal hashing as Aptos's. They check Tree,
// and the reference tree statetest builds, against roots aptos-core's ancestor computed.
var diemSnapshots = []string{
	"77/state_ver_41315058.6168", "89/state_ver_45934438.5da5",
	"104/state_ver_51738547.4daf", "155/state_ver_66864872.515a",
}

type diemSnapshot struct {
	root   aptos.HashValue
	chunk  backupcli.StateSnapshotChunk
	leaves []statetest.Leaf
	proof  []byte
}

func readDiemSnapshot(t *testing.T, h *state.Hasher, dir string) diemSnapshot {
	t.Helper()
	base, err := corpora.Diem(filepath.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	mb, err := os.ReadFile(filepath.Join(base, filepath.Base(dir), "state.manifest"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := backupcli.DecodeStateSnapshotManifest(mb)
	if err != nil {
		t.Fatal(err)
	}
	if len(m.Chunks) != 1 {
		t.Fatalf("%s: %d chunks", dir, len(m.Chunks))
	}
	s := diemSnapshot{root: aptos.HashValue(m.RootHash), chunk: m.Chunks[0]}
	data, err := os.ReadFile(filepath.Join(base, string(s.chunk.Blobs)))
	if err != nil {
		t.Fatal(err)
	}
	if s.proof, err = os.ReadFile(filepath.Join(base, string(s.chunk.Proof))); err != nil {
		t.Fatal(err)
	}
	for _, rec := range records(data) {
		r := bcs.NewReader(rec, bcs.Limits{})
		key := r.Bytes("key", 32)
		blob := r.Bytes("account_state_blob", len(rec))
		if err := r.Done(); err != nil || len(key) != 32 {
			t.Fatalf("%s: record %d: %v", dir, len(s.leaves), err)
		}
		s.leaves = append(s.leaves, statetest.Leaf{Key: aptos.HashValue(key), Value: h.AccountStateBlobHash(blob)})
	}
	if uint64(len(s.leaves)) != s.chunk.LastIdx+1 {
		t.Fatalf("%s: %d records, manifest last_idx %d", dir, len(s.leaves), s.chunk.LastIdx)
	}
	return s
}

func TestDiemCorpusRoots(t *testing.T) {
	h := state.NewHasher(aptos.LibraDomain)
	for _, dir := range diemSnapshots {
		t.Run(dir, func(t *testing.T) {
			s := readDiemSnapshot(t, h, dir)
			if got := statetest.Root(h, s.leaves); got != s.root {
				t.Fatalf("reference tree: root %s, manifest %s", got, s.root)
			}
			p, err := aptos.DecodeSparseMerkleRangeProof(s.proof)
			if err != nil {
				t.Fatal(err)
			}
			tr := state.NewTree(h, s.root)
			for _, l := range s.leaves {
				if err := tr.Add(l.Key, l.Value); err != nil {
					t.Fatal(err)
				}
			}
			if err := tr.Verify(p); err != nil {
				t.Fatalf("the real chunk with its real proof: %v", err)
			}
			if err := tr.Finish(); err != nil {
				t.Fatal(err)
			}
			// The real leaves cut into chunks of every size, each with the reference
			// range proof of its last leaf, verify against the real root.
			for per := 1; per < len(s.leaves); per++ {
				tr := state.NewTree(h, s.root)
				for first := 0; first < len(s.leaves); first += per {
					last := min(first+per, len(s.leaves)) - 1
					for _, l := range s.leaves[first : last+1] {
						if err := tr.Add(l.Key, l.Value); err != nil {
							t.Fatal(err)
						}
					}
					p, err := aptos.DecodeSparseMerkleRangeProof(statetest.RangeProof(h, s.leaves, last))
					if err != nil {
						t.Fatal(err)
					}
					if err := tr.Verify(p); err != nil {
						t.Fatal(fmt.Errorf("chunks of %d, leaf %d: %w", per, last, err))
					}
				}
				if err := tr.Finish(); err != nil {
					t.Fatalf("chunks of %d: %v", per, err)
				}
			}
		})
	}
}

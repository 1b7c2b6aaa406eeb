package state_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/state"
	"github.com/ledgervault/ledgervault/aptos/state/statetest"
)

// verify runs every chunk of s through a Snapshot and finishes it.
func verify(h *state.Hasher, root aptos.HashValue, chunks []statetest.Chunk) error {
	v := state.NewSnapshot(h, root)
	for _, c := range chunks {
		if err := v.AddChunk(context.Background(), bytes.NewReader(c.Data), c.Manifest, c.Proof); err != nil {
			return err
		}
	}
	return v.Finish()
}

func build(t testing.TB, h *state.Hasher, n, per int, seed uint64) *statetest.Snapshot {
	t.Helper()
	s, err := statetest.Build(h, n, per, seed, "state_epoch_1_ver_10.abcd")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSyntheticSnapshots(t *testing.T) {
	for _, d := range []*aptos.Domain{aptos.AptosDomain, aptos.DiemDomain} {
		h := state.NewHasher(d)
		for _, tc := range []struct{ n, per int }{{1, 1}, {2, 1}, {3, 2}, {5, 5}, {64, 1}, {300, 7}, {1000, 128}, {2000, 2000}} {
			t.Run(fmt.Sprintf("%s/%d-by-%d", d, tc.n, tc.per), func(t *testing.T) {
				s := build(t, h, tc.n, tc.per, uint64(tc.n*31+tc.per))
				if err := verify(h, s.Root, s.Chunks); err != nil {
					t.Fatal(err)
				}
				// The other domain's hashes are different: the same snapshot fails.
				other := state.NewHasher(aptos.AptosDomain)
				if d == aptos.AptosDomain {
					other = state.NewHasher(aptos.DiemDomain)
				}
				if err := verify(other, s.Root, s.Chunks); err == nil {
					t.Fatal("verified under the wrong hash domain")
				}
			})
		}
	}
}

func TestEmptySnapshot(t *testing.T) {
	h := state.NewHasher(aptos.AptosDomain)
	if err := verify(h, aptos.SparseMerklePlaceholderHash, nil); err != nil {
		t.Fatal(err)
	}
	if err := verify(h, aptos.HashValue{1}, nil); !errors.Is(err, state.ErrRootMismatch) {
		t.Fatalf("empty snapshot with a non-empty root: %v", err)
	}
}

// records splits a chunk file into its records.
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

func clone(s *statetest.Snapshot) []statetest.Chunk {
	out := make([]statetest.Chunk, len(s.Chunks))
	for i, c := range s.Chunks {
		out[i] = statetest.Chunk{Manifest: c.Manifest, Data: bytes.Clone(c.Data), Proof: bytes.Clone(c.Proof)}
	}
	return out
}

// TestTamper changes one thing at a time; each must fail, naming the file and, where
// a record is at fault, its index.
func TestTamper(t *testing.T) {
	h := state.NewHasher(aptos.DiemDomain)
	s := build(t, h, 400, 100, 7)
	for _, tc := range []struct {
		name   string
		change func(cs []statetest.Chunk, root *aptos.HashValue)
		want   []string
		is     error
	}{
		{"value byte", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			recs := records(cs[1].Data)
			recs[50][len(recs[50])-1] ^= 1 // the value's last byte (data or metadata)
			cs[1].Data = frame(recs)
		}, []string{"100-.chunk", "100-199.proof"}, state.ErrRootMismatch},
		{"swapped chunks", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[1], cs[2] = cs[2], cs[1]
		}, []string{"200-.chunk", "starts at index 200"}, state.ErrManifest},
		{"swapped chunk files", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[1].Data, cs[2].Data = cs[2].Data, cs[1].Data
		}, []string{"100-.chunk", "record 0 (index 100)"}, state.ErrManifest},
		{"removed record", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			recs := records(cs[2].Data)
			cs[2].Data = frame(append(recs[:10:10], recs[11:]...))
		}, []string{"200-.chunk", "99 records"}, state.ErrManifest},
		{"removed record, manifest adjusted", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			recs := records(cs[3].Data)
			cs[3].Data = frame(append(recs[:10:10], recs[11:]...))
			cs[3].Manifest.LastIdx--
		}, []string{"300-.chunk", "300-399.proof"}, state.ErrRootMismatch},
		{"removed last chunk", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[3] = statetest.Chunk{}
		}, nil, nil},
		{"truncated range proof", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[0].Proof = cs[0].Proof[:len(cs[0].Proof)-1]
		}, []string{"0-99.proof"}, nil},
		{"range proof with one sibling fewer", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			p := cs[0].Proof
			cs[0].Proof = append([]byte{p[0] - 1}, p[1+32:]...)
		}, []string{"0-.chunk", "0-99.proof"}, nil},
		{"changed root", func(_ []statetest.Chunk, root *aptos.HashValue) {
			root[0] ^= 0x80
		}, []string{"0-.chunk", "0-99.proof"}, state.ErrRootMismatch},
		{"changed first_key", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[1].Manifest.FirstKey[31] ^= 1
		}, []string{"100-.chunk", "first_key"}, state.ErrManifest},
		{"changed last_key", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[1].Manifest.LastKey[31] ^= 1
		}, []string{"100-.chunk", "last_key"}, state.ErrManifest},
		{"undecodable record", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			recs := records(cs[2].Data)
			recs[5] = append(recs[5], 0)
			cs[2].Data = frame(recs)
		}, []string{"200-.chunk", "record 5 (index 205)", "trailing"}, nil},
		{"truncated chunk", func(cs []statetest.Chunk, _ *aptos.HashValue) {
			cs[2].Data = cs[2].Data[:len(cs[2].Data)-3]
		}, []string{"200-.chunk", "partial"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs, root := clone(s), s.Root
			tc.change(cs, &root)
			if tc.name == "removed last chunk" {
				cs = cs[:3]
			}
			err := verify(h, root, cs)
			if err == nil {
				t.Fatal("tampered snapshot verified")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("error %v is not %v", err, tc.is)
			}
		})
	}
}

func statetestBuild(h *state.Hasher) (*statetest.Snapshot, error) {
	return statetest.Build(h, 40, 40, 3, "state_epoch_1_ver_10.abcd")
}

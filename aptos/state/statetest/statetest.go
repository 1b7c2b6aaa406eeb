// Package statetest builds synthetic Aptos backup-cli state snapshots for tests: random
// keys and values hashed in a chain's domain, chunk files framed as backup-cli writes
// them, and for each chunk the range proof of its last leaf computed from the whole tree
// by a plain recursive reference implementation (independent of package state's
// streaming Tree).
package statetest

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/bcs"
	"github.com/ledgervault/ledgervault/aptos/state"
	"github.com/ledgervault/ledgervault/aptos/txn"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
)

// Chunk is one synthetic chunk: its manifest entry, its file (framed records, not
// compressed) and its proof file (BCS SparseMerkleRangeProof).
type Chunk struct {
	Manifest backupcli.StateSnapshotChunk
	Data     []byte
	Proof    []byte
}

// Snapshot is a synthetic state snapshot.
type Snapshot struct {
	Root   aptos.HashValue
	Chunks []Chunk
}

type leaf struct {
	key, value aptos.HashValue
	record     []byte
}

// Leaf is a tree leaf: a key hash and a value hash.
type Leaf struct{ Key, Value aptos.HashValue }

func toLeaves(ls []Leaf) []leaf {
	out := make([]leaf, len(ls))
	for i, l := range ls {
		out[i] = leaf{key: l.Key, value: l.Value}
	}
	return out
}

// Root returns the root of the tree of leaves (sorted by key, distinct) hashed with h,
// computed recursively.
func Root(h *state.Hasher, leaves []Leaf) aptos.HashValue { return subtree(h, toLeaves(leaves), 0) }

// RangeProof returns the BCS SparseMerkleRangeProof of leaves[i] in the tree of leaves
// (sorted by key, distinct), as aptos-core's get_range_proof serves it.
func RangeProof(h *state.Hasher, leaves []Leaf, i int) []byte {
	return encodeProof(rangeProof(h, toLeaves(leaves), i))
}

func encodeProof(right []aptos.HashValue) []byte {
	proof := bcs.AppendULEB128(nil, uint32(len(right)))
	for _, r := range right {
		proof = append(proof, r[:]...)
	}
	return proof
}

// Build returns a snapshot of n random records in chunks of at most perChunk records,
// hashed with h, named under folder (Blobs "folder/<first>-.chunk", Proof
// "folder/<first>-<last>.proof" as backup-cli names them), deterministic in seed.
func Build(h *state.Hasher, n, perChunk int, seed uint64, folder string) (*Snapshot, error) {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dec := state.NewDecoder(h)
	leaves := make([]leaf, 0, n)
	seen := map[aptos.HashValue]bool{}
	for len(leaves) < n {
		k, v := randomRecord(rng)
		b := state.AppendRecord(nil, &k, &v)
		rec, err := dec.DecodeRecord(b)
		if err != nil {
			return nil, fmt.Errorf("synthetic record: %w", err)
		}
		if seen[rec.KeyHash] {
			continue
		}
		seen[rec.KeyHash] = true
		leaves = append(leaves, leaf{key: rec.KeyHash, value: rec.ValueHash, record: b})
	}
	slices.SortFunc(leaves, func(a, b leaf) int { return compare(&a.key, &b.key) })
	s := &Snapshot{Root: subtree(h, leaves, 0)}
	for first := 0; first < n; first += perChunk {
		last := min(first+perChunk, n) - 1
		var data []byte
		for _, l := range leaves[first : last+1] {
			data = binary.BigEndian.AppendUint32(data, uint32(len(l.record)))
			data = append(data, l.record...)
		}
		proof := encodeProof(rangeProof(h, leaves, last))
		s.Chunks = append(s.Chunks, Chunk{
			Manifest: backupcli.StateSnapshotChunk{
				FirstIdx: uint64(first), LastIdx: uint64(last),
				FirstKey: backupcli.Hash(leaves[first].key), LastKey: backupcli.Hash(leaves[last].key),
				Blobs: storage.FileHandle(fmt.Sprintf("%s/%d-.chunk", folder, first)),
				Proof: storage.FileHandle(fmt.Sprintf("%s/%d-%d.proof", folder, first, last)),
			},
			Data: data, Proof: proof,
		})
	}
	return s, nil
}

// randomRecord returns a random key of each StateKey kind and a value with or without
// metadata.
func randomRecord(rng *rand.Rand) (txn.StateKey, state.StateValue) {
	var k txn.StateKey
	k.Kind = txn.StateKeyKind(rng.IntN(3))
	if k.Kind != txn.StateKeyRaw {
		for i := range k.Address {
			k.Address[i] = byte(rng.Uint32())
		}
	}
	k.Path = randomBytes(rng, 1+rng.IntN(40))
	v := state.StateValue{Data: randomBytes(rng, rng.IntN(200))}
	switch rng.IntN(3) {
	case 1:
		v.Metadata = &txn.StateValueMetadata{Deposit: rng.Uint64(), CreationTimeUsecs: rng.Uint64()}
	case 2:
		v.Metadata = &txn.StateValueMetadata{V1: true, Deposit: rng.Uint64(), BytesDeposit: rng.Uint64(), CreationTimeUsecs: rng.Uint64()}
	}
	return k, v
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// subtree returns the hash of the subtree at depth holding leaves (sorted, sharing
// their first depth bits): the placeholder when empty, the leaf when one, else the
// internal node of its two halves.
func subtree(h *state.Hasher, leaves []leaf, depth int) aptos.HashValue {
	switch len(leaves) {
	case 0:
		return aptos.SparseMerklePlaceholderHash
	case 1:
		return h.Leaf(&leaves[0].key, &leaves[0].value)
	}
	split := split(leaves, depth)
	l, r := subtree(h, leaves[:split], depth+1), subtree(h, leaves[split:], depth+1)
	return h.Internal(&l, &r)
}

// split returns the index of the first leaf whose bit depth is 1.
func split(leaves []leaf, depth int) int {
	i, _ := slices.BinarySearchFunc(leaves, 1, func(l leaf, _ int) int {
		if bit(&l.key, depth) == 0 {
			return -1
		}
		return 1
	})
	return i
}

// rangeProof returns the right siblings, bottom first, of the path from the root to
// leaves[i], as aptos-core's get_range_proof keeps them (one per zero bit above the
// leaf, empty subtrees included).
func rangeProof(h *state.Hasher, leaves []leaf, i int) []aptos.HashValue {
	var right []aptos.HashValue
	lo, hi := 0, len(leaves)
	for depth := 0; hi-lo > 1; depth++ {
		s := lo + split(leaves[lo:hi], depth)
		if i < s {
			right = append(right, subtree(h, leaves[s:hi], depth+1))
			hi = s
		} else {
			lo = s
		}
	}
	slices.Reverse(right)
	return right
}

func bit(h *aptos.HashValue, i int) int { return int(h[i>>3]>>(7-uint(i&7))) & 1 }

func compare(a, b *aptos.HashValue) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

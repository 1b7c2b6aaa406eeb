package state

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/format/backupcli"
)

// ErrManifest is wrapped when a chunk disagrees with its manifest entry (indexes, first
// or last key, chunk order).
var ErrManifest = errors.New("chunk disagrees with the manifest")

// Snapshot verifies a state snapshot's chunks in manifest order against the manifest's
// root hash. It is not safe for concurrent use.
type Snapshot struct {
	tree   *Tree
	dec    *Decoder
	next   uint64 // index of the next record expected
	chunks int
}

// NewSnapshot returns a Snapshot whose leaves must hash to root in h's domain.
func NewSnapshot(h *Hasher, root HashValue) *Snapshot {
	return &Snapshot{tree: NewTree(h, root), dec: NewDecoder(h)}
}

// Leaves returns the number of records verified so far.
func (s *Snapshot) Leaves() uint64 { return s.tree.Leaves() }

// Chunks returns the number of chunks accepted.
func (s *Snapshot) Chunks() int { return s.chunks }

// AddChunk reads chunk c's records from r (the decompressed chunk file) and its proof
// file's bytes, and checks them: the chunk follows the previous one (c.FirstIdx is the
// next index), it holds one record per index of [c.FirstIdx, c.LastIdx] whose first and
// last keys are c.FirstKey and c.LastKey, every record decodes, keys increase across
// chunks, and the tree so far with the proof hashes to the root. Errors name c.Blobs
// or c.Proof and the record's index. After an error the Snapshot must not be used.
func (s *Snapshot) AddChunk(ctx context.Context, r io.Reader, c backupcli.StateSnapshotChunk, proof []byte) error {
	if c.FirstIdx != s.next {
		return fmt.Errorf("%w: chunk %s starts at index %d, the previous chunk ended before index %d", ErrManifest, c.Blobs, c.FirstIdx, s.next)
	}
	if c.LastIdx < c.FirstIdx {
		return fmt.Errorf("%w: chunk %s has indexes [%d, %d]", ErrManifest, c.Blobs, c.FirstIdx, c.LastIdx)
	}
	p, err := aptos.DecodeSparseMerkleRangeProof(proof)
	if err != nil {
		return fmt.Errorf("chunk proof %s: %w", c.Proof, err)
	}
	want := c.LastIdx - c.FirstIdx + 1
	it := backupcli.NewRecords(r, backupcli.RecordLimits{MaxRecordSize: MaxRecordBytes})
	for it.Next() {
		i := uint64(it.Count() - 1)
		idx := c.FirstIdx + i
		if i >= want {
			return fmt.Errorf("%w: chunk %s has more than the %d records of indexes [%d, %d]", ErrManifest, c.Blobs, want, c.FirstIdx, c.LastIdx)
		}
		if i%4096 == 0 && ctx.Err() != nil {
			return ctx.Err()
		}
		rec, err := s.dec.DecodeRecord(it.Record())
		if err != nil {
			return fmt.Errorf("chunk %s record %d (index %d): %w", c.Blobs, i, idx, err)
		}
		if i == 0 && rec.KeyHash != HashValue(c.FirstKey) {
			return fmt.Errorf("%w: chunk %s record 0 (index %d) has key %s, manifest first_key %s", ErrManifest, c.Blobs, idx, rec.KeyHash, HashValue(c.FirstKey))
		}
		if err := s.tree.Add(rec.KeyHash, rec.ValueHash); err != nil {
			return fmt.Errorf("chunk %s record %d (index %d): %w", c.Blobs, i, idx, err)
		}
	}
	if err := it.Err(); err != nil {
		return fmt.Errorf("chunk %s after record %d: %w", c.Blobs, it.Count(), err)
	}
	if uint64(it.Count()) != want {
		return fmt.Errorf("%w: chunk %s has %d records, indexes [%d, %d] want %d", ErrManifest, c.Blobs, it.Count(), c.FirstIdx, c.LastIdx, want)
	}
	if last := s.tree.LastKey(); last != HashValue(c.LastKey) {
		return fmt.Errorf("%w: chunk %s record %d (index %d) has key %s, manifest last_key %s", ErrManifest, c.Blobs, want-1, c.LastIdx, last, HashValue(c.LastKey))
	}
	if err := s.tree.Verify(p); err != nil {
		return fmt.Errorf("chunk %s with range proof %s (records up to index %d): %w", c.Blobs, c.Proof, c.LastIdx, err)
	}
	s.next = c.LastIdx + 1
	s.chunks++
	return nil
}

// Finish checks, after the last chunk, that the records are the whole tree: they hash
// to the root with nothing after them.
func (s *Snapshot) Finish() error {
	if err := s.tree.Finish(); err != nil {
		return fmt.Errorf("state snapshot of %d records: %w", s.tree.Leaves(), err)
	}
	return nil
}

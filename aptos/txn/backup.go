package txn

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ledgervault/ledgervault/storage"
)

// MaxManifestSize is the largest transaction backup manifest DecodeManifest accepts.
const MaxManifestSize = 16 << 20

// Manifest is a backup-cli transaction backup manifest (TransactionBackup).
type Manifest struct {
	// FirstVersion and LastVersion are the backup's version range, inclusive.
	FirstVersion uint64 `json:"first_version"`
	// LastVersion is the last version of the backup.
	LastVersion uint64 `json:"last_version"`
	// Chunks cover the range in order, without gaps or overlaps.
	Chunks []ManifestChunk `json:"chunks"`
}

// ManifestChunk is one chunk of a Manifest.
type ManifestChunk struct {
	// FirstVersion and LastVersion are the chunk's version range, inclusive.
	FirstVersion uint64 `json:"first_version"`
	// LastVersion is the chunk's last version.
	LastVersion uint64 `json:"last_version"`
	// Transactions is the handle of the chunk's record file.
	Transactions string `json:"transactions"`
	// Proof is the handle of the chunk's proof file.
	Proof string `json:"proof"`
}

// DecodeManifest parses a transaction backup manifest and checks it as backup-cli's
// TransactionBackup::verify does (chunks consecutive, covering exactly the range),
// plus that every handle is a safe relative path (storage.ValidateHandle).
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("transaction manifest: %d bytes, limit %d", len(b), MaxManifestSize)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("transaction manifest: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("transaction manifest: data after the JSON object")
	}
	if m.FirstVersion > m.LastVersion {
		return nil, fmt.Errorf("transaction manifest: first version %d after last %d", m.FirstVersion, m.LastVersion)
	}
	if m.LastVersion >= maxVersion {
		return nil, fmt.Errorf("transaction manifest: last version %d beyond the accumulator's capacity", m.LastVersion)
	}
	if len(m.Chunks) == 0 {
		return nil, fmt.Errorf("transaction manifest: no chunks")
	}
	next := m.FirstVersion
	for i, c := range m.Chunks {
		if c.FirstVersion != next {
			return nil, fmt.Errorf("transaction manifest: chunk %d starts at version %d, want %d", i, c.FirstVersion, next)
		}
		if c.LastVersion < c.FirstVersion {
			return nil, fmt.Errorf("transaction manifest: chunk %d ends at %d before it starts at %d", i, c.LastVersion, c.FirstVersion)
		}
		for _, h := range []string{c.Transactions, c.Proof} {
			if err := storage.ValidateHandle(h); err != nil {
				return nil, fmt.Errorf("transaction manifest: chunk %d: %w", i, err)
			}
		}
		next = c.LastVersion + 1
	}
	if last := m.Chunks[len(m.Chunks)-1].LastVersion; last != m.LastVersion {
		return nil, fmt.Errorf("transaction manifest: chunks end at version %d, manifest at %d", last, m.LastVersion)
	}
	return &m, nil
}

// Opener opens a file of backup storage by its handle. The stream must be the file's
// content as backup-cli wrote it through the store's configuration (for a
// command-adapter store with gzip -cd, the decompressed bytes). storage.Store
// satisfies it.
type Opener interface {
	Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error)
}

// BackupStats describe a verified transaction backup.
type BackupStats struct {
	// Chunks is the number of chunks verified.
	Chunks int
	// Total sums the chunks' Stats (its ledger info fields are the last chunk's).
	Total Stats
}

// VerifyBackup verifies every chunk of a transaction backup in order with VerifyChunk,
// opening the files through open. An error names the file; one opening a file wraps
// the opener's error, so a caller can tell a missing file (storage.ErrNotFound,
// fs.ErrNotExist) from a false one.
func VerifyBackup(ctx context.Context, open Opener, m *Manifest, opts Options) (BackupStats, error) {
	var bs BackupStats
	for _, mc := range m.Chunks {
		c := Chunk{Name: mc.Transactions, ProofName: mc.Proof, FirstVersion: mc.FirstVersion, LastVersion: mc.LastVersion}
		proof, err := readProof(ctx, open, mc.Proof)
		if err != nil {
			return bs, err
		}
		rc, err := open.Open(ctx, storage.FileHandle(mc.Transactions))
		if err != nil {
			return bs, fmt.Errorf("chunk %s: open: %w", mc.Transactions, err)
		}
		st, err := VerifyChunk(ctx, c, rc, proof, opts)
		cerr := rc.Close()
		if err != nil {
			return bs, err
		}
		if cerr != nil {
			return bs, fmt.Errorf("chunk %s: close: %w", mc.Transactions, cerr)
		}
		if opts.Domain == nil {
			opts.Domain = st.domain
		}
		bs.Chunks++
		t := &bs.Total
		t.Transactions += st.Transactions
		t.RecordBytes += st.RecordBytes
		t.Events += st.Events
		t.WriteSetEntries += st.WriteSetEntries
		t.UserTransactions += st.UserTransactions
		t.Domain, t.LedgerInfoEpoch, t.LedgerInfoVersion = st.Domain, st.LedgerInfoEpoch, st.LedgerInfoVersion
		t.domain = st.domain
	}
	return bs, nil
}

// readProof reads a proof file whole, refusing one above the proof size limit before
// reading it all.
func readProof(ctx context.Context, open Opener, h string) ([]byte, error) {
	rc, err := open.Open(ctx, storage.FileHandle(h))
	if err != nil {
		return nil, fmt.Errorf("proof %s: open: %w", h, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxProofFile+1))
	if err != nil {
		return nil, fmt.Errorf("proof %s: read: %w", h, err)
	}
	if len(b) > maxProofFile {
		return nil, fmt.Errorf("proof %s: larger than %d bytes", h, maxProofFile)
	}
	return b, nil
}

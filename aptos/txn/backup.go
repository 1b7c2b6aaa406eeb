package txn

import (
	"context"
	"fmt"
	"io"

	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
)

// checkManifest checks a decoded transaction backup manifest before its chunks are
// verified: what backup-cli's TransactionBackup::verify checks (chunks consecutive,
// covering exactly the range: backupcli's Verify), and that the range fits the
// accumulator.
func checkManifest(m *backupcli.TransactionManifest) error {
	if err := m.Verify(); err != nil {
		return fmt.Errorf("transaction manifest: %w", err)
	}
	if m.LastVersion >= maxVersion {
		return fmt.Errorf("transaction manifest: last version %d beyond the accumulator's capacity", m.LastVersion)
	}
	return nil
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

// VerifyBackup checks the manifest m (decoded by backupcli.DecodeTransactionManifest)
// and verifies every chunk of the transaction backup in order with VerifyChunk,
// opening the files through open. An error names the file; one opening a file wraps
// the opener's error, so a caller can tell a missing file (storage.ErrNotFound,
// fs.ErrNotExist) from a false one.
func VerifyBackup(ctx context.Context, open Opener, m *backupcli.TransactionManifest, opts Options) (BackupStats, error) {
	var bs BackupStats
	if err := checkManifest(m); err != nil {
		return bs, err
	}
	for _, mc := range m.Chunks {
		c := Chunk{Name: string(mc.Transactions), ProofName: string(mc.Proof), FirstVersion: mc.FirstVersion, LastVersion: mc.LastVersion}
		proof, err := readProof(ctx, open, string(mc.Proof))
		if err != nil {
			return bs, err
		}
		rc, err := open.Open(ctx, mc.Transactions)
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

package aptosverify

import (
	"context"
	"fmt"
	"strings"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/state"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
)

// stateSnapshot verifies a state snapshot and adds its row: state.proof's ledger info
// against the history, its transaction info into that ledger info's accumulator at the
// snapshot's version, and the manifest's root_hash equal to the info's state checkpoint
// hash; then the chunks in manifest order, rebuilt into the Jellyfish tree (package
// aptos/state), each chunk's range proof against root_hash and, after the last, the
// whole tree equal to it. A snapshot whose chunks (or chunk proofs) are missing is
// "incomplete": the chunks before the first missing one are verified, the proven root
// is reported, and the rest is not called verified.
func (v *verifier) stateSnapshot(ctx context.Context, b backupcli.Backup, hist *aptos.EpochHistory) error {
	row := Row{Type: b.Type, Range: fmt.Sprintf("version %d", b.First), Manifest: b.Manifest}
	defer func() { v.add(row) }()
	m := v.manifest(b, &row)
	if m == nil {
		return nil
	}
	sm := m.StateSnapshot
	if hist == nil {
		row.Status, row.Error = StatusNotChecked, "no verified epoch history"
		return nil
	}
	proof, err := v.readSmall(ctx, sm.Proof, &row)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if missing(&row, sm.Proof, err) {
			row.Status, row.Error = StatusIncomplete, fmt.Sprintf("%s is missing: the root cannot be proven", sm.Proof)
			return nil
		}
		row.Status, row.Error = StatusFailed, err.Error()
		return nil
	}
	p, err := hist.VerifyStateSnapshot(proof, sm.Version, aptos.HashValue(sm.RootHash))
	if err != nil {
		row.Status, row.Error = StatusFailed, fmt.Sprintf("%s (manifest root_hash %s): %v", sm.Proof, sm.RootHash, err)
		return nil
	}
	v.rep.StateRootProofs++
	proven := fmt.Sprintf("root %s proven by %s (ledger info of epoch %d, version %d)", sm.RootHash, sm.Proof,
		p.LedgerInfo.LedgerInfo.Epoch(), p.LedgerInfo.LedgerInfo.Version())
	return v.stateTree(ctx, sm, hist.Domain(), proven, &row)
}

// stateTree verifies the chunks of a snapshot whose root_hash is proven (proven says
// how) and sets row's verdict.
func (v *verifier) stateTree(ctx context.Context, sm *backupcli.StateSnapshotManifest, d *aptos.Domain, proven string, row *Row) error {
	if len(sm.Chunks) == 0 {
		if aptos.HashValue(sm.RootHash) != aptos.SparseMerklePlaceholderHash {
			row.Status, row.Error = StatusFailed, fmt.Sprintf("%s; the manifest lists no chunks, but the root is not the empty tree's", proven)
			return nil
		}
		row.Status, row.Detail = StatusVerified, proven+" (the empty tree)" // no chunks: the root proof is all there is
		return nil
	}
	snap := state.NewSnapshot(state.NewHasher(d), aptos.HashValue(sm.RootHash))
	failed, err := v.stateChunks(ctx, sm.Chunks, snap, row)
	switch {
	case err != nil:
		return err
	case failed != nil:
		row.Status, row.Error = StatusFailed, fmt.Sprintf("%s; %v", proven, failed)
	case len(row.Missing) > 0:
		row.Status = StatusIncomplete
		row.Error = fmt.Sprintf("missing %s; the proven part passed: %s; %d records in the %d chunks before the first missing one verified against it",
			joinHandles(row.Missing), proven, snap.Leaves(), snap.Chunks())
	default:
		if err := snap.Finish(); err != nil {
			row.Status, row.Error = StatusFailed, fmt.Sprintf("%s; chunks %s-%s: %v", proven, sm.Chunks[0].Blobs, sm.Chunks[len(sm.Chunks)-1].Blobs, err)
			return nil
		}
		v.rep.StateRecords += snap.Leaves()
		row.Status = StatusVerified
		row.Detail = fmt.Sprintf("%s; %d records in %d chunks rebuilt into the Jellyfish tree with that root", proven, snap.Leaves(), snap.Chunks())
	}
	return nil
}

// stateChunks feeds the chunks to snap in order until one is missing, then only checks
// that the rest are present (the tree cannot continue past a gap). It returns the
// verdict on the first chunk that fails (naming its file), or an error that stops
// verification (cancellation).
func (v *verifier) stateChunks(ctx context.Context, chunks []backupcli.StateSnapshotChunk, snap *state.Snapshot, row *Row) (failed, stop error) {
	gap := false
	for _, c := range chunks {
		proof, err := v.readSmall(ctx, c.Proof, row)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case missing(row, c.Proof, err):
			gap = true
		default:
			return fmt.Errorf("chunk proof %s: %w", c.Proof, err), nil
		}
		r, closer, cr, err := v.open(ctx, c.Blobs)
		switch {
		case err == nil:
		case ctx.Err() != nil:
			return nil, ctx.Err()
		case missing(row, c.Blobs, err):
			gap = true
			continue
		default:
			return fmt.Errorf("chunk %s: %w", c.Blobs, err), nil
		}
		if gap {
			closer.Close()
			row.Files++
			continue
		}
		err = snap.AddChunk(ctx, r, c, proof)
		closer.Close()
		row.Files++
		row.Bytes += cr.n
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return err, nil
		}
	}
	return nil, nil
}

func joinHandles(hs []storage.FileHandle) string {
	s := make([]string, len(hs))
	for i, h := range hs {
		s[i] = string(h)
	}
	return strings.Join(s, ", ")
}

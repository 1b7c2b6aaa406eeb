package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/pipeline"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/storage"
)

// EpochEndVersion returns the version of the ledger info that ended epoch: the
// default version of a state snapshot of that epoch.
func EpochEndVersion(ctx context.Context, svc EpochSource, epoch uint64) (uint64, error) {
	li, err := fetchEnding(ctx, svc, epoch)
	if err != nil {
		return 0, err
	}
	return li.LedgerInfo.Version, nil
}

// stateChunk is one chunk written by a worker, with what the sink verifies.
type stateChunk struct {
	desc   native.StateSnapshotChunk
	leaves []smt.Leaf
	proof  smt.RangeProof
}

// StateSnapshot backs up all state at version: items in key-hash order cut into
// chunks of at most MaxChunkSize raw bytes, each with the range proof of its last
// item, and the proof that ties the state root to a signed ledger info. Every chunk
// is checked with a chunk verifier against that root before the manifest is written.
// An interrupted backup can be resumed with ResumeStateSnapshot.
func StateSnapshot(ctx context.Context, svc StateSource, st storage.Store, version uint64, opts Options) (*Result, error) {
	return stateSnapshot(ctx, svc, st, version, opts, freshAttempt())
}

// stateSnapshot is StateSnapshot as attempt a: the first, in a new folder, or one
// continuing the folder of an interrupted attempt (see resume.go).
func stateSnapshot(ctx context.Context, svc StateSource, st storage.Store, version uint64, opts Options, a *attempt) (*Result, error) {
	start := time.Now()
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	metaName := native.MetadataName(&native.Metadata{Type: native.TypeStateSnapshot, Version: version})
	if err := checkNotBackedUp(ctx, st, metaName); err != nil {
		return nil, err
	}
	rp, err := svc.StateRootProof(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("state root proof at version %d: %w", version, err)
	}
	root, err := rp.Verify(version, &rp.LedgerInfo.LedgerInfo)
	if err != nil {
		return nil, fmt.Errorf("state root proof at version %d: %w", version, err)
	}
	n, err := svc.StateItemCount(ctx, version)
	if err != nil {
		return nil, fmt.Errorf("state item count at version %d: %w", version, err)
	}
	reportTotal(o.Progress, n)
	b := a.folder
	if b == "" {
		if b, err = st.CreateBackup(ctx, native.StateSnapshotFolder(version)); err != nil {
			return nil, fmt.Errorf("create backup folder: %w", err)
		}
	}
	o.Logger.Info("state snapshot backup", "version", version, "items", n, "root", root, "folder", b)
	rpBytes, err := rp.Encode()
	if err != nil {
		return nil, fmt.Errorf("encode state root proof: %w", err)
	}
	rootFile, err := native.WriteFile(ctx, st, b, a.name(native.StateRootProofName), rpBytes, &o.Stats.WriteStats)
	if err != nil {
		return nil, err
	}
	m := &native.StateSnapshot{
		Format: native.FormatVersion, Version: version, Epoch: rp.LedgerInfo.LedgerInfo.Epoch,
		RootHash: root, ItemCount: n, RootProof: rootFile,
	}

	var next uint64
	src := func(ctx context.Context) (uint64, bool, error) {
		if next >= n {
			return 0, false, nil
		}
		s := next
		next += o.StateRequestItems
		return s, true, nil
	}
	work := func(ctx context.Context, first uint64) ([]stateChunk, error) {
		return stateRange(ctx, svc, st, b, version, first, min(o.StateRequestItems, n-first), o, a)
	}
	ver := smt.NewChunkVerifier(root)
	sink := func(ctx context.Context, cs []stateChunk) error {
		for i := range cs {
			c := &cs[i]
			t0 := time.Now()
			_, err := ver.AddChunk(c.leaves, c.proof)
			timed(&o.Stats.VerifyNanos, t0)
			if err != nil {
				return fmt.Errorf("verify state chunk %s (items %d-%d): %w", c.desc.Handle, c.desc.FirstIndex, c.desc.LastIndex, err)
			}
			m.Chunks = append(m.Chunks, c.desc)
		}
		return nil
	}
	if err := pipeline.Ordered(ctx, pipeline.Options{Workers: o.Concurrency, Buffered: o.Concurrency}, src, work, sink); err != nil {
		return nil, err
	}
	if n > 0 {
		if _, _, err := ver.Finish(); err != nil {
			return nil, fmt.Errorf("verify state snapshot at version %d: %w", version, err)
		}
	}
	meta := native.Metadata{Type: native.TypeStateSnapshot, Version: version, Epoch: m.Epoch}
	return finishNamed(ctx, st, b, a.name(native.ManifestName), m, meta, o, start, a.reusedBytes())
}

// stateRange streams count items from first and writes them as one or more chunks
// (after the chunks of earlier attempts that a reuses).
func stateRange(ctx context.Context, svc StateSource, st storage.Store, b storage.BackupHandle, version, first, count uint64, o *Options, a *attempt) ([]stateChunk, error) {
	out, idx, err := a.reuseRange(ctx, st, first, first+count, o)
	if err != nil || idx == first+count {
		return out, err
	}
	t0 := time.Now()
	s, err := svc.StateSnapshotChunk(ctx, version, idx, first+count-idx)
	timed(&o.Stats.FetchNanos, t0)
	if err != nil {
		return nil, fmt.Errorf("state items %d+%d at version %d: %w", idx, first+count-idx, version, err)
	}
	defer s.Close()
	if s.Expected() != first+count-idx {
		return nil, fmt.Errorf("state items %d+%d: service announced %d", idx, first+count-idx, s.Expected())
	}
	var cw *native.ChunkWriter
	defer func() {
		if cw != nil {
			cw.Abort()
		}
	}()
	var cur stateChunk
	// cut commits the current chunk and fetches the range proof of its last item.
	cut := func() error {
		f, err := cw.Commit(&o.Stats.WriteStats)
		cw.Abort() // a no-op after a successful commit
		cw = nil
		if err != nil {
			return err
		}
		last := cur.leaves[len(cur.leaves)-1].KeyHash
		t0 := time.Now()
		proof, err := svc.StateRangeProof(ctx, version, last)
		timed(&o.Stats.FetchNanos, t0)
		if err != nil {
			return fmt.Errorf("range proof of state chunk %s: %w", f.Handle, err)
		}
		pb, err := proof.MarshalBinary()
		if err != nil {
			return fmt.Errorf("encode range proof of %s: %w", f.Handle, err)
		}
		pf, err := native.WriteFile(ctx, st, b, a.name(native.StateProofName(cur.desc.FirstIndex)), pb, &o.Stats.WriteStats)
		if err != nil {
			return err
		}
		cur.desc.LastIndex = cur.desc.FirstIndex + uint64(len(cur.leaves)) - 1
		cur.desc.LastKeyHash = last
		cur.desc.File = f
		cur.desc.Proof = pf
		cur.proof = proof
		out = append(out, cur)
		cur = stateChunk{}
		return nil
	}
	// The stream times its reads of the response body: no clock per record.
	defer func() { o.Stats.FetchNanos.Add(int64(s.Waited())) }()
	for s.Next() {
		if s.Index() != idx {
			return nil, fmt.Errorf("state stream at %d: item index %d", idx, s.Index())
		}
		rec := s.Record()
		if cw != nil && !cw.Fits(len(rec), o.MaxChunkSize) {
			if err := cut(); err != nil {
				return nil, err
			}
		}
		if cw == nil {
			if cw, err = native.CreateChunk(ctx, st, b, a.name(native.StateChunkName(idx)), o.chunkOptions()); err != nil {
				return nil, err
			}
			cur.desc.FirstIndex = idx
			cur.leaves = make([]smt.Leaf, 0, min(count-(idx-first), 1<<14))
		}
		kh := smt.KeyHash(s.Key())
		if len(cur.leaves) == 0 {
			cur.desc.FirstKeyHash = kh
		}
		cur.leaves = append(cur.leaves, smt.Leaf{KeyHash: kh, ValueHash: smt.ValueHash(s.Value())})
		if err := cw.WriteRecord(rec); err != nil {
			return nil, err
		}
		idx++
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("state items %d+%d at version %d: %w", first, count, version, err)
	}
	if idx != first+count {
		return nil, fmt.Errorf("state items %d+%d: stream ended after %d items", first, count, idx-first)
	}
	if cw != nil {
		if err := cut(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

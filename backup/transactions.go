package backup

import (
	"context"
	"fmt"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/pipeline"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/storage"
)

// Transactions backs up versions [first, first+count): transactions with their
// infos, events and write sets, cut into chunks of at most MaxChunkSize raw bytes,
// each with its accumulator range proof and the signed ledger info it verifies
// against. Every chunk's transactions are decoded (which checks that each info
// commits to its transaction, write set and events) and verified against the proof
// before the chunk is committed.
func Transactions(ctx context.Context, svc TransactionSource, st storage.Store, first, count uint64, opts Options) (*Result, error) {
	start := time.Now()
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if count == 0 || first+count < first {
		return nil, fmt.Errorf("transaction backup: bad range %d+%d", first, count)
	}
	last := first + count - 1
	metaName := native.MetadataName(&native.Metadata{Type: native.TypeTransaction, FirstVersion: first, LastVersion: last})
	if err := checkNotBackedUp(ctx, st, metaName); err != nil {
		return nil, err
	}
	ds, err := svc.DBState(ctx)
	if err != nil {
		return nil, fmt.Errorf("db state: %w", err)
	}
	if ds.CommittedVersion == nil || *ds.CommittedVersion < last {
		return nil, fmt.Errorf("transaction backup of versions [%d, %d]: the node has committed only up to %v", first, last, ds.CommittedVersion)
	}
	if first < ds.FirstTxnVersion {
		return nil, fmt.Errorf("transaction backup of versions [%d, %d]: the node stores transactions from %d", first, last, ds.FirstTxnVersion)
	}
	reportTotal(o.Progress, count)
	b, err := st.CreateBackup(ctx, native.TransactionFolder(first, last))
	if err != nil {
		return nil, fmt.Errorf("create backup folder: %w", err)
	}
	o.Logger.Info("transaction backup", "first_version", first, "last_version", last, "folder", b)
	m := &native.Transaction{Format: native.FormatVersion, FirstVersion: first, LastVersion: last}
	next := first
	src := func(ctx context.Context) (uint64, bool, error) {
		if next > last {
			return 0, false, nil
		}
		s := next
		next += min(o.TransactionRequest, last-s+1)
		return s, true, nil
	}
	work := func(ctx context.Context, s uint64) ([]native.TransactionChunk, error) {
		return txnRange(ctx, svc, st, b, s, min(o.TransactionRequest, last-s+1), o)
	}
	sink := func(ctx context.Context, cs []native.TransactionChunk) error {
		m.Chunks = append(m.Chunks, cs...)
		return nil
	}
	if err := pipeline.Ordered(ctx, pipeline.Options{Workers: o.Concurrency, Buffered: o.Concurrency}, src, work, sink); err != nil {
		return nil, err
	}
	meta := native.Metadata{Type: native.TypeTransaction, FirstVersion: first, LastVersion: last}
	return finish(ctx, st, b, m, meta, o, start)
}

// txnRange streams count transactions from first and writes them as one or more
// verified chunks.
func txnRange(ctx context.Context, svc TransactionSource, st storage.Store, b storage.BackupHandle, first, count uint64, o *Options) ([]native.TransactionChunk, error) {
	t0 := time.Now()
	s, err := svc.Transactions(ctx, first, count)
	timed(&o.Stats.FetchNanos, t0)
	if err != nil {
		return nil, fmt.Errorf("transactions %d+%d: %w", first, count, err)
	}
	defer s.Close()
	var out []native.TransactionChunk
	var cw *native.ChunkWriter
	defer func() {
		if cw != nil {
			cw.Abort()
		}
	}()
	var cur native.TransactionChunk
	var hashes []ledger.Hash
	cut := func() error {
		cur.LastVersion = cur.FirstVersion + uint64(len(hashes)) - 1
		t0 := time.Now()
		p, err := svc.TransactionRangeProof(ctx, cur.FirstVersion, cur.LastVersion)
		timed(&o.Stats.FetchNanos, t0)
		if err != nil {
			return fmt.Errorf("range proof of transactions [%d, %d]: %w", cur.FirstVersion, cur.LastVersion, err)
		}
		li := &p.LedgerInfo.LedgerInfo
		t0 = time.Now()
		if li.Version < cur.LastVersion {
			err = fmt.Errorf("ledger info at version %d does not cover %d", li.Version, cur.LastVersion)
		} else {
			err = accumulator.VerifyRange(li.AccumulatorRoot, li.Version+1, cur.FirstVersion, hashes, p.Proof)
		}
		timed(&o.Stats.VerifyNanos, t0)
		if err != nil {
			return fmt.Errorf("verify transactions [%d, %d]: %w", cur.FirstVersion, cur.LastVersion, err)
		}
		f, err := cw.Commit(&o.Stats.WriteStats)
		cw.Abort()
		cw = nil
		if err != nil {
			return err
		}
		pb, err := p.Encode()
		if err != nil {
			return fmt.Errorf("encode range proof of %s: %w", f.Handle, err)
		}
		pf, err := native.WriteFile(ctx, st, b, native.TransactionProofName(cur.FirstVersion), pb, &o.Stats.WriteStats)
		if err != nil {
			return err
		}
		cur.File, cur.Proof = f, pf
		out = append(out, cur)
		cur = native.TransactionChunk{}
		hashes = hashes[:0]
		return nil
	}
	v := first
	for {
		t0 := time.Now()
		ok := s.Next()
		timed(&o.Stats.FetchNanos, t0)
		if !ok {
			break
		}
		if s.Version() != v {
			return nil, fmt.Errorf("transaction stream at %d: version %d", v, s.Version())
		}
		raw := s.Raw()
		if cw != nil && !cw.Fits(len(raw), o.MaxChunkSize) {
			if err := cut(); err != nil {
				return nil, err
			}
		}
		if cw == nil {
			if cw, err = native.CreateChunk(ctx, st, b, native.TransactionChunkName(v), o.chunkOptions()); err != nil {
				return nil, err
			}
			cur.FirstVersion = v
		}
		t0 = time.Now()
		txn, err := s.Transaction()
		timed(&o.Stats.VerifyNanos, t0)
		if err != nil {
			return nil, fmt.Errorf("transaction %d: %w", v, err)
		}
		hashes = append(hashes, txn.Info.Hash())
		if err := cw.WriteRecord(raw); err != nil {
			return nil, err
		}
		v++
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("transactions %d+%d: %w", first, count, err)
	}
	if v != first+count {
		return nil, fmt.Errorf("transactions %d+%d: stream ended after %d", first, count, v-first)
	}
	if cw != nil {
		if err := cut(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

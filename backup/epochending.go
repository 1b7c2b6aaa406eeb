package backup

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/pipeline"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/storage"
)

// epochsPerRequest is how many epoch endings one worker fetches at once.
const epochsPerRequest = 1000

// epochChunk is one chunk of ledger infos written by a worker.
type epochChunk struct {
	desc native.EpochEndingChunk
	lis  []ledger.LedgerInfoWithSignatures
}

// EpochEnding backs up the signed ledger infos that ended epochs [firstEpoch,
// endEpoch), with the waypoint of each in the manifest. The chain is verified before
// the manifest is written: each ending is signed by a quorum of the validator set
// the previous ending named (starting from the ending of firstEpoch-1, fetched from
// the service, or from genesis). Before its folder is created, the service is asked
// for the ending of endEpoch-1: an unreachable service, or a range beyond the
// epochs the node has ended (ErrRangeBeyondNode), leaves nothing in storage.
func EpochEnding(ctx context.Context, svc EpochSource, st storage.Store, firstEpoch, endEpoch uint64, opts Options) (*Result, error) {
	start := time.Now()
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	if endEpoch <= firstEpoch {
		return nil, fmt.Errorf("epoch ending backup: empty epoch range [%d, %d)", firstEpoch, endEpoch)
	}
	lastEpoch := endEpoch - 1
	metaName := native.MetadataName(&native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: firstEpoch, LastEpoch: lastEpoch})
	if err := checkNotBackedUp(ctx, st, metaName); err != nil {
		return nil, err
	}
	// The range is checked with the service before anything is created: its last
	// ending must exist (the answer names the epochs the node has ended).
	if _, err := fetchEnding(ctx, svc, lastEpoch); err != nil {
		if errors.Is(err, backupservice.ErrNotFound) {
			return nil, beyondNode(ctx, svc, firstEpoch, endEpoch, err)
		}
		return nil, fmt.Errorf("epoch ending backup of epochs [%d, %d): %w", firstEpoch, endEpoch, err)
	}
	// The history that verifies the chain starts at the ending before firstEpoch
	// (or at the genesis ledger info, which ends epoch 0 and is trusted as is).
	var hist *ledger.EpochHistory
	if firstEpoch > 0 {
		prev, err := fetchEnding(ctx, svc, firstEpoch-1)
		if err != nil {
			return nil, err
		}
		if hist, err = ledger.NewEpochHistory(ledger.NewWaypoint(&prev.LedgerInfo), &prev.LedgerInfo); err != nil {
			return nil, fmt.Errorf("epoch %d ending: %w", firstEpoch-1, err)
		}
	}
	reportTotal(o.Progress, endEpoch-firstEpoch)
	b, err := st.CreateBackup(ctx, native.EpochEndingFolder(firstEpoch, lastEpoch))
	if err != nil {
		return nil, fmt.Errorf("create backup folder: %w", err)
	}
	o.Logger.Info("epoch ending backup", "first_epoch", firstEpoch, "last_epoch", lastEpoch, "folder", b)
	m := &native.EpochEnding{Format: native.FormatVersion, FirstEpoch: firstEpoch, LastEpoch: lastEpoch}
	var firstVersion, lastVersion uint64
	next := firstEpoch
	src := func(ctx context.Context) (uint64, bool, error) {
		if next >= endEpoch {
			return 0, false, nil
		}
		s := next
		next += min(epochsPerRequest, endEpoch-s)
		return s, true, nil
	}
	work := func(ctx context.Context, s uint64) ([]epochChunk, error) {
		return epochRange(ctx, svc, st, b, s, min(epochsPerRequest, endEpoch-s), o)
	}
	sink := func(ctx context.Context, cs []epochChunk) error {
		t0 := time.Now()
		defer timed(&o.Stats.VerifyNanos, t0)
		for _, c := range cs {
			for i := range c.lis {
				li := &c.lis[i]
				var err error
				if hist == nil {
					hist, err = ledger.NewEpochHistory(ledger.NewWaypoint(&li.LedgerInfo), &li.LedgerInfo)
				} else {
					err = hist.Append(li)
				}
				if err != nil {
					return fmt.Errorf("verify ending of epoch %d in %s: %w", li.LedgerInfo.Epoch, c.desc.Handle, err)
				}
				if li.LedgerInfo.Epoch == firstEpoch {
					firstVersion = li.LedgerInfo.Version
				}
				lastVersion = li.LedgerInfo.Version
				m.Waypoints = append(m.Waypoints, ledger.NewWaypoint(&li.LedgerInfo))
			}
			m.Chunks = append(m.Chunks, c.desc)
		}
		return nil
	}
	if err := pipeline.Ordered(ctx, pipeline.Options{Workers: o.Concurrency, Buffered: o.Concurrency}, src, work, sink); err != nil {
		return nil, err
	}
	meta := native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: firstEpoch, LastEpoch: lastEpoch, FirstVersion: firstVersion, LastVersion: lastVersion}
	return finish(ctx, st, b, m, meta, o, start)
}

// dbStater is the part of a node's service that says what it holds
// (*backupservice.Client has it).
type dbStater interface {
	DBState(ctx context.Context) (proof.DBState, error)
}

// beyondNode is the error of an epoch range whose last ending the node does not
// have: it names the range asked for and, when the service says, the epochs the
// node has ended.
func beyondNode(ctx context.Context, svc EpochSource, firstEpoch, endEpoch uint64, cause error) error {
	if ds, ok := svc.(dbStater); ok {
		if st, err := ds.DBState(ctx); err == nil {
			if ended, err := EndedEpochs(st); err == nil {
				return fmt.Errorf("epoch ending backup of epochs [%d, %d): %w: the node has ended epochs [0, %d) only (epoch %d is in progress); nothing was backed up: ask for an end epoch of at most %d",
					firstEpoch, endEpoch, ErrRangeBeyondNode, ended, ended, ended)
			}
		}
	}
	return fmt.Errorf("epoch ending backup of epochs [%d, %d): %w: the ending of epoch %d, the last one asked for, is not on the node; nothing was backed up (%v)",
		firstEpoch, endEpoch, ErrRangeBeyondNode, endEpoch-1, cause)
}

// EndedEpochs returns the number of epochs whose ending the node of st has
// committed: epochs [0, n) have ended.
func EndedEpochs(st proof.DBState) (uint64, error) {
	if st.CommittedVersion == nil {
		return 0, nil
	}
	li, err := st.LedgerInfo()
	if err != nil {
		return 0, err
	}
	n := li.LedgerInfo.Epoch
	if li.LedgerInfo.EndsEpoch() {
		n++
	}
	return n, nil
}

func fetchEnding(ctx context.Context, svc EpochSource, epoch uint64) (ledger.LedgerInfoWithSignatures, error) {
	s, err := svc.EpochEndingLedgerInfos(ctx, epoch, epoch+1)
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("ending of epoch %d: %w", epoch, err)
	}
	defer s.Close()
	if !s.Next() {
		err := s.Err()
		if err == nil {
			err = fmt.Errorf("empty answer")
		}
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("ending of epoch %d: %w", epoch, err)
	}
	li, err := s.LedgerInfo()
	if err == nil && li.LedgerInfo.Epoch != epoch {
		err = fmt.Errorf("service sent epoch %d", li.LedgerInfo.Epoch)
	}
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("ending of epoch %d: %w", epoch, err)
	}
	return li, nil
}

// epochRange streams the endings of count epochs from first and writes them as one
// or more chunks.
func epochRange(ctx context.Context, svc EpochSource, st storage.Store, b storage.BackupHandle, first, count uint64, o *Options) ([]epochChunk, error) {
	t0 := time.Now()
	s, err := svc.EpochEndingLedgerInfos(ctx, first, first+count)
	timed(&o.Stats.FetchNanos, t0)
	if err != nil {
		return nil, fmt.Errorf("endings of epochs [%d, %d): %w", first, first+count, err)
	}
	defer s.Close()
	var out []epochChunk
	var cw *native.ChunkWriter
	defer func() {
		if cw != nil {
			cw.Abort()
		}
	}()
	var cur epochChunk
	cut := func() error {
		f, err := cw.Commit(&o.Stats.WriteStats)
		cw.Abort()
		cw = nil
		if err != nil {
			return err
		}
		cur.desc.LastEpoch = cur.desc.FirstEpoch + uint64(len(cur.lis)) - 1
		cur.desc.File = f
		out = append(out, cur)
		cur = epochChunk{}
		return nil
	}
	e := first
	for {
		t0 := time.Now()
		ok := s.Next()
		timed(&o.Stats.FetchNanos, t0)
		if !ok {
			break
		}
		li, err := s.LedgerInfo()
		if err != nil {
			return nil, fmt.Errorf("ending of epoch %d: %w", e, err)
		}
		if s.Epoch() != e || li.LedgerInfo.Epoch != e {
			return nil, fmt.Errorf("epoch ending stream at %d: epoch %d", e, li.LedgerInfo.Epoch)
		}
		raw := s.Raw()
		if cw != nil && !cw.Fits(len(raw), o.MaxChunkSize) {
			if err := cut(); err != nil {
				return nil, err
			}
		}
		if cw == nil {
			if cw, err = native.CreateChunk(ctx, st, b, native.EpochChunkName(e), o.chunkOptions()); err != nil {
				return nil, err
			}
			cur.desc.FirstEpoch = e
		}
		cur.lis = append(cur.lis, li)
		if err := cw.WriteRecord(raw); err != nil {
			return nil, err
		}
		e++
	}
	if err := s.Err(); err != nil {
		return nil, fmt.Errorf("endings of epochs [%d, %d): %w", first, first+count, err)
	}
	if e != first+count {
		return nil, fmt.Errorf("endings of epochs [%d, %d): stream ended at %d", first, first+count, e)
	}
	if cw != nil {
		if err := cut(); err != nil {
			return nil, err
		}
	}
	return out, nil
}

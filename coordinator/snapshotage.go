package coordinator

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ending is what the coordinator needs of the ledger info that ended an epoch.
type ending struct {
	version       uint64
	timestampUsec uint64
}

// ending returns the version and timestamp of the ledger info that ended epoch e,
// asking the node once per epoch.
func (c *coord) ending(ctx context.Context, e uint64) (ending, error) {
	if en, ok := c.endings[e]; ok {
		return en, nil
	}
	s, err := c.cfg.Service.EpochEndingLedgerInfos(ctx, e, e+1)
	if err != nil {
		return ending{}, fmt.Errorf("ending of epoch %d: %w", e, err)
	}
	defer s.Close()
	if !s.Next() {
		err := s.Err()
		if err == nil {
			err = errors.New("empty answer")
		}
		return ending{}, fmt.Errorf("ending of epoch %d: %w", e, err)
	}
	li, err := s.LedgerInfo()
	if err != nil {
		return ending{}, fmt.Errorf("ending of epoch %d: %w", e, err)
	}
	en := ending{version: li.LedgerInfo.Version, timestampUsec: li.LedgerInfo.TimestampUsec}
	c.endings[e] = en
	return en, nil
}

// snapshotTimestamp returns the timestamp of the ledger info covering version v
// (the first one at or after it: v's own when v ends a block, as the coordinator's
// snapshots do), asking the node once per version. ok is false when the node no
// longer stores version v (its first stored transaction is later): such a snapshot
// is older than anything the node holds.
func (c *coord) snapshotTimestamp(ctx context.Context, v, firstTxnVersion uint64) (usec uint64, ok bool, err error) {
	if ts, ok := c.snapshotTimes[v]; ok {
		return ts, true, nil
	}
	if v < firstTxnVersion {
		return 0, false, nil
	}
	p, err := c.cfg.Service.StateRootProof(ctx, v)
	if err != nil {
		return 0, false, fmt.Errorf("ledger info covering version %d: %w", v, err)
	}
	c.snapshotTimes[v] = p.LedgerInfo.LedgerInfo.TimestampUsec
	return p.LedgerInfo.LedgerInfo.TimestampUsec, true, nil
}

// snapshotTimeDue reports whether the time rule (Config.StateSnapshotInterval)
// asks for a state snapshot at the end of epoch ec, the newest ended epoch: the
// newest snapshot in storage is of an epoch before ec and the ledger info that
// ended ec is at least the interval newer than the one covering that snapshot
// (or there is no snapshot, or the node no longer holds its version). Requests to
// the node are made only when the answer could be yes.
func (c *coord) snapshotTimeDue(ctx context.Context, ec, firstTxnVersion uint64) (bool, error) {
	if last, ok := c.view.epochs.reach(0); !ok || last < ec {
		return false, nil // the planner waits for the endings up to ec anyway
	}
	s, ok := c.view.lastSnapshot()
	if !ok {
		return true, nil
	}
	if s.epoch >= ec {
		return false, nil // ec (or later) already has a snapshot: never twice the same version
	}
	snapTs, known, err := c.snapshotTimestamp(ctx, s.version, firstTxnVersion)
	if err != nil || !known {
		return !known && err == nil, err
	}
	en, err := c.ending(ctx, ec)
	if err != nil {
		return false, err
	}
	return timeDue(snapTs, en.timestampUsec, c.cfg.StateSnapshotInterval), nil
}

// timeDue reports whether a ledger timestamp candUsec is at least interval after
// snapUsec (both microseconds since the Unix epoch).
func timeDue(snapUsec, candUsec uint64, interval time.Duration) bool {
	return candUsec >= snapUsec && candUsec-snapUsec >= uint64(interval.Microseconds())
}

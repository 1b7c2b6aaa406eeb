package coordinator

import (
	"math"
	"sort"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
)

// span is a closed range [first, last] of epochs or versions.
type span struct{ first, last uint64 }

// spans is a sorted list of disjoint, non-adjacent closed ranges.
type spans []span

// newSpans merges rs into sorted, disjoint, non-adjacent ranges.
func newSpans(rs []span) spans {
	sort.Slice(rs, func(i, j int) bool { return rs[i].first < rs[j].first })
	var out spans
	for _, r := range rs {
		if n := len(out); n > 0 && (r.first <= out[n-1].last || r.first == out[n-1].last+1) {
			out[n-1].last = max(out[n-1].last, r.last)
			continue
		}
		out = append(out, r)
	}
	return out
}

// firstMissing returns the smallest value >= from that no range covers; a range that
// reaches the largest value leaves none, and it returns math.MaxUint64 (a metadata
// line may claim such a range: r.last+1 must not wrap to 0).
func (s spans) firstMissing(from uint64) uint64 {
	for _, r := range s {
		if r.first > from {
			break
		}
		if r.last == math.MaxUint64 {
			return math.MaxUint64
		}
		if r.last >= from {
			from = r.last + 1
		}
	}
	return from
}

// nextStart returns the start of the first range that begins after v, or ok false.
func (s spans) nextStart(v uint64) (uint64, bool) {
	for _, r := range s {
		if r.first > v {
			return r.first, true
		}
	}
	return 0, false
}

// reach returns the last value covered contiguously from from, ok false when from
// itself is not covered.
func (s spans) reach(from uint64) (uint64, bool) {
	m := s.firstMissing(from)
	if m == from {
		return 0, false
	}
	return m - 1, true
}

// snapshotInfo is one state snapshot backup.
type snapshotInfo struct{ version, epoch uint64 }

// view is what storage holds, as far as the coordinator's planning is concerned.
type view struct {
	epochs spans
	// endingVersion maps the last epoch of each epoch-ending backup to the version of
	// that epoch's ending.
	endingVersion map[uint64]uint64
	snapshots     []snapshotInfo
	txns          spans
}

// newView builds the view of metadata entries (files not ending in .meta are
// already left out by catalog.LoadEntries).
func newView(entries []catalog.Entry) *view {
	v := &view{endingVersion: map[uint64]uint64{}}
	var es, ts []span
	for i := range entries {
		m := &entries[i].Metadata
		switch m.Type {
		case native.TypeEpochEnding:
			es = append(es, span{m.FirstEpoch, m.LastEpoch})
			v.endingVersion[m.LastEpoch] = m.LastVersion
		case native.TypeTransaction:
			ts = append(ts, span{m.FirstVersion, m.LastVersion})
		case native.TypeStateSnapshot:
			v.snapshots = append(v.snapshots, snapshotInfo{m.Version, m.Epoch})
		}
	}
	v.epochs, v.txns = newSpans(es), newSpans(ts)
	sort.Slice(v.snapshots, func(i, j int) bool { return v.snapshots[i].version < v.snapshots[j].version })
	return v
}

// add records a completed backup.
func (v *view) add(m *native.Metadata) {
	switch m.Type {
	case native.TypeEpochEnding:
		v.epochs = newSpans(append(append(spans(nil), v.epochs...), span{m.FirstEpoch, m.LastEpoch}))
		v.endingVersion[m.LastEpoch] = m.LastVersion
	case native.TypeTransaction:
		v.txns = newSpans(append(append(spans(nil), v.txns...), span{m.FirstVersion, m.LastVersion}))
	case native.TypeStateSnapshot:
		v.snapshots = append(v.snapshots, snapshotInfo{m.Version, m.Epoch})
		sort.Slice(v.snapshots, func(i, j int) bool { return v.snapshots[i].version < v.snapshots[j].version })
	}
}

// lastSnapshot returns the newest snapshot.
func (v *view) lastSnapshot() (snapshotInfo, bool) {
	if len(v.snapshots) == 0 {
		return snapshotInfo{}, false
	}
	return v.snapshots[len(v.snapshots)-1], true
}

// endingsVerifiedUpTo returns the highest version whose ledger info the backed-up
// epoch endings verify, given that epochs [0, ended) have ended: every version when
// all those endings are backed up (ok, all true), otherwise the version of the last
// ending backed up contiguously from epoch 0.
func (v *view) endingsVerifiedUpTo(ended uint64) (version uint64, all, ok bool) {
	last, ok := v.epochs.reach(0)
	if !ok {
		return 0, ended == 0, ended == 0
	}
	if last+1 >= ended {
		return 0, true, true
	}
	ver, known := v.endingVersion[last]
	return ver, false, known
}

// job is one backup to make.
type job struct {
	kind string
	// epoch endings: epochs [first, end); transactions: versions [first, first+count).
	first, end, count uint64
	// state snapshots: the epoch whose ending version is snapshotted.
	epoch uint64
}

// planInput is the node's state as the planner needs it.
type planInput struct {
	committed       uint64 // newest committed version (valid when hasCommitted)
	hasCommitted    bool
	ended           uint64 // epochs [0, ended) have ended
	firstTxnVersion uint64
	// skip says whether a kind of work must not be scheduled now (backoff, stopped).
	skip func(kind string) bool
	// snapshotEvery is the state snapshot interval in epochs (0: no epoch rule).
	snapshotEvery uint64
	// snapshotTimeDue says that the time rule asks for a snapshot of the newest
	// ended epoch (see coord.snapshotTimeDue).
	snapshotTimeDue bool
	// batch is the transaction batch size.
	batch uint64
}

// nextJob picks the next backup: epoch endings first, then a state snapshot of the
// newest ended epoch when none exists within the interval of epochs or the time
// rule asks for one, then the oldest missing
// aligned transaction batch. A snapshot job names the epoch; its version is
// fetched from the node when the job runs.
func (v *view) nextJob(in planInput) (job, bool) {
	// (1) Epoch endings: the first missing contiguous range of ended epochs.
	if !in.skip(KindEpochEnding) {
		if e0 := v.epochs.firstMissing(0); e0 < in.ended {
			end := in.ended
			if s, ok := v.epochs.nextStart(e0); ok && s < end {
				end = s
			}
			return job{kind: KindEpochEnding, first: e0, end: end}, true
		}
	}
	// (2) A state snapshot at the end of the newest ended epoch, once the endings up
	// to it are backed up.
	if !in.skip(KindStateSnapshot) && in.ended >= 1 {
		ec := in.ended - 1
		if last, ok := v.epochs.reach(0); ok && last >= ec && v.snapshotDue(ec, in) {
			return job{kind: KindStateSnapshot, epoch: ec}, true
		}
	}
	// (3) The oldest aligned transaction batch not covered.
	if !in.skip(KindTransaction) && in.hasCommitted && in.batch > 0 {
		start := (in.firstTxnVersion + in.batch - 1) / in.batch * in.batch
		m := v.txns.firstMissing(start)
		first := m / in.batch * in.batch
		last := first + in.batch - 1
		if last >= first && last <= in.committed {
			upTo, all, ok := v.endingsVerifiedUpTo(in.ended)
			if ok && (all || last <= upTo) {
				return job{kind: KindTransaction, first: first, count: in.batch}, true
			}
		}
	}
	return job{}, false
}

// snapshotDue reports whether a snapshot at the end of epoch ec is due by the
// epoch rule or the time rule. Either way no snapshot of ec or a later epoch
// exists, so the version is never snapshotted twice.
func (v *view) snapshotDue(ec uint64, in planInput) bool {
	s, ok := v.lastSnapshot()
	if ok && s.epoch >= ec {
		return false
	}
	return (in.snapshotEvery > 0 && !v.hasSnapshotWithin(ec, in.snapshotEvery)) || in.snapshotTimeDue
}

// hasSnapshotWithin reports whether a snapshot of an epoch after ec-every exists.
func (v *view) hasSnapshotWithin(ec, every uint64) bool {
	for _, s := range v.snapshots {
		if s.epoch+every > ec {
			return true
		}
	}
	return false
}

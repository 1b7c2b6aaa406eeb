package catalog

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/ledgervault/ledgervault/format/native"
)

// Plan is what restoring to Target needs.
type Plan struct {
	// Target is the version the restored database ends at.
	Target uint64 `json:"target"`
	// EpochEndings cover the epochs contiguously from the lowest backed-up epoch, in
	// order, as far as they reach without a gap (restore checks that the epochs it
	// needs, from its waypoint on, are there). Consecutive backups may overlap.
	EpochEndings []Backup `json:"epoch_endings"`
	// Snapshot is the newest state snapshot at or before Target, nil if none.
	Snapshot *Backup `json:"snapshot,omitempty"`
	// Transactions cover (Snapshot version, Target] (or [0, Target] without a
	// snapshot) contiguously, in order. The first may start before the range and the
	// last end after it, and consecutive ones may overlap: restore skips what it does
	// not need.
	Transactions []Backup `json:"transactions"`
}

// EpochEndings returns the epoch-ending backups sorted by first epoch (then last),
// one per distinct range.
func (inv *Inventory) EpochEndings() []Backup { return inv.ofType(native.TypeEpochEnding) }

// Snapshots returns the state snapshots sorted by version, one per version.
func (inv *Inventory) Snapshots() []Backup { return inv.ofType(native.TypeStateSnapshot) }

// Transactions returns the transaction backups sorted by first version (then last),
// one per distinct range.
func (inv *Inventory) Transactions() []Backup { return inv.ofType(native.TypeTransaction) }

// ofType returns a copy of the backups of typ in the inventory's order (by range).
func (inv *Inventory) ofType(typ string) []Backup {
	out := []Backup{}
	for _, b := range inv.Backups {
		if b.Type == typ {
			out = append(out, b)
		}
	}
	return out
}

// SnapshotAtOrBefore returns the newest state snapshot whose version is at most v.
func (inv *Inventory) SnapshotAtOrBefore(v uint64) (Backup, bool) {
	var best Backup
	found := false
	for _, b := range inv.Backups {
		if b.Type == native.TypeStateSnapshot && b.First <= v && (!found || b.First > best.First) {
			best, found = b, true
		}
	}
	return best, found
}

// LatestRestorableVersion returns the highest version V that Plan(V) accepts, and
// false when Plan accepts no version at all.
func (inv *Inventory) LatestRestorableVersion() (uint64, bool) {
	txns := inv.Transactions()
	snaps := inv.Snapshots()
	if len(snaps) == 0 {
		// Without a snapshot, transactions must cover [0, V].
		if end, ok := reach(txns, 0); ok {
			return end, true
		}
		return 0, false
	}
	// The newest snapshot S is restorable by itself; any V after it uses S (it is the
	// newest at or before V) and needs (S, V] covered. Every V before S is smaller.
	s := snaps[len(snaps)-1].First
	if s == math.MaxUint64 {
		return s, true
	}
	if end, ok := reach(txns, s+1); ok {
		return end, true
	}
	return s, true
}

// reach returns the last version of the longest contiguous cover of txns (sorted by
// first version) that starts at from; ok is false when no backup holds from.
func reach(txns []Backup, from uint64) (uint64, bool) {
	next, ok := from, false
	for _, b := range txns {
		if b.First > next {
			break
		}
		if b.Last >= next {
			ok = true
			if b.Last == math.MaxUint64 {
				return b.Last, true
			}
			next = b.Last + 1
		}
	}
	return next - 1, ok
}

// Plan picks what restoring to target needs: the epoch-ending backups contiguous from
// the first available epoch up to the newest (stopping at a gap), the newest snapshot
// at or before target (nil if none), and the transaction backups that cover
// (snapshot version, target] contiguously (from version 0 if no snapshot). Where
// backups overlap it picks the fewest: at each step the backup that reaches furthest,
// and of those the one starting latest (least to skip). A target beyond what is
// backed up, or a gap, is an error that says what is available (ranges) — never a
// silent cap.
func (inv *Inventory) Plan(target uint64) (*Plan, error) {
	p := &Plan{Target: target, Transactions: []Backup{}}
	if ee := inv.EpochEndings(); len(ee) > 0 {
		p.EpochEndings, _, _ = cover(ee, ee[0].First, math.MaxUint64)
	} else {
		p.EpochEndings = []Backup{}
	}
	from := uint64(0)
	if s, ok := inv.SnapshotAtOrBefore(target); ok {
		p.Snapshot = &s
		if s.First == target {
			return p, nil
		}
		from = s.First + 1
	}
	txns := inv.Transactions()
	chosen, covered, next := cover(txns, from, target)
	if !covered {
		// Version next is not covered: a gap if some backup starts later, else the
		// target is beyond the backups.
		for _, b := range txns {
			if b.First > next {
				return nil, fmt.Errorf("no transaction backup covers versions %d-%d, needed to restore version %d from %s: transactions are backed up in %s, state snapshots at %s",
					next, b.First-1, target, startName(p.Snapshot), inv.ranges(txns), inv.snapshotList())
			}
		}
		return nil, fmt.Errorf("target version %d is beyond the backups: transactions are backed up in %s, state snapshots at %s",
			target, inv.ranges(txns), inv.snapshotList())
	}
	p.Transactions = chosen
	return p, nil
}

// cover picks backups (sorted by first, then last) that cover [from, to]
// contiguously: at each step the one reaching furthest, of those the one starting
// latest. covered reports whether they reach to; if not, chosen is the cover as far
// as it goes and next is the first value it misses.
func cover(bs []Backup, from, to uint64) (chosen []Backup, covered bool, next uint64) {
	chosen = []Backup{}
	next = from
	i := 0
	for {
		best := -1
		for ; i < len(bs) && bs[i].First <= next; i++ {
			if bs[i].Last < next {
				continue
			}
			// Sorted by first: a later candidate with the same reach starts later.
			if best < 0 || bs[i].Last >= bs[best].Last {
				best = i
			}
		}
		if best < 0 {
			return chosen, false, next
		}
		chosen = append(chosen, bs[best])
		if bs[best].Last >= to {
			return chosen, true, 0
		}
		next = bs[best].Last + 1
	}
}

func startName(s *Backup) string {
	if s == nil {
		return "version 0 (no state snapshot at or before it)"
	}
	return fmt.Sprintf("the state snapshot at version %d", s.First)
}

// ranges describes the versions the backups cover, merged: "0-999, 2000-2999".
func (inv *Inventory) ranges(bs []Backup) string {
	var parts []string
	for i := 0; i < len(bs); {
		first, last := bs[i].First, bs[i].Last
		for i++; i < len(bs) && (last == math.MaxUint64 || bs[i].First <= last+1); i++ {
			last = max(last, bs[i].Last)
		}
		parts = append(parts, fmt.Sprintf("%d-%d", first, last))
	}
	return list(parts)
}

func (inv *Inventory) snapshotList() string {
	var parts []string
	for _, s := range inv.Snapshots() {
		parts = append(parts, strconv.FormatUint(s.First, 10))
	}
	return list(parts)
}

// list joins parts, eliding the middle of long lists.
func list(parts []string) string {
	const keep = 5
	if len(parts) == 0 {
		return "none"
	}
	if len(parts) > 2*keep {
		elided := fmt.Sprintf("… (%d more) …", len(parts)-2*keep)
		parts = append(append(parts[:keep:keep], elided), parts[len(parts)-keep:]...)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

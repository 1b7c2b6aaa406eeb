package catalog_test

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	"pgregory.net/rapid"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

func entry(m native.Metadata) catalog.Entry {
	m.Format = native.FormatVersion
	m.Manifest = storage.FileHandle(fmt.Sprintf("%s-%d-%d-%d/manifest.json", m.Type, m.FirstEpoch+m.FirstVersion, m.LastEpoch+m.LastVersion, m.Version))
	return catalog.Entry{Metadata: m, File: storage.FileHandle("metadata/" + m.Key())}
}

func txnE(first, last uint64) catalog.Entry {
	return entry(native.Metadata{Type: native.TypeTransaction, FirstVersion: first, LastVersion: last})
}

func snapE(v uint64) catalog.Entry {
	return entry(native.Metadata{Type: native.TypeStateSnapshot, Version: v, Epoch: v / 100})
}

func epochE(first, last uint64) catalog.Entry {
	return entry(native.Metadata{Type: native.TypeEpochEnding, FirstEpoch: first, LastEpoch: last, FirstVersion: first * 100, LastVersion: last * 100})
}

// ranges renders backups as "first-last" for comparisons.
func ranges(bs []catalog.Backup) string {
	var s []string
	for _, b := range bs {
		s = append(s, fmt.Sprintf("%d-%d", b.First, b.Last))
	}
	return strings.Join(s, " ")
}

func TestViews(t *testing.T) {
	inv := catalog.New([]catalog.Entry{
		txnE(500, 1499), snapE(700), epochE(3, 5), txnE(0, 999), snapE(200), epochE(0, 2), txnE(0, 999), snapE(700),
	})
	if inv.Duplicates != 2 {
		t.Errorf("duplicates %d, want 2", inv.Duplicates)
	}
	if got := ranges(inv.EpochEndings()); got != "0-2 3-5" {
		t.Errorf("epoch endings %s", got)
	}
	if got := ranges(inv.Snapshots()); got != "200-200 700-700" {
		t.Errorf("snapshots %s", got)
	}
	if got := ranges(inv.Transactions()); got != "0-999 500-1499" {
		t.Errorf("transactions %s", got)
	}
	for v, want := range map[uint64]int64{0: -1, 199: -1, 200: 200, 699: 200, 700: 700, math.MaxUint64: 700} {
		s, ok := inv.SnapshotAtOrBefore(v)
		if (want < 0) == ok || ok && s.First != uint64(want) {
			t.Errorf("SnapshotAtOrBefore(%d) = %d %v, want %d", v, s.First, ok, want)
		}
	}
	// Views are copies: changing one leaves the inventory alone.
	inv.Transactions()[0].First = 42
	if inv.Transactions()[0].First != 0 {
		t.Error("view shares the inventory's slice")
	}
}

func TestPlanOverlapsAndSnapshots(t *testing.T) {
	inv := catalog.New([]catalog.Entry{
		txnE(0, 999), txnE(500, 1499), txnE(0, 499), txnE(1500, 1999), txnE(1000, 1999),
		snapE(1200), epochE(0, 4), epochE(2, 9), epochE(5, 7), epochE(12, 13),
	})
	cases := []struct {
		target   uint64
		snapshot int64
		txns     string
	}{
		{0, -1, "0-999"},
		{999, -1, "0-999"},
		{998, -1, "0-999"},
		{1000, -1, "0-999 1000-1999"},
		{1199, -1, "0-999 1000-1999"},
		{1200, 1200, ""},
		{1201, 1200, "1000-1999"},
		{1999, 1200, "1000-1999"},
	}
	for _, c := range cases {
		p, err := inv.Plan(c.target)
		if err != nil {
			t.Fatalf("Plan(%d): %v", c.target, err)
		}
		if p.Target != c.target || ranges(p.Transactions) != c.txns {
			t.Errorf("Plan(%d) transactions %q, want %q", c.target, ranges(p.Transactions), c.txns)
		}
		if (c.snapshot < 0) != (p.Snapshot == nil) || p.Snapshot != nil && p.Snapshot.First != uint64(c.snapshot) {
			t.Errorf("Plan(%d) snapshot %+v, want %d", c.target, p.Snapshot, c.snapshot)
		}
		// The epoch endings run from epoch 0 to the gap at 10-11, fewest backups.
		if got := ranges(p.EpochEndings); got != "0-4 2-9" {
			t.Errorf("Plan(%d) epoch endings %s", c.target, got)
		}
	}
	if v, ok := inv.LatestRestorableVersion(); !ok || v != 1999 {
		t.Errorf("latest restorable %d %v, want 1999", v, ok)
	}
	_, err := inv.Plan(2000)
	want := "target version 2000 is beyond the backups: transactions are backed up in [0-1999], state snapshots at [1200]"
	if err == nil || err.Error() != want {
		t.Errorf("Plan(2000): %v\nwant %s", err, want)
	}
}

func TestPlanGap(t *testing.T) {
	inv := catalog.New([]catalog.Entry{txnE(0, 99), txnE(150, 199), txnE(300, 399), snapE(160)})
	_, err := inv.Plan(120)
	if err == nil || !strings.Contains(err.Error(), "no transaction backup covers versions 100-149") ||
		!strings.Contains(err.Error(), "[0-99, 150-199, 300-399]") || !strings.Contains(err.Error(), "[160]") {
		t.Errorf("gap before the snapshot: %v", err)
	}
	if _, err := inv.Plan(199); err != nil {
		t.Errorf("restore from the snapshot: %v", err)
	}
	_, err = inv.Plan(350)
	if err == nil || !strings.Contains(err.Error(), "versions 200-299") || !strings.Contains(err.Error(), "state snapshot at version 160") {
		t.Errorf("gap after the snapshot: %v", err)
	}
	_, err = inv.Plan(400)
	if err == nil || !strings.Contains(err.Error(), "versions 200-299") {
		t.Errorf("gap below a target beyond the backups: %v", err)
	}
	if v, ok := inv.LatestRestorableVersion(); !ok || v != 199 {
		t.Errorf("latest restorable %d %v, want 199", v, ok)
	}
}

func TestPlanEmptyAndExtremes(t *testing.T) {
	empty := catalog.New(nil)
	if _, ok := empty.LatestRestorableVersion(); ok {
		t.Error("empty inventory restorable")
	}
	_, err := empty.Plan(0)
	if err == nil || err.Error() != "target version 0 is beyond the backups: transactions are backed up in none, state snapshots at none" {
		t.Errorf("empty Plan(0): %v", err)
	}
	// No transaction at version 0: nothing is restorable without a snapshot.
	noGenesis := catalog.New([]catalog.Entry{txnE(10, 20)})
	if _, ok := noGenesis.LatestRestorableVersion(); ok {
		t.Error("restorable without version 0")
	}
	if _, err := noGenesis.Plan(15); err == nil || !strings.Contains(err.Error(), "versions 0-9") {
		t.Errorf("missing genesis: %v", err)
	}
	const top = math.MaxUint64
	inv := catalog.New([]catalog.Entry{txnE(0, top), snapE(top), epochE(0, top)})
	for _, target := range []uint64{0, top - 1, top} {
		p, err := inv.Plan(target)
		if err != nil {
			t.Fatalf("Plan(%d): %v", target, err)
		}
		if ranges(p.EpochEndings) != fmt.Sprintf("0-%d", uint64(top)) {
			t.Errorf("epoch endings %s", ranges(p.EpochEndings))
		}
	}
	if v, ok := inv.LatestRestorableVersion(); !ok || v != top {
		t.Errorf("latest %d %v", v, ok)
	}
	onlyTop := catalog.New([]catalog.Entry{txnE(top, top)})
	if _, ok := onlyTop.LatestRestorableVersion(); ok {
		t.Error("restorable without version 0")
	}
	snapTop := catalog.New([]catalog.Entry{snapE(top - 1), txnE(top, top)})
	if v, ok := snapTop.LatestRestorableVersion(); !ok || v != top {
		t.Errorf("latest %d %v, want max", v, ok)
	}
}

// model is the naive reference: coverage as sets of versions.
type model struct {
	txns, epochs [][2]uint64
	snaps        []uint64
}

// plan returns the snapshot (-1 if none), the first uncovered version needed (-1 if
// all are covered) and the fewest transaction backups that cover what is needed.
func (m *model) plan(target uint64) (snap int64, missing int64, fewest int) {
	snap = -1
	for _, s := range m.snaps {
		if s <= target && int64(s) > snap {
			snap = int64(s)
		}
	}
	lo := uint64(snap + 1)
	for v := lo; v <= target; v++ {
		covered := false
		for _, r := range m.txns {
			covered = covered || r[0] <= v && v <= r[1]
		}
		if !covered {
			return snap, int64(v), 0
		}
	}
	if lo > target {
		return snap, -1, 0
	}
	// Breadth-first over "covered through version x": fewest backups to reach target.
	best := map[uint64]int{}
	frontier := []uint64{}
	for _, r := range m.txns {
		if r[0] <= lo && r[1] >= lo {
			if _, seen := best[r[1]]; !seen {
				best[r[1]] = 1
				frontier = append(frontier, r[1])
			}
		}
	}
	for steps := 1; len(frontier) > 0; steps++ {
		var next []uint64
		for _, x := range frontier {
			if x >= target {
				return snap, -1, steps
			}
			for _, r := range m.txns {
				if r[0] <= x+1 && r[1] > x {
					if _, seen := best[r[1]]; !seen {
						best[r[1]] = steps + 1
						next = append(next, r[1])
					}
				}
			}
		}
		frontier = next
	}
	panic("covered but no cover found")
}

// epochReach is the last epoch reached contiguously from the lowest one.
func (m *model) epochReach() (lowest, reach uint64, ok bool) {
	if len(m.epochs) == 0 {
		return 0, 0, false
	}
	lowest = m.epochs[0][0]
	for _, r := range m.epochs {
		lowest = min(lowest, r[0])
	}
	covered := func(e uint64) bool {
		for _, r := range m.epochs {
			if r[0] <= e && e <= r[1] {
				return true
			}
		}
		return false
	}
	reach = lowest
	for covered(reach + 1) {
		reach++
	}
	return lowest, reach, true
}

func checkContiguous(t *rapid.T, what string, bs []catalog.Backup, from, to uint64) {
	if len(bs) == 0 {
		t.Fatalf("%s: empty cover of %d-%d", what, from, to)
	}
	if bs[0].First > from || bs[0].Last < from {
		t.Fatalf("%s: %s does not start at %d", what, ranges(bs), from)
	}
	for i := 1; i < len(bs); i++ {
		if bs[i].First > bs[i-1].Last+1 || bs[i].Last <= bs[i-1].Last {
			t.Fatalf("%s: %s is not a contiguous, advancing cover", what, ranges(bs))
		}
	}
	if bs[len(bs)-1].Last < to {
		t.Fatalf("%s: %s does not reach %d", what, ranges(bs), to)
	}
}

func TestPlanProperties(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		const maxV = 40
		interval := func(label string, maxLen uint64) *rapid.Generator[[2]uint64] {
			return rapid.Custom(func(t *rapid.T) [2]uint64 {
				a := rapid.Uint64Range(0, maxV).Draw(t, label+"First")
				l := rapid.Uint64Range(0, maxLen).Draw(t, label+"Len")
				return [2]uint64{a, a + l}
			})
		}
		m := &model{
			txns:   rapid.SliceOfN(interval("txn", 15), 0, 8).Draw(t, "txns"),
			epochs: rapid.SliceOfN(interval("epoch", 6), 0, 6).Draw(t, "epochs"),
			snaps:  rapid.SliceOfN(rapid.Uint64Range(0, maxV+10), 0, 3).Draw(t, "snaps"),
		}
		var es []catalog.Entry
		for _, r := range m.txns {
			es = append(es, txnE(r[0], r[1]))
		}
		for _, r := range m.epochs {
			es = append(es, epochE(r[0], r[1]))
		}
		for _, s := range m.snaps {
			es = append(es, snapE(s))
		}
		inv := catalog.New(es)
		shuffled := catalog.New(rapid.Permutation(es).Draw(t, "order"))

		latest, anyOK := int64(-1), false
		for target := uint64(0); target <= 2*maxV+20; target++ {
			p, err := inv.Plan(target)
			snap, missing, fewest := m.plan(target)
			if missing >= 0 {
				if err == nil {
					t.Fatalf("Plan(%d) accepted, but version %d is not backed up", target, missing)
				}
				gapEnd := int64(-1)
				for _, r := range m.txns {
					if int64(r[0]) > missing && (gapEnd < 0 || int64(r[0])-1 < gapEnd) {
						gapEnd = int64(r[0]) - 1
					}
				}
				want := fmt.Sprintf("target version %d is beyond the backups", target)
				if gapEnd >= 0 {
					want = fmt.Sprintf("no transaction backup covers versions %d-%d", missing, gapEnd)
				}
				if !strings.Contains(err.Error(), want) {
					t.Fatalf("Plan(%d): %v\nwant it to say %q", target, err, want)
				}
				continue
			}
			if err != nil {
				t.Fatalf("Plan(%d): %v, but the reference accepts it", target, err)
			}
			latest, anyOK = int64(target), true
			if (snap < 0) != (p.Snapshot == nil) || p.Snapshot != nil && p.Snapshot.First != uint64(snap) {
				t.Fatalf("Plan(%d) snapshot %+v, want %d", target, p.Snapshot, snap)
			}
			if lo := uint64(snap + 1); lo <= target {
				checkContiguous(t, fmt.Sprintf("Plan(%d) transactions", target), p.Transactions, lo, target)
			} else if len(p.Transactions) != 0 {
				t.Fatalf("Plan(%d) transactions %s at the snapshot", target, ranges(p.Transactions))
			}
			if len(p.Transactions) != fewest {
				t.Fatalf("Plan(%d) uses %d transaction backups (%s), %d suffice", target, len(p.Transactions), ranges(p.Transactions), fewest)
			}
			if lowest, reach, ok := m.epochReach(); ok {
				checkContiguous(t, "epoch endings", p.EpochEndings, lowest, reach)
				if last := p.EpochEndings[len(p.EpochEndings)-1].Last; last != reach {
					t.Fatalf("epoch endings %s reach %d, want %d", ranges(p.EpochEndings), last, reach)
				}
			} else if len(p.EpochEndings) != 0 {
				t.Fatalf("epoch endings %s from nothing", ranges(p.EpochEndings))
			}
			q, err := shuffled.Plan(target)
			if err != nil || !reflect.DeepEqual(p, q) {
				t.Fatalf("Plan(%d) depends on the order of metadata: %+v vs %+v (%v)", target, p, q, err)
			}
		}
		v, ok := inv.LatestRestorableVersion()
		if ok != anyOK || ok && int64(v) != latest {
			t.Fatalf("LatestRestorableVersion = %d %v, want %d %v", v, ok, latest, anyOK)
		}
	})
}

func TestPlanOverlappingPair(t *testing.T) {
	inv := catalog.New([]catalog.Entry{txnE(500, 1499), txnE(0, 999)})
	for target, want := range map[uint64]string{0: "0-999", 999: "0-999", 1000: "0-999 500-1499", 1499: "0-999 500-1499"} {
		p, err := inv.Plan(target)
		if err != nil || ranges(p.Transactions) != want || p.Snapshot != nil || len(p.EpochEndings) != 0 {
			t.Errorf("Plan(%d) = %+v, %v; want transactions %s", target, p, err, want)
		}
	}
}

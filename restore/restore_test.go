package restore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/ledgervault/ledgervault/restore"
)

func TestRestoreLatest(t *testing.T) {
	w := newWorld(t, 420, 3000, 3, false)
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "db")
	o := w.options(dir)
	o.Latest = true
	res, err := restore.Run(ctx, w.st, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.HasSnapshot || res.SnapshotVersion != w.snapshot || res.Transactions != w.last-w.snapshot {
		t.Fatalf("result %+v: want snapshot %d and %d transactions", res, w.snapshot, w.last-w.snapshot)
	}
	w.checkSame(t, dir, w.last, res)

	// Again with the same plan: already restored, roots re-checked.
	res2, err := restore.Run(ctx, w.st, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res2.AlreadyRestored || res2.Transactions != 0 || res2.StateRoot != res.StateRoot {
		t.Fatalf("second run %+v", res2)
	}
	// Another plan into the same directory is refused.
	o.Latest, o.Target = false, w.last-1
	if _, err := restore.Run(ctx, w.st, o); !errors.Is(err, restore.ErrTargetNotEmpty) {
		t.Fatalf("restore of another plan into a restored directory: %v", err)
	}
	// --target-version latest into a directory holding a restore to an older version
	// (as if backups had been added since it was interrupted) continues that plan.
	older := filepath.Join(t.TempDir(), "db")
	o.DBDir, o.Target = older, w.last-40
	if _, err := restore.Run(ctx, w.st, o); err != nil {
		t.Fatal(err)
	}
	o.Latest = true
	res3, err := restore.Run(ctx, w.st, o)
	if err != nil {
		t.Fatalf("latest into a directory restored to %d: %v", w.last-40, err)
	}
	if !res3.AlreadyRestored || res3.TargetVersion != w.last-40 {
		t.Fatalf("latest into a directory restored to %d: %+v", w.last-40, res3)
	}
	o.Latest = false
	// A directory with foreign content is refused.
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "x"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	o.DBDir = other
	if _, err := restore.Run(ctx, w.st, o); !errors.Is(err, restore.ErrTargetNotEmpty) {
		t.Fatalf("restore into a non-empty directory: %v", err)
	}
	// Beyond the backups: an error that says what is available.
	o.DBDir = filepath.Join(t.TempDir(), "db")
	o.Target = w.last + 1
	if _, err := restore.Run(ctx, w.st, o); err == nil {
		t.Fatal("restore beyond the backups succeeded")
	} else {
		t.Log(err)
	}

	t.Run("at the snapshot", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		o := w.options(dir)
		o.Target = w.snapshot
		res, err := restore.Run(ctx, w.st, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.Transactions != 0 || !res.HasSnapshot {
			t.Fatalf("result %+v", res)
		}
		w.checkSame(t, dir, w.snapshot, res)
	})
	t.Run("mid chunk", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		o := w.options(dir)
		o.Target = w.midChunkVersion(t)
		res, err := restore.Run(ctx, w.st, o)
		if err != nil {
			t.Fatal(err)
		}
		w.checkSame(t, dir, o.Target, res)
	})
	t.Run("resume after cancel", func(t *testing.T) {
		for _, phase := range []string{"state snapshot", "transactions"} {
			t.Run(phase, func(t *testing.T) {
				dir := filepath.Join(t.TempDir(), "db")
				o := w.options(dir)
				o.Latest = true
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				o.Concurrency = 1 // at most two chunks fetched ahead of the one being saved
				o.Progress = &cancelAfter{phase: phase, n: 12, cancel: cancel}
				_, err := restore.Run(ctx, w.st, o)
				if !errors.Is(err, context.Canceled) {
					t.Fatalf("cancelled restore: %v", err)
				}
				// It says truthfully what the database holds and where the rerun resumes.
				var pe *restore.PartialError
				if !errors.As(err, &pe) {
					t.Fatalf("cancelled restore: %v is not a *restore.PartialError", err)
				}
				var summary *regexp.Regexp
				if phase == "state snapshot" {
					summary = regexp.MustCompile(`^(\d+) of (\d+) state snapshot chunks committed; rerun the same command to resume from chunk (\d+)$`)
				} else {
					summary = regexp.MustCompile(`^the state snapshot and transactions up to version (\d+) of (\d+) committed; rerun the same command to resume from version (\d+)$`)
				}
				m := summary.FindStringSubmatch(pe.Committed())
				if m == nil {
					t.Fatalf("cancelled %s: summary %q", phase, pe.Committed())
				}
				n, _ := strconv.ParseUint(m[1], 10, 64)
				total, _ := strconv.ParseUint(m[2], 10, 64)
				from, _ := strconv.ParseUint(m[3], 10, 64)
				if phase == "state snapshot" && (n != from || n == 0 || n >= total) {
					t.Fatalf("cancelled state phase: summary %q", pe.Committed())
				}
				if phase == "transactions" && (from != n+1 || total != w.last || n <= w.snapshot || n >= w.last) {
					t.Fatalf("cancelled transaction phase: summary %q (snapshot %d, last %d)", pe.Committed(), w.snapshot, w.last)
				}
				o.Progress = nil
				res, err := restore.Run(context.Background(), w.st, o)
				if err != nil {
					t.Fatal(err)
				}
				if !res.Resumed {
					t.Fatalf("second run did not resume: %+v", res)
				}
				// The second run did only what the first left undone.
				items, err := w.src.StateItemCount(context.Background(), w.snapshot)
				if err != nil {
					t.Fatal(err)
				}
				switch phase {
				case "state snapshot":
					if res.StateItems == 0 || res.StateItems >= items || res.Transactions != w.last-w.snapshot {
						t.Fatalf("resumed state phase: %d of %d items, %d transactions", res.StateItems, items, res.Transactions)
					}
				default:
					if res.StateItems != 0 || res.Transactions == 0 || res.Transactions >= w.last-w.snapshot {
						t.Fatalf("resumed transaction phase: %d items, %d of %d transactions", res.StateItems, res.Transactions, w.last-w.snapshot)
					}
					if from, _ := strconv.ParseUint(m[3], 10, 64); res.Transactions != w.last-from+1 {
						t.Fatalf("resumed transaction phase saved %d transactions; the summary %q said from version %d to %d", res.Transactions, pe.Committed(), from, w.last)
					}
				}
				w.checkSame(t, dir, w.last, res)
			})
		}
	})
	t.Run("without snapshot", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "db")
		o := w.options(dir)
		o.Target = w.snapshot - 3
		res, err := restore.Run(ctx, w.st, o)
		if err != nil {
			t.Fatal(err)
		}
		if res.HasSnapshot || res.Transactions != o.Target+1 {
			t.Fatalf("result %+v", res)
		}
		w.checkSame(t, dir, o.Target, res)
	})
}

// cancelAfter cancels a context after n progress increments of a phase.
type cancelAfter struct {
	phase  string
	n      int64
	cur    atomic.Value
	count  atomic.Int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Phase(name string, total int64) { c.cur.Store(name) }
func (c *cancelAfter) Add(int64) {
	if p, _ := c.cur.Load().(string); p == c.phase && c.count.Add(1) == c.n {
		c.cancel()
	}
}

// TestRestoreToMidBlockSnapshot restores to the version of a state snapshot whose root
// proof is against a later ledger info: the accumulator frontier comes from the
// transaction chunk that holds the snapshot version.
func TestRestoreToMidBlockSnapshot(t *testing.T) {
	const snap = 95 // blocks of 20 within epochs of 50: the block 91-100 is signed at 100
	w := newWorld(t, 130, 200, 1, false, snap)
	if v := w.rootProofVersion(t, snap); v == snap {
		t.Fatalf("the root proof of the snapshot at %d is against the ledger info at %d: not the case under test", snap, v)
	}
	dir := filepath.Join(t.TempDir(), "db")
	o := w.options(dir)
	o.Target = snap
	res, err := restore.Run(context.Background(), w.st, o)
	if err != nil {
		t.Fatal(err)
	}
	if !res.HasSnapshot || res.SnapshotVersion != snap || res.Transactions != 0 {
		t.Fatalf("result %+v", res)
	}
	w.checkSame(t, dir, snap, res)
}

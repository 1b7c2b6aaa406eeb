package restore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/restore"
)

// copyTree copies the backup storage directory so that a test can tamper with it.
func copyTree(t *testing.T, src string) string {
	t.Helper()
	dst := t.TempDir()
	err := filepath.Walk(src, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if info.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
	return dst
}

// findFiles returns the files under root whose name matches glob, in any backup folder.
func findFiles(t *testing.T, root, dirPrefix, glob string) []string {
	t.Helper()
	ms, err := filepath.Glob(filepath.Join(root, "*", dirPrefix+"*", glob))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		ms, _ = filepath.Glob(filepath.Join(root, dirPrefix+"*", glob))
	}
	if len(ms) == 0 {
		t.Fatalf("no %s/%s under %s", dirPrefix, glob, root)
	}
	return ms
}

func TestVerify(t *testing.T) {
	w := newWorld(t, 300, 1500, 2, false)
	ctx := context.Background()
	rep, err := restore.Verify(ctx, w.st, restore.VerifyOptions{Waypoints: []ledger.Waypoint{w.wp}, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK || len(rep.Rows) != 5 {
		var sb strings.Builder
		rep.WriteTable(&sb)
		t.Fatalf("verify of good backups:\n%s", sb.String())
	}
	// Issue 15 item 8: the byte column says what it counts, apart from list's STORED
	// (which also counts manifests and proofs), and the rows add up to the summary.
	var tb strings.Builder
	if err := rep.WriteTable(&tb); err != nil {
		t.Fatal(err)
	}
	var rowBytes int64
	for _, row := range rep.Rows {
		rowBytes += row.Bytes
	}
	if !strings.Contains(tb.String(), "CHUNK BYTES") || !strings.Contains(tb.String(), fmt.Sprintf("%d bytes of chunks", rowBytes)) {
		t.Errorf("verify table does not label its bytes as chunk bytes (rows sum to %d):\n%s", rowBytes, tb.String())
	}

	type tamper struct {
		name   string
		do     func(t *testing.T, root string)
		failed string // the type of the row that must fail
		words  []string
	}
	flip := func(dirPrefix, glob string, i int) func(t *testing.T, root string) {
		return func(t *testing.T, root string) {
			fs := findFiles(t, root, dirPrefix, glob)
			p := fs[(i+len(fs))%len(fs)]
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x10
			if err := os.WriteFile(p, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	cases := []tamper{
		{"flipped bit in a state chunk", flip("state_snapshot", "state-*.zst", 1), native.TypeStateSnapshot, []string{"state-", "SHA-256"}},
		{"flipped bit in a transaction chunk", flip("transaction", "txn-*.zst", -1), native.TypeTransaction, []string{"txn-", "SHA-256"}},
		{"flipped bit in an epoch chunk", flip("epoch_ending", "epochs-*.zst", 0), native.TypeEpochEnding, []string{"epochs-", "SHA-256"}},
		{"swapped state chunks", func(t *testing.T, root string) {
			fs := findFiles(t, root, "state_snapshot", "state-*.zst")
			a, _ := os.ReadFile(fs[0])
			b, _ := os.ReadFile(fs[1])
			os.WriteFile(fs[0], b, 0o644)
			os.WriteFile(fs[1], a, 0o644)
		}, native.TypeStateSnapshot, []string{"state-"}},
		{"missing transaction chunk", func(t *testing.T, root string) {
			fs := findFiles(t, root, "transaction", "txn-*.zst")
			if err := os.Remove(fs[len(fs)-1]); err != nil {
				t.Fatal(err)
			}
		}, native.TypeTransaction, []string{"txn-"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			root := copyTree(t, w.root)
			c.do(t, root)
			st := openLocal(t, root)
			rep, err := restore.Verify(ctx, st, restore.VerifyOptions{Waypoints: []ledger.Waypoint{w.wp}, Concurrency: 2})
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			rep.WriteTable(&sb)
			if rep.OK {
				t.Fatalf("verify passed:\n%s", sb.String())
			}
			found := false
			for _, row := range rep.Rows {
				// Intact epoch-ending rows under a failed chain say "not verified";
				// the damaged one names its file.
				if !row.OK && row.Type == c.failed && !strings.HasPrefix(row.Error, "not verified") {
					found = true
					for _, wd := range c.words {
						if !strings.Contains(row.Error, wd) {
							t.Fatalf("error %q does not mention %q", row.Error, wd)
						}
					}
				}
			}
			if !found {
				t.Fatalf("no failing %s row:\n%s", c.failed, sb.String())
			}
			// Restore fails too, naming the file.
			o := w.options(filepath.Join(t.TempDir(), "db"))
			o.Latest = true
			_, err = restore.Run(ctx, st, o)
			if err == nil {
				t.Fatal("restore of tampered backups succeeded")
			}
			if c.failed != native.TypeEpochEnding || strings.Contains(c.name, "epoch") {
				for _, wd := range c.words[:1] {
					if !strings.Contains(err.Error(), wd) {
						t.Fatalf("restore error %q does not mention %q", err, wd)
					}
				}
			}
		})
	}

	t.Run("ledger info beyond the epoch history", func(t *testing.T) {
		root := copyTree(t, w.root)
		// Without the later epoch-ending backup, the transactions' ledger infos are of
		// epochs the history does not reach.
		ms, _ := filepath.Glob(filepath.Join(root, "metadata", "epoch_ending_*.meta"))
		var last string
		for _, m := range ms {
			if !strings.Contains(filepath.Base(m), "epoch_ending_0-") {
				last = m
			}
		}
		if err := os.Remove(last); err != nil {
			t.Fatal(err)
		}
		st := openLocal(t, root)
		o := w.options(filepath.Join(t.TempDir(), "db"))
		o.Latest = true
		_, err := restore.Run(ctx, st, o)
		if !errors.Is(err, ledger.ErrBeyondHistory) {
			t.Fatalf("restore with a short epoch history: %v", err)
		}
	})
	t.Run("gap in transactions", func(t *testing.T) {
		root := copyTree(t, w.root)
		ms, _ := filepath.Glob(filepath.Join(root, "metadata", "transaction_0-*.meta"))
		if len(ms) != 1 {
			t.Fatalf("metadata files %v", ms)
		}
		if err := os.Remove(ms[0]); err != nil {
			t.Fatal(err)
		}
		rep, err := restore.Verify(ctx, openLocal(t, root), restore.VerifyOptions{Waypoints: []ledger.Waypoint{w.wp}})
		if err != nil {
			t.Fatal(err)
		}
		last := rep.Rows[len(rep.Rows)-1]
		if rep.OK || last.OK || !strings.Contains(last.Error, "gap") {
			t.Fatalf("verify with a gap: %+v", rep.Rows)
		}
	})
	t.Run("gap bridged by a snapshot", func(t *testing.T) {
		w2 := newWorld(t, 200, 300, 2, true)
		rep, err := restore.Verify(ctx, w2.st, restore.VerifyOptions{Waypoints: []ledger.Waypoint{w2.wp}})
		if err != nil {
			t.Fatal(err)
		}
		last := rep.Rows[len(rep.Rows)-1]
		if !rep.OK || !strings.Contains(last.Range, "bridged") {
			t.Fatalf("verify with transactions from the snapshot on: %+v", rep.Rows)
		}
	})
	t.Run("wrong waypoint", func(t *testing.T) {
		bad := w.wp
		bad.Hash[0] ^= 1
		o := w.options(filepath.Join(t.TempDir(), "db"))
		o.Latest = true
		o.Waypoints = []ledger.Waypoint{bad}
		if _, err := restore.Run(ctx, w.st, o); err == nil || !strings.Contains(err.Error(), "waypoint") {
			t.Fatalf("restore from a wrong waypoint: %v", err)
		}
		rep, err := restore.Verify(ctx, w.st, restore.VerifyOptions{Waypoints: []ledger.Waypoint{bad}})
		if err != nil || rep.OK {
			t.Fatalf("verify from a wrong waypoint: %v %+v", err, rep)
		}
		// Issue 15 item 8: the epoch-ending rows said ok though the chain failed.
		for _, r := range rep.Rows {
			if r.OK {
				t.Errorf("row %s %s says ok under a wrong waypoint", r.Type, r.Range)
			}
			if r.Type == "epoch_ending" && !strings.Contains(r.Error, "not verified") {
				t.Errorf("epoch-ending row %s: %q, want it marked not verified", r.Range, r.Error)
			}
		}
	})
}

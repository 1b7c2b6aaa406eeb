package operatorux_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

// TestRestoreChecksTrustBeforeWriting: a restore with a wrong waypoint fails
// without writing anything in --db (no RESTORE-PLAN.json, no database, not even
// the directory), so the rerun with the right waypoint restores.
func TestRestoreChecksTrustBeforeWriting(t *testing.T) {
	w := newWorld(t)
	absent := filepath.Join(w.dir, "absent")
	empty := filepath.Join(w.dir, "empty")
	if err := os.Mkdir(empty, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, db := range []string{absent, empty} {
		r := testbin.Run(t, w.dir, "restore", "--db", db, "--target-version", "latest", "--storage", w.url, "--progress", "none",
			"--trust-waypoint", zeroWaypoint)
		if r.Code != 1 || !strings.Contains(r.Stderr, "epoch history") {
			t.Fatalf("restore with a wrong waypoint into %s: exit %d, want 1 (epoch history): %s", db, r.Code, r.Stderr)
		}
		if db == absent && exists(t, db) {
			t.Fatalf("restore with a wrong waypoint created %s", db)
		}
		if ents, err := os.ReadDir(empty); err != nil || len(ents) != 0 {
			t.Fatalf("restore with a wrong waypoint wrote into %s: %v %v", empty, ents, err)
		}
		ok(t, w.dir, "restore", "--db", db, "--target-version", "latest", "--storage", w.url, "--progress", "none", "--trust-waypoint", w.waypoint)
	}
}

// TestRestoreRefusalSaysHowToProceed: a directory holding a restore of another plan
// is refused (exit 3) with the flags that resume that restore and the advice to
// remove the directory; the flags given do resume (re-check) it.
func TestRestoreRefusalSaysHowToProceed(t *testing.T) {
	w := newWorld(t)
	db := filepath.Join(w.dir, "db")
	first := strconv.Itoa(lastVersion - 50)
	ok(t, w.dir, "restore", "--db", db, "--target-version", first, "--storage", w.url, "--progress", "none", "--waypoint-file", writeWaypoint(t, w))
	r := testbin.Run(t, w.dir, "restore", "--db", db, "--target-version", strconv.Itoa(lastVersion), "--storage", w.url, "--progress", "none", "--trust-waypoint", w.waypoint)
	if r.Code != 3 {
		t.Fatalf("restore of another plan: exit %d, want 3: %s", r.Code, r.Stderr)
	}
	want := "--db " + db + " --target-version " + first + " --trust-waypoint " + w.waypoint
	for _, s := range []string{want, "remove " + db} {
		if !strings.Contains(r.Stderr, s) {
			t.Fatalf("refusal %q does not say %q", r.Stderr, s)
		}
	}
	args := append([]string{"restore"}, strings.Fields(want)...)
	r = ok(t, w.dir, append(args, "--storage", w.url, "--progress", "none")...)
	if !strings.Contains(r.Stdout, "already restored") {
		t.Fatalf("rerun with the refusal's flags: %s", r.Stdout)
	}
}

func writeWaypoint(t *testing.T, w *world) string {
	p := filepath.Join(w.dir, "waypoint.txt")
	if err := os.WriteFile(p, []byte(w.waypoint+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}


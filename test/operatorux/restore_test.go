package operatorux_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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

// blockingConfig is a command config reading the local store at ROOT whose
// open_for_read of the file named BLOCK touches REACHED and then hangs until it is
// killed.
const blockingConfig = `env_vars:
  - key: ROOT
    value: %q
  - key: BLOCK
    value: %q
  - key: REACHED
    value: %q
commands:
  create_backup: exit 1
  create_for_write: exit 1
  save_metadata_line: exit 1
  open_for_read: |
    if [ "$FILE_HANDLE" = "$BLOCK" ]; then touch "$REACHED"; exec sleep 600; fi
    F="$ROOT/$FILE_HANDLE"
    if [ ! -f "$F" ]; then echo "not found: $FILE_HANDLE" >&2; exit 44; fi
    exec cat -- "$F"
  list_metadata_files: |
    cd -- "$ROOT/metadata"
    for f in *; do
      if [ -f "$f" ]; then printf 'metadata/%%s\n' "$f"; fi
    done
`

// TestRestoreInterruptSaysWhatWasCommitted: SIGINT while a state snapshot chunk is
// being fetched exits 130 with how many chunks were committed and where the rerun
// resumes, and the rerun resumes exactly there (its log's from_chunk).
func TestRestoreInterruptSaysWhatWasCommitted(t *testing.T) {
	w := newWorld(t)
	chunks := w.stateChunks(t)
	if len(chunks) < 4 {
		t.Fatalf("the state snapshot has %d chunks, want at least 4", len(chunks))
	}
	block := len(chunks) - 2
	reached := filepath.Join(w.dir, "reached")
	cfg := filepath.Join(w.dir, "blocking.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(blockingConfig, w.store, chunks[block], reached)), 0o600); err != nil {
		t.Fatal(err)
	}
	db := filepath.Join(w.dir, "db")
	args := []string{"restore", "--db", db, "--target-version", "latest", "--progress", "none", "--trust-waypoint", w.waypoint,
		"--concurrent-downloads", "1", "--log-format", "json"}
	cmd := exec.Command(testbin.Path, append(args, "--command-config", cfg)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFile(t, reached, cmd)
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if ee, isExit := err.(*exec.ExitError); !isExit || ee.ExitCode() != 130 {
		t.Fatalf("interrupted restore: %v, want exit 130\n%s", err, stderr.String())
	}
	m := regexp.MustCompile(`interrupted by interrupt, (\d+) of (\d+) state snapshot chunks committed; rerun the same command to resume from chunk (\d+)`).
		FindStringSubmatch(stderr.String())
	if m == nil {
		t.Fatalf("interrupt message does not say what was committed:\n%s", stderr.String())
	}
	if m[1] != m[3] || m[2] != strconv.Itoa(len(chunks)) {
		t.Fatalf("interrupt message %q: want N of %d committed, resume from N", m[0], len(chunks))
	}
	if strings.Contains(stderr.String(), "nothing committed") {
		t.Fatalf("interrupt message says nothing committed: %s", lastLine(stderr.String()))
	}
	// The rerun (through the plain local store: the same plan) resumes where the
	// message said.
	r := ok(t, w.dir, append(args, "--storage", w.url)...)
	from := -1
	for _, line := range strings.Split(r.Stderr, "\n") {
		var rec struct {
			Msg       string `json:"msg"`
			FromChunk *int   `json:"from_chunk"`
		}
		if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "restoring state snapshot" && rec.FromChunk != nil {
			from = *rec.FromChunk
		}
	}
	if strconv.Itoa(from) != m[1] {
		t.Fatalf("the rerun resumed from chunk %d, the interrupt message said %s", from, m[1])
	}
}

// waitFile waits until p exists (the blocking command was reached) or the command
// exited; it is a wait for an event, not a timed assertion.
func waitFile(t *testing.T, p string, cmd *exec.Cmd) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for !exists(t, p) {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			t.Fatalf("%s never appeared", p)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

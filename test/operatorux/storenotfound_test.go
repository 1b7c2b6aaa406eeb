package operatorux_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

// zeroWaypoint is a well-formed waypoint; the store is never reached far enough to
// check it.
const zeroWaypoint = "0:0000000000000000000000000000000000000000000000000000000000000000"

// readers are the commands that only read a store (or maintain an existing one):
// none of them may create it.
func readers(dir string) map[string][]string {
	return map[string][]string{
		"list":            {"list"},
		"list --json":     {"list", "--json"},
		"verify":          {"verify", "--trust-waypoint", zeroWaypoint},
		"restore":         {"restore", "--target-version", "latest", "--db", filepath.Join(dir, "db"), "--trust-waypoint", zeroWaypoint},
		"storage ls":      {"storage", "ls"},
		"storage ls --bk": {"storage", "ls", "--backups"},
		"storage get":     {"storage", "get", "metadata/x"},
		"audit":           {"audit"},
		"gc --dry-run":    {"gc", "--dry-run"},
		"compact":         {"compact"},
	}
}

// TestReadersDoNotCreateStores: every reader given a store that does not exist
// exits 10 with "store does not exist: URL" and creates nothing (not the store, not
// restore's --db); /proc/nope, where nothing can be created, gives the same error;
// so does the parent directory of a store (a directory without the metadata folder).
func TestReadersDoNotCreateStores(t *testing.T) {
	dir := t.TempDir()
	parent := filepath.Join(dir, "parent")
	if err := os.MkdirAll(filepath.Join(parent, "some-folder"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{
		"file://" + filepath.Join(dir, "x", "nonexistent"),
		"file:///proc/nope",
		"file://" + parent,
	} {
		for name, args := range readers(dir) {
			t.Run(name+" "+url, func(t *testing.T) {
				r := testbin.Run(t, dir, append(args, "--storage", url)...)
				want := "store does not exist: " + url
				if r.Code != 10 || !strings.Contains(r.Stderr, want) {
					t.Fatalf("exit %d, stderr %q; want exit 10 and %q", r.Code, r.Stderr, want)
				}
				for _, p := range []string{filepath.Join(dir, "x"), filepath.Join(dir, "db"), filepath.Join(parent, "metadata")} {
					if _, err := os.Stat(p); !os.IsNotExist(err) {
						t.Fatalf("%s exists after %v (err %v): a reader created it", p, args, err)
					}
				}
			})
		}
	}
}

// TestUsageBeforeStoreNotFound: a flag error is reported before the store is looked
// for (verify's backup-cli detection must not report the missing store first).
func TestUsageBeforeStoreNotFound(t *testing.T) {
	dir := t.TempDir()
	r := testbin.Run(t, dir, "verify", "--storage", "file://"+filepath.Join(dir, "none"), "--trust-waypoint", zeroWaypoint,
		"--from-version", "9", "--to-version", "3")
	if r.Code == 0 || r.Code == 10 || !strings.Contains(r.Stderr, "--from-version") {
		t.Fatalf("exit %d, stderr %q: want the --from-version error first", r.Code, r.Stderr)
	}
}

// TestWritersCreateLocalStores: storage put, a writer, creates a local store that
// does not exist; the readers then find it.
func TestWritersCreateLocalStores(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "line")
	if err := os.WriteFile(in, []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	url := "file://" + filepath.Join(dir, "new", "store")
	if r := testbin.Run(t, dir, "storage", "put", "--metadata", "--name", "m1", "--input", in, "--storage", url); r.Code != 0 {
		t.Fatalf("put: exit %d: %s", r.Code, r.Stderr)
	}
	r := testbin.Run(t, dir, "storage", "ls", "--storage", url)
	if r.Code != 0 || strings.TrimSpace(r.Stdout) != "metadata/m1" {
		t.Fatalf("ls: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

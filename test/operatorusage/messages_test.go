package operatorusage_test

import (
	"bufio"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

// TestMessagesSayWhatToDo runs the mistakes of issue 15 item 7 and checks that
// each message names the flag or file and says what to do, in the operator's terms.
func TestMessagesSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	shape := write("shape.yaml", "commands:\n  list_metadata_files: ls\n  create_backup: [a, b]\n")
	top := write("top.yaml", "- a\n")
	for _, c := range []struct {
		args   []string
		code   int
		wants  []string
		nots   []string
		reason string
	}{
		{[]string{"list", "--storage", "backups/here"}, 2,
			[]string{"--storage", `"backups/here" has no scheme`, "for a local directory use file://" + filepath.Join(dir, "backups/here")},
			[]string{"permanent storage failure", `unsupported scheme ""`}, "a bare path gets the file:// hint"},
		{[]string{"verify", "--storage", "/srv/backups", "--trust-waypoint", "0:" + strings.Repeat("0", 64)}, 2,
			[]string{"--storage", "use file:///srv/backups"}, []string{"permanent storage failure"}, "a bare absolute path"},
		{[]string{"list", "--storage", "s3:///prefix"}, 2,
			[]string{"--storage", "bucket name missing"}, []string{"permanent storage failure"}, "a URL error is not a storage failure"},
		{[]string{"list", "--command-config", shape}, 2,
			[]string{"--command-config", shape, "line 3: commands.create_backup: want a string, not a list"},
			[]string{"shell.", "unmarshal", "!!seq", "permanent storage failure"}, "YAML shape errors name the file, line and key"},
		{[]string{"list", "--command-config", top}, 2,
			[]string{top, "line 1: want a mapping with env_vars and commands, not a list"},
			[]string{"shell.Config"}, "no Go type names"},
		{[]string{"list", "--storage", store, "--log-level", "bogus"}, 2,
			[]string{"--log-level", "want debug, info, warn or error"}, []string{"slog"}, "--log-level names the flag"},
		{[]string{"list", "--storage", store, "--log-format", "yaml"}, 2,
			[]string{"--log-format", "want auto, text or json"}, nil, "--log-format names the flag"},
	} {
		r := run(t, dir, nil, c.args...)
		if r.Code != c.code {
			t.Errorf("%s: %v: exit %d, stderr %q; want %d", c.reason, c.args, r.Code, r.Stderr, c.code)
		}
		for _, w := range c.wants {
			if !strings.Contains(r.Stderr, w) {
				t.Errorf("%s: %v: stderr %q does not say %q", c.reason, c.args, r.Stderr, w)
			}
		}
		for _, n := range c.nots {
			if strings.Contains(r.Stderr, n) {
				t.Errorf("%s: %v: stderr %q says %q", c.reason, c.args, r.Stderr, n)
			}
		}
	}
}

// TestGCRefusalNamesTheFlag: gc on a store with an old folder and no metadata
// refuses and names --allow-no-metadata; with it, the folder goes.
func TestGCRefusalNamesTheFlag(t *testing.T) {
	dir := t.TempDir()
	store := "file://" + filepath.Join(dir, "store")
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte("chunk"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, dir, nil, "storage", "put", "--storage", store, "--new-backup", "orphan", "--name", "f", "--input", in); r.Code != 0 {
		t.Fatalf("storage put: exit %d, stderr %q", r.Code, r.Stderr)
	}
	r := run(t, dir, nil, "gc", "--storage", store, "--grace", "0s")
	if r.Code != 1 || !strings.Contains(r.Stderr, "no metadata file") || !strings.Contains(r.Stderr, "run again with --allow-no-metadata") {
		t.Fatalf("gc without metadata: exit %d, stderr %q; want 1 naming --allow-no-metadata", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stderr, "allow it explicitly") {
		t.Errorf("gc: %q still says 'allow it explicitly'", r.Stderr)
	}
	if r := run(t, dir, nil, "gc", "--storage", store, "--grace", "0s", "--allow-no-metadata", "--json"); r.Code != 0 || !strings.Contains(r.Stdout, `"backups_removed": 1,`) {
		t.Fatalf("gc --allow-no-metadata: exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
	}
}

// TestSecondNodeRunSaysLocked: a second `node run` on a directory a running node
// holds fails with "the store is locked by another process", not the errno text.
func TestSecondNodeRunSaysLocked(t *testing.T) {
	dir := t.TempDir()
	node := filepath.Join(dir, "node")
	if r := run(t, dir, nil, "node", "init", "--dir", node, "--epoch-length", "10"); r.Code != 0 {
		t.Fatalf("node init: exit %d, stderr %q", r.Code, r.Stderr)
	}
	args := []string{"node", "run", "--dir", node, "--backup-service-address", "127.0.0.1:0", "--metrics-addr", "", "--log-format", "text", "--tps", "10"}
	first := exec.Command(testbin.Path, args...)
	first.Dir = dir
	first.Env = append(os.Environ(), "HOME="+dir, "LEDGERVAULT_CONFIG=")
	stderr, err := first.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = first.Process.Signal(syscall.SIGTERM)
		_ = first.Wait()
	}()
	// The node logs "node running" once its store is open (and locked).
	lines := bufio.NewScanner(stderr)
	running := false
	for !running && lines.Scan() {
		running = strings.Contains(lines.Text(), "node running")
	}
	if !running {
		t.Fatalf("the first node never logged 'node running' (%v)", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()

	r := run(t, dir, nil, args...)
	if r.Code == 0 || !strings.Contains(r.Stderr, "the store is locked by another process") {
		t.Errorf("second node run: exit %d, stderr %q; want a failure saying the store is locked by another process", r.Code, r.Stderr)
	}
	if strings.Contains(r.Stderr, "resource temporarily unavailable") {
		t.Errorf("second node run: %q gives the errno text", r.Stderr)
	}
}

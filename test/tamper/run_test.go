package tamper

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// runTimeout bounds one run of verify or restore: a hang is a failure.
const runTimeout = 2 * time.Minute

// result is one run of the binary.
type result struct {
	args   []string
	exit   int // -1: killed by a signal or the timeout
	stdout []byte
	stderr []byte
	maxRSS int64 // peak resident set size in bytes
	took   time.Duration
}

// message returns the last non-empty line of stderr: the command's error.
func (r *result) message() string {
	lines := strings.Split(strings.TrimSpace(string(r.stderr)), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

// targetDir is the restore target inside a case directory.
func targetDir(caseDir string) string { return filepath.Join(caseDir, "target") }

// runCase runs `verify` or `restore` (to version target, "latest" or a number) on the
// storage directory st, from inside caseDir: the working directory, TMPDIR and HOME
// all point into caseDir so that any stray write shows up in its tree.
func (f *fixture) runCase(t testing.TB, caseDir, st, command string, target ...string) *result {
	t.Helper()
	args := []string{command, "--storage", "file://" + st, "--waypoint-file", f.waypoint, "--log-format", "text"}
	switch command {
	case "verify":
	case "restore":
		args = append(args, "--db", targetDir(caseDir), "--target-version", target[0], "--progress", "none", "--json")
	default:
		t.Fatalf("unknown command %q", command)
	}
	for _, d := range []string{"tmp", "home"} {
		if err := os.MkdirAll(filepath.Join(caseDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	rssFile := filepath.Join(t.TempDir(), "rss")
	cmd := exec.Command(f.rssHelper, append([]string{rssFile, f.bin}, args...)...)
	cmd.Dir = caseDir
	cmd.Env = append(os.Environ(), "TMPDIR="+filepath.Join(caseDir, "tmp"), "HOME="+filepath.Join(caseDir, "home"))
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	start := time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", args, err)
	}
	// Killing the helper kills the binary too (its parent-death signal).
	timedOut := make(chan struct{})
	timer := time.AfterFunc(runTimeout, func() { close(timedOut); cmd.Process.Kill() })
	err := cmd.Wait()
	timer.Stop()
	r := &result{args: args, stdout: out.Bytes(), stderr: errb.Bytes(), took: time.Since(start)}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.exit = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", args, err)
	}
	select {
	case <-timedOut:
		t.Errorf("%s did not finish within %v: killed\nstderr:\n%s", command, runTimeout, r.stderr)
		r.exit = -1
		return r
	default:
	}
	if r.exit == 125 {
		t.Fatalf("rss helper failed:\n%s", r.stderr)
	}
	b, err := os.ReadFile(rssFile)
	if err != nil {
		t.Fatalf("peak RSS of %v: %v", args, err)
	}
	if r.maxRSS, err = strconv.ParseInt(string(b), 10, 64); err != nil {
		t.Fatalf("peak RSS of %v: %v", args, err)
	}
	return r
}

// entry describes one path of a tree snapshot.
type entry struct {
	mode fs.FileMode
	size int64
	sum  [32]byte
	link string
}

// snapshotTree records every path under root (contents hashed), except the subtree
// skip (a path relative to root).
func snapshotTree(t testing.TB, root, skip string) map[string]entry {
	t.Helper()
	out := map[string]entry{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel == skip {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		e := entry{mode: fi.Mode()}
		switch {
		case fi.Mode().IsRegular():
			e.size = fi.Size()
			fh, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, err = io.Copy(h, fh)
			fh.Close()
			if err != nil {
				return err
			}
			copy(e.sum[:], h.Sum(nil))
		case fi.Mode()&fs.ModeSymlink != 0:
			e.link, _ = os.Readlink(p)
		}
		out[rel] = e
		return nil
	})
	if err != nil {
		t.Fatalf("snapshot %s: %v", root, err)
	}
	return out
}

// diffTrees lists paths added, removed or changed between two snapshots.
func diffTrees(before, after map[string]entry) []string {
	var d []string
	for p, a := range after {
		b, ok := before[p]
		switch {
		case !ok:
			d = append(d, "added "+p)
		case a != b:
			d = append(d, "changed "+p)
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok {
			d = append(d, "removed "+p)
		}
	}
	sort.Strings(d)
	return d
}

// copyTree copies the regular files and directories of src into dst (new).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o755)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(to, b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// dirEmpty reports whether dir is absent or holds nothing.
func dirEmpty(t testing.TB, dir string) bool {
	t.Helper()
	es, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		t.Fatalf("read %s: %v", dir, err)
	}
	return len(es) == 0
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }

func exitString(r *result) string {
	if r == nil {
		return "-"
	}
	return fmt.Sprint(r.exit)
}

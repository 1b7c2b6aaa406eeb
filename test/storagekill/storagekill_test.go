// Package storagekill kills the real ledgervault binary in the middle of a
// shell-command upload (SIGKILL and SIGTERM) and checks that no process of the upload
// pipeline survives and that no file appears under its final name.
package storagekill

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/internal/proc"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
	buildDir  string
)

// binary builds ./cmd/ledgervault once per test process.
func binary(tb testing.TB) string {
	tb.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "ledgervault-bin-")
		if buildErr != nil {
			return
		}
		binPath = filepath.Join(buildDir, "ledgervault")
		cmd := exec.Command("go", "build", "-o", binPath, "github.com/ledgervault/ledgervault/cmd/ledgervault")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	tb.Cleanup(func() {}) // the binary is removed with the temp dir at exit by the OS cleaner
	return binPath
}

// config writes a command config whose create_for_write is a multi-process,
// deliberately slow pipeline: gzip, a throttled perl copier, then a subshell that
// writes a temp file and commits it with mv -n once its stdin ends. The commit runs
// in a grandchild of the guard, where only the guard's group and subreaper kill can
// reach it (the bash child's own parent-death signal cannot).
func config(t testing.TB, root string) string { return configWithDelay(t, root, 0) }

// configWithDelay adds a pause of delay seconds between the end of the data and the
// final mv, standing for an uploader that takes a while to complete.
func configWithDelay(t testing.TB, root string, delay int) string {
	cfg := fmt.Sprintf(`env_vars:
  - key: "ROOT"
    value: %q
commands:
  create_backup: |
    mkdir -p -- "$ROOT"
    mkdir -- "$ROOT/$BACKUP_NAME"
    echo "$BACKUP_NAME"
  create_for_write: |
    FILE_HANDLE="$BACKUP_HANDLE/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    TMP="$ROOT/$BACKUP_HANDLE/.tmp-$FILE_NAME-$$"
    gzip -c | perl -e '$| = 1; while (read(STDIN, $b, 16384)) { print $b; select(undef, undef, undef, 0.005) }' |
      { cat > "$TMP" && sleep %d && mv -n -- "$TMP" "$ROOT/$FILE_HANDLE"; }
    if [ -e "$TMP" ]; then rm -f -- "$TMP"; exit 17; fi
  open_for_read: |
    if [ ! -f "$ROOT/$FILE_HANDLE" ]; then exit 44; fi
    gzip -cd < "$ROOT/$FILE_HANDLE"
  save_metadata_line: |
    FILE_HANDLE="metadata/$FILE_NAME"
    echo "$FILE_HANDLE"
    exec 1>&-
    mkdir -p -- "$ROOT/metadata"
    set -o noclobber
    cat > "$ROOT/$FILE_HANDLE"
  list_metadata_files: |
    mkdir -p -- "$ROOT/metadata"; cd -- "$ROOT/metadata"; shopt -s nullglob
    for f in *; do printf 'metadata/%%s\n' "$f"; done
`, root, delay)
	p := filepath.Join(t.TempDir(), "commands.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// upload is a running "ledgervault storage put" fed by a goroutine.
type upload struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    bytes.Buffer
	errOut bytes.Buffer
	marker string
	fed    chan []byte // everything written, once feeding stops
	stop   chan struct{}
}

func startUpload(t testing.TB, bin, cfgPath string, total int) *upload {
	u := &upload{marker: fmt.Sprintf("killtest-%d-%d", os.Getpid(), time.Now().UnixNano()), fed: make(chan []byte, 1), stop: make(chan struct{})}
	u.cmd = exec.Command(bin, "storage", "put", "--command-config", cfgPath, "--new-backup", "kill", "--name", "chunk-0")
	u.cmd.Env = append(os.Environ(), "LV_KILLTEST_MARKER="+u.marker)
	u.cmd.Stdout, u.cmd.Stderr = &u.out, &u.errOut
	var err error
	if u.stdin, err = u.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := u.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		var all bytes.Buffer
		defer func() { u.fed <- all.Bytes() }()
		buf := make([]byte, 64<<10)
		for all.Len() < total {
			select {
			case <-u.stop:
				return
			default:
			}
			rand.Read(buf)
			if _, err := u.stdin.Write(buf); err != nil {
				return
			}
			all.Write(buf)
		}
	}()
	return u
}

func (u *upload) pipeline() []int {
	pids, _ := proc.ProcessesWithEnv("LV_KILLTEST_MARKER", u.marker)
	return pids
}

// waitFlowing waits until the pipeline runs and data reached the temp file.
func waitFlowing(t testing.TB, u *upload, root string) {
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		tmps, _ := filepath.Glob(filepath.Join(root, "*", ".tmp-*"))
		for _, tmp := range tmps {
			if fi, err := os.Stat(tmp); err == nil && fi.Size() > 64<<10 && len(u.pipeline()) >= 4 {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("upload never started flowing; stderr: %s", u.errOut.String())
}

// waitGone returns how long after since the last pipeline process vanished; it
// fails the test after limit.
func waitGone(t testing.TB, u *upload, since time.Time, limit time.Duration) time.Duration {
	for {
		pids := u.pipeline()
		if len(pids) == 0 {
			return time.Since(since)
		}
		if time.Since(since) > limit {
			t.Fatalf("%d pipeline processes alive %v after the signal: %s", len(pids), limit, proc.Describe(pids))
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// finalFiles lists committed (non-hidden) files under root's backup folders.
func finalFiles(t testing.TB, root string) []string {
	var out []string
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && !strings.HasPrefix(d.Name(), ".") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

func (u *upload) finish() (feed []byte, err error) {
	close(u.stop)
	u.stdin.Close()
	err = u.cmd.Wait()
	return <-u.fed, err
}

func TestSIGKILLMidUpload(t *testing.T) {
	bin := binary(t)
	for i := 0; i < 3; i++ {
		root := t.TempDir()
		u := startUpload(t, bin, config(t, root), 1<<30)
		waitFlowing(t, u, root)
		start := time.Now()
		u.cmd.Process.Signal(syscall.SIGKILL)
		gone := waitGone(t, u, start, 2*time.Second)
		u.finish()
		t.Logf("SIGKILL of ledgervault to every pipeline process gone: %v", gone)
		if files := finalFiles(t, root); len(files) != 0 {
			t.Fatalf("files under a final name after SIGKILL: %v", files)
		}
	}
}

func TestSIGTERMMidUpload(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	u := startUpload(t, bin, config(t, root), 1<<30)
	waitFlowing(t, u, root)
	start := time.Now()
	u.cmd.Process.Signal(syscall.SIGTERM)
	gone := waitGone(t, u, start, 2*time.Second)
	_, err := u.finish()
	t.Logf("SIGTERM to every pipeline process gone: %v", gone)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 128+int(syscall.SIGTERM) {
		t.Fatalf("exit after SIGTERM: %v, want status 143; stderr: %s", err, u.errOut.String())
	}
	if !strings.Contains(u.errOut.String(), "nothing committed") {
		t.Fatalf("stderr does not say what happened: %s", u.errOut.String())
	}
	if files := finalFiles(t, root); len(files) != 0 {
		t.Fatalf("files under a final name after SIGTERM: %v", files)
	}
}

// SIGTERM right after the input ended races the commit: the outcome is either the
// whole file (exit 0) or nothing (exit 143), never a part.
func TestSIGTERMAtCommit(t *testing.T) {
	bin := binary(t)
	outcomes := map[string]int{}
	for i := 0; i < 6; i++ {
		root := t.TempDir()
		u := startUpload(t, bin, config(t, root), 2<<20)
		data := <-u.fed
		u.fed <- data
		time.Sleep(time.Duration(i) * 40 * time.Millisecond)
		u.stdin.Close()
		time.Sleep(time.Duration(i) * 30 * time.Millisecond)
		u.cmd.Process.Signal(syscall.SIGTERM)
		start := time.Now()
		_, err := u.finish()
		waitGone(t, u, start, 2*time.Second)
		files := finalFiles(t, root)
		switch {
		case err == nil:
			outcomes["committed"]++
			if len(files) != 1 {
				t.Fatalf("exit 0 but committed files %v", files)
			}
			zr, zerr := os.Open(files[0])
			if zerr != nil {
				t.Fatal(zerr)
			}
			gz, zerr := gzip.NewReader(zr)
			if zerr != nil {
				t.Fatal(zerr)
			}
			got, zerr := io.ReadAll(gz)
			zr.Close()
			if zerr != nil || !bytes.Equal(got, data) {
				t.Fatalf("committed file differs from the input (%d vs %d bytes, %v)", len(got), len(data), zerr)
			}
		default:
			outcomes["aborted"]++
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 143 {
				t.Fatalf("exit %v, want 0 or 143; stderr %s", err, u.errOut.String())
			}
			if len(files) != 0 {
				t.Fatalf("aborted upload left %v", files)
			}
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

// BenchmarkCancelToGone measures the time from SIGKILL of ledgervault in the middle
// of a shell upload to the moment no process of its pipeline is alive.
func BenchmarkCancelToGone(b *testing.B) {
	bin := binary(b)
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		root := b.TempDir()
		u := startUpload(b, bin, config(b, root), 1<<30)
		waitFlowing(b, u, root)
		b.StartTimer()
		start := time.Now()
		u.cmd.Process.Signal(syscall.SIGKILL)
		total += waitGone(b, u, start, 5*time.Second)
		b.StopTimer()
		u.finish()
	}
	b.ReportMetric(float64(total.Microseconds())/1000/float64(b.N), "ms-to-gone/op")
}

// A second SIGTERM while the first one waits for a commit in progress kills
// ledgervault at once; the guard still kills the pipeline, and the file is whole or
// absent.
func TestSecondSignalKillsAtOnce(t *testing.T) {
	bin := binary(t)
	root := t.TempDir()
	u := startUpload(t, bin, configWithDelay(t, root, 5), 1<<20)
	data := <-u.fed
	u.fed <- data
	u.stdin.Close() // the pipeline now takes 5 s to commit
	time.Sleep(300 * time.Millisecond)
	u.cmd.Process.Signal(syscall.SIGTERM)
	time.Sleep(300 * time.Millisecond)
	if !running(u.cmd.Process.Pid) {
		t.Fatal("ledgervault exited on the first SIGTERM instead of finishing the commit")
	}
	start := time.Now()
	u.cmd.Process.Signal(syscall.SIGTERM)
	_, err := u.finish()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("second SIGTERM took %v to end ledgervault", d)
	}
	var ee *exec.ExitError
	if err == nil || !errors.As(err, &ee) {
		t.Fatalf("ledgervault exit after two signals: %v", err)
	}
	waitGone(t, u, start, 2*time.Second)
	files := finalFiles(t, root)
	if len(files) > 1 {
		t.Fatalf("files %v", files)
	}
	if len(files) == 1 {
		f, err := os.Open(files[0])
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		gz, err := gzip.NewReader(f)
		if err != nil {
			t.Fatalf("committed file is not whole: %v", err)
		}
		got, err := io.ReadAll(gz)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("committed file differs from the input (%d vs %d bytes, %v)", len(got), len(data), err)
		}
	}
	t.Logf("exit %v, %d final files", err, len(files))
}

// running reports whether pid exists and is not a zombie.
func running(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
}

package proc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// helperEnv makes the test binary act as a parent that feeds a guarded pipeline and
// then waits to be killed.
const helperEnv = "LEDGERVAULT_PROC_TEST_PARENT"

func TestMain(m *testing.M) {
	if code, ok := GuardMain(); ok {
		os.Exit(code)
	}
	if os.Getenv(helperEnv) != "" {
		os.Exit(helperParent())
	}
	if os.Getenv(MarkerEnv) == "" {
		os.Setenv(MarkerEnv, fmt.Sprintf("proc-test-%d", os.Getpid()))
	}
	goleak.VerifyTestMain(m)
}

// helperParent starts a guarded slow pipeline writing to $OUT, sends it data, says
// "ready" and blocks until killed.
func helperParent() int {
	g, err := StartGuarded(context.Background(), GuardSpec{
		Name:   "helper",
		Script: `gzip -c | while IFS= read -r line; do sleep 0.01; printf '%s\n' "$line"; done > "$OUT.tmp" && mv -n "$OUT.tmp" "$OUT"`,
		Env:    os.Environ(),
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	g.CloseStdout()
	buf := bytes.Repeat([]byte("data line\n"), 1000)
	for i := 0; i < 20; i++ {
		if _, err := g.Write(buf); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("ready")
	if os.Getenv(helperEnv) == "term-self" {
		time.Sleep(300 * time.Millisecond)
		syscall.Kill(os.Getpid(), syscall.SIGTERM) // default action: die like a killed parent
	}
	select {}
}

func env(kv ...string) []string { return append(os.Environ(), kv...) }

func checkNoChildren(t *testing.T) {
	t.Helper()
	pids, err := ChildProcesses()
	if err != nil {
		t.Fatal(err)
	}
	if len(pids) > 0 {
		t.Fatalf("child processes left: %s", Describe(pids))
	}
	if n := InFlight(); n != 0 {
		t.Fatalf("InFlight = %d, want 0", n)
	}
}

func bashSpec(script string, kv ...string) Spec {
	return Spec{Name: "test", Path: "/bin/bash", Args: []string{"bash", "-c", ShellPrefix + script}, Env: env(kv...)}
}

func TestExitErrorCarriesStderr(t *testing.T) {
	p, err := Start(t.Context(), bashSpec(`echo "it broke" >&2; exit 3`))
	if err != nil {
		t.Fatal(err)
	}
	err = p.Wait()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || !strings.Contains(ee.Stderr, "it broke") || ee.Killed {
		t.Fatalf("Wait = %#v, want exit 3 with stderr", err)
	}
	checkNoChildren(t)
}

func TestStdoutPipeAndInFlight(t *testing.T) {
	s := bashSpec(`echo hello; sleep 0.2`)
	s.StdoutPipe = true
	p, err := Start(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	if n := InFlight(); n != 1 {
		t.Errorf("InFlight = %d while running, want 1", n)
	}
	line, err := bufio.NewReader(p.Stdout()).ReadString('\n')
	if err != nil || line != "hello\n" {
		t.Fatalf("stdout %q, %v", line, err)
	}
	if err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	checkNoChildren(t)
}

// A cancelled child never sees EOF: the group is killed before stdin is closed, so a
// "cat > tmp && mv tmp final" never produces final.
func TestCancelKillsGroupBeforeEOF(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "final")
	for i := 0; i < 20; i++ {
		ctx, cancel := context.WithCancel(t.Context())
		s := bashSpec(`sleep 100 & cat > "$F.tmp" && mv "$F.tmp" "$F"`, "F="+final)
		s.Stdin = true
		p, err := Start(ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Stdin().Write([]byte("partial")); err != nil {
			t.Fatal(err)
		}
		cancel()
		err = p.Wait()
		var ee *ExitError
		if !errors.As(err, &ee) || !ee.Killed {
			t.Fatalf("Wait after cancel = %v, want killed", err)
		}
		if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("final file exists after cancel (%v)", err)
		}
		checkNoChildren(t)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 10}
	b.Write([]byte("0123456789abc"))
	if got := b.String(); got != "3456789abc" {
		t.Fatalf("tail %q", got)
	}
	b.Write([]byte("XY"))
	if got := b.String(); got != "56789abcXY" {
		t.Fatalf("tail %q", got)
	}
}

func guardScript() string {
	return `FILE="$OUT"; echo "$FILE"; exec 1>&-; gzip -c | gzip -cd > "$OUT.tmp" && mv -n "$OUT.tmp" "$OUT"`
}

func TestGuardCommit(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	g, err := StartGuarded(t.Context(), GuardSpec{Name: "commit", Script: guardScript(), Env: env("OUT=" + out)})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Abort()
	line, err := bufio.NewReader(g.Stdout()).ReadString('\n')
	if err != nil || line != out+"\n" {
		t.Fatalf("handle line %q, %v", line, err)
	}
	g.CloseStdout()
	data := make([]byte, 3<<20+7)
	rand.Read(data)
	if _, err := g.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := g.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	got, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("committed file: %d bytes, %v; want %d bytes", len(got), err, len(data))
	}
	if err := g.Abort(); err != nil {
		t.Fatalf("Abort after Commit: %v", err)
	}
	checkNoChildren(t)
}

func TestGuardAbortNeverCommits(t *testing.T) {
	dir := t.TempDir()
	for i := 0; i < 5; i++ {
		out := filepath.Join(dir, fmt.Sprintf("out-%d", i))
		ctx, cancel := context.WithCancel(t.Context())
		g, err := StartGuarded(ctx, GuardSpec{Name: "abort", Script: `sleep 100 & ( sleep 100; true ) & ` + guardScript(), Env: env("OUT=" + out)})
		if err != nil {
			t.Fatal(err)
		}
		g.CloseStdout()
		if _, err := g.Write(bytes.Repeat([]byte{'x'}, 100<<10)); err != nil {
			t.Fatal(err)
		}
		if i%2 == 0 {
			cancel()
			if err := g.Commit(); err == nil {
				t.Fatal("Commit after cancel succeeded")
			}
		} else if err := g.Abort(); err != nil {
			t.Fatalf("Abort: %v", err)
		}
		cancel()
		if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("final file exists after abort (%v)", err)
		}
		checkNoChildren(t)
	}
}

func TestGuardPipelineFailure(t *testing.T) {
	g, err := StartGuarded(t.Context(), GuardSpec{Name: "fail", Script: `cat >/dev/null; echo "upload refused" >&2; exit 17`, Env: env()})
	if err != nil {
		t.Fatal(err)
	}
	g.CloseStdout()
	g.Write([]byte("abc"))
	err = g.Commit()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 17 || !strings.Contains(ee.Stderr, "upload refused") {
		t.Fatalf("Commit = %v, want exit 17 with stderr", err)
	}
	checkNoChildren(t)
}

// The parent of a guard is SIGKILLed (or dies of SIGTERM) mid-upload: within 2 s no
// process of the pipeline is alive and no final file exists.
func TestGuardParentDeath(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"kill", "term-self"} {
		t.Run(mode, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "out")
			marker := fmt.Sprintf("guard-death-%d-%s", time.Now().UnixNano(), mode)
			cmd := exec.Command(exe)
			cmd.Env = append(os.Environ(), helperEnv+"="+mode, "OUT="+out, "DEATH_MARKER="+marker)
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(stdout).ReadString('\n')
			if err != nil || line != "ready\n" {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("helper: %q, %v", line, err)
			}
			if pids, _ := ProcessesWithEnv("DEATH_MARKER", marker); len(pids) < 3 {
				t.Errorf("expected the guard and its pipeline running, found %s", Describe(pids))
			}
			start := time.Now()
			if mode == "kill" {
				cmd.Process.Kill()
			}
			cmd.Wait()
			for {
				pids, err := ProcessesWithEnv("DEATH_MARKER", marker)
				if err != nil {
					t.Fatal(err)
				}
				if len(pids) == 0 {
					break
				}
				if time.Since(start) > 2*time.Second {
					t.Fatalf("pipeline alive 2 s after the parent died: %s", Describe(pids))
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("parent death to all processes gone: %v", time.Since(start))
			if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("final file exists after the parent died (%v)", err)
			}
		})
	}
}

func FuzzReadFrame(f *testing.F) {
	var b bytes.Buffer
	writeFrame(&b, frameData, []byte("hello"))
	writeFrame(&b, frameCommit, nil)
	f.Add(b.Bytes())
	f.Add([]byte{'D', 0, 0, 0, 0})
	f.Add([]byte{'D', 0xff, 0xff, 0xff, 0xff, 1})
	f.Add([]byte{'C', 0, 0, 0, 1})
	f.Add([]byte{'X'})
	f.Fuzz(func(t *testing.T, in []byte) {
		buf := make([]byte, MaxFrame)
		r := bytes.NewReader(in)
		var frames [][]byte
		for {
			typ, p, err := readFrame(r, buf)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errBadFrame) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if typ == frameCommit {
				// Re-encoding what was decoded must reproduce the prefix read.
				var re bytes.Buffer
				for _, p := range frames {
					writeFrame(&re, frameData, p)
				}
				writeFrame(&re, frameCommit, nil)
				if consumed := len(in) - r.Len(); !bytes.Equal(re.Bytes(), in[:consumed]) {
					t.Fatalf("re-encoding the decoded frames differs from the input")
				}
				return
			}
			if len(p) == 0 || len(p) > MaxFrame {
				t.Fatalf("data frame of %d bytes", len(p))
			}
			frames = append(frames, append([]byte(nil), p...))
		}
	})
}

// A guard whose stdin ends without a COMMIT frame kills the pipeline before it sees
// EOF and exits with GuardExitAborted.
func TestGuardStdinEOFWithoutCommit(t *testing.T) {
	out := filepath.Join(t.TempDir(), "out")
	g, err := StartGuarded(t.Context(), GuardSpec{Name: "eof", Script: `( sleep 100 ) & ` + guardScript(), Env: env("OUT=" + out)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(g.Stdout()).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	g.CloseStdout()
	if _, err := g.Write(bytes.Repeat([]byte{'y'}, 200<<10)); err != nil {
		t.Fatal(err)
	}
	g.Process().CloseStdin()
	err = g.Process().Wait()
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != GuardExitAborted || !strings.Contains(ee.Stderr, "without commit") {
		t.Fatalf("guard after EOF without COMMIT: %v, want exit %d", err, GuardExitAborted)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("final file exists (%v)", err)
	}
	checkNoChildren(t)
}

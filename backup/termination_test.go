package backup_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/proc"
)

// buildBinary builds the ledgervault command once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ledgervault")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ledgervault/ledgervault/cmd/ledgervault").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// slowProxy forwards to the backup service, streaming bodies at about rate bytes/s,
// so that a backup of a small state takes seconds.
func slowProxy(t *testing.T, target string, rate int) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, "http://"+target+r.URL.RequestURI(), nil)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		w.WriteHeader(resp.StatusCode)
		const piece = 4 << 10
		for {
			n, err := io.CopyN(w, resp.Body, piece)
			w.(http.Flusher).Flush()
			if err != nil || n < piece {
				return
			}
			select {
			case <-r.Context().Done():
				return
			case <-time.After(time.Duration(piece) * time.Second / time.Duration(rate)):
			}
		}
	}))
	t.Cleanup(func() { srv.CloseClientConnections(); srv.Close(); http.DefaultClient.CloseIdleConnections() })
	return srv.Listener.Addr().String()
}

// TestSignalDuringStateSnapshot sends SIGTERM or SIGKILL to the real binary in the
// middle of a state snapshot backup, to local storage and through the shell-command
// backend: no visible partial file, no metadata, and no process of the run left
// (after SIGKILL within 2 s).
func TestSignalDuringStateSnapshot(t *testing.T) {
	bin := buildBinary(t)
	tc := newTestChain(t, 250, 20000)
	addr := slowProxy(t, tc.addr, 1<<20)
	version := uint64(200)
	for _, storeName := range []string{"local", "shell"} {
		for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
			t.Run(fmt.Sprintf("%s/%v", storeName, sig), func(t *testing.T) {
				root := t.TempDir()
				args := []string{"backup", "state-snapshot", "--version", fmt.Sprint(version), "--backup-service-address", addr,
					"--max-chunk-size", "16384", "--concurrent-data-requests", "2", "--progress", "none", "--log-level", "warn"}
				if storeName == "local" {
					args = append(args, "--storage", "file://"+root)
				} else {
					b, err := os.ReadFile("../storage/shell/samples/local.yaml")
					if err != nil {
						t.Fatal(err)
					}
					cfg := filepath.Join(t.TempDir(), "local.yaml")
					if err := os.WriteFile(cfg, []byte(strings.Replace(string(b), "/var/backups/ledgervault", root, 1)), 0o644); err != nil {
						t.Fatal(err)
					}
					args = append(args, "--command-config", cfg)
				}
				marker := fmt.Sprintf("termination-%d-%s-%d", os.Getpid(), storeName, sig)
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), "LEDGERVAULT_TERMINATION_TEST="+marker)
				var stderr strings.Builder
				cmd.Stderr = &stderr
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
				waited := make(chan error, 1)
				go func() { waited <- cmd.Wait() }()
				// Wait until some chunks are committed, then signal.
				deadline := time.Now().Add(60 * time.Second)
				for {
					m, _ := filepath.Glob(filepath.Join(root, "state_snapshot_ver_*", "state-*.zst"))
					if len(m) >= 3 {
						break
					}
					select {
					case err := <-waited:
						t.Fatalf("backup ended before the signal: %v\n%s", err, stderr.String())
					case <-time.After(20 * time.Millisecond):
					}
					if time.Now().After(deadline) {
						cmd.Process.Kill()
						<-waited
						t.Fatal("no chunk after 60s")
					}
				}
				sent := time.Now()
				if err := cmd.Process.Signal(sig); err != nil {
					t.Fatal(err)
				}
				var err error
				select {
				case err = <-waited:
				case <-time.After(30 * time.Second):
					cmd.Process.Kill()
					<-waited
					t.Fatalf("no exit 30s after %v", sig)
				}
				var ee *exec.ExitError
				if !errors.As(err, &ee) {
					t.Fatalf("exit: %v\n%s", err, stderr.String())
				}
				if sig == syscall.SIGTERM && ee.ExitCode() != 128+int(syscall.SIGTERM) {
					t.Fatalf("exit status %d after SIGTERM, want %d\n%s", ee.ExitCode(), 128+int(syscall.SIGTERM), stderr.String())
				}
				t.Logf("%v: exited after %v: %v", sig, time.Since(sent).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
				// No process of the run left within 2 s of the exit.
				for wait := time.Now().Add(2 * time.Second); ; {
					pids, err := proc.ProcessesWithEnv("LEDGERVAULT_TERMINATION_TEST", marker)
					if err != nil {
						t.Fatal(err)
					}
					if len(pids) == 0 {
						break
					}
					if time.Now().After(wait) {
						t.Fatalf("processes left after %v: %s", sig, proc.Describe(pids))
					}
					time.Sleep(20 * time.Millisecond)
				}
				if m, _ := filepath.Glob(filepath.Join(root, "metadata", "*")); len(m) != 0 {
					t.Fatalf("metadata of the unfinished backup: %v", m)
				}
				// A SIGTERM lets writers abort (local removes its temp files); a SIGKILL or a
				// killed shell script leaves hidden temp files for gc, never a final name.
				allowTemp := sig == syscall.SIGKILL || storeName == "shell"
				if n := checkFilesComplete(t, root, allowTemp); n < 3 {
					t.Fatalf("only %d complete files", n)
				}
			})
		}
	}
	_ = context.Background
}

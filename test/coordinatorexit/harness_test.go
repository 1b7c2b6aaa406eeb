// Package coordinatorexit runs the real ledgervault binary's backup coordinator
// against a real node and checks its documented exit statuses end to end.
package coordinatorexit

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// The node: epoch 1 ends at version 1000, where it stops committing, so the first
// state snapshot (at 1000) holds the genesis accounts and the bulk ones.
const (
	epochLength     = 1000
	untilVersion    = 1000
	initialAccounts = 100_000
)

var (
	binPath  string // the ledgervault binary
	nodeAddr string // the node's backup service
	workDir  string // temporary directory of the package
	nodeProc *child
)

func TestMain(m *testing.M) {
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	code := run(m)
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
	}
	os.Exit(code)
}

// run builds the binary, starts the node, runs the tests and stops the node.
func run(m *testing.M) int {
	var err error
	if workDir, err = os.MkdirTemp("", "coordinatorexit-"); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(workDir)
	binPath = filepath.Join(workDir, "ledgervault")
	if out, err := exec.Command("go", "build", "-o", binPath, "github.com/ledgervault/ledgervault/cmd/ledgervault").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	if err := startNode(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if nodeProc != nil {
			nodeProc.kill()
		}
		return 1
	}
	code := m.Run()
	nodeProc.signal(syscall.SIGTERM)
	if c, err := nodeProc.wait(60 * time.Second); err != nil || c != 0 {
		fmt.Fprintf(os.Stderr, "node exit status %d (%v): %s\n", c, err, nodeProc.tail())
		code = 1
	}
	return code
}

// startNode initialises a node and runs it until it has committed untilVersion.
func startNode() error {
	dir := filepath.Join(workDir, "node")
	out, err := exec.Command(binPath, "node", "init", "--dir", dir, "--epoch-length", fmt.Sprint(epochLength),
		"--initial-accounts", fmt.Sprint(initialAccounts), "--large-value-size", "2048", "--log-format", "json").CombinedOutput()
	if err != nil {
		return fmt.Errorf("node init: %v\n%s", err, out)
	}
	nodeProc, err = startChild(filepath.Join(workDir, "node.log"), "node", "run", "--dir", dir,
		"--backup-service-address", "127.0.0.1:0", "--metrics-addr=", "--until-version", fmt.Sprint(untilVersion), "--log-format", "json")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		reached := false
		for _, l := range nodeProc.lines() {
			switch logField(l, "msg") {
			case "node running":
				nodeAddr = logField(l, "backup_service")
			case "reached --until-version; serving until stopped":
				reached = true
			}
		}
		if nodeAddr != "" && reached {
			return nil
		}
		if nodeProc.exited() || time.Now().After(deadline) {
			return fmt.Errorf("node did not reach version %d: %s", untilVersion, nodeProc.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// child is a process of the binary whose output (stdout and stderr) goes to a file.
type child struct {
	cmd     *exec.Cmd
	logPath string
	done    chan struct{}
	once    sync.Once
	err     error
}

func startChild(logPath string, args ...string) (*child, error) {
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	cmd := exec.Command(binPath, args...)
	cmd.Stdout, cmd.Stderr = f, f // files: no copying goroutines
	// The node serves until stopped: should the test binary die (a -timeout panic,
	// a SIGKILL) it must not outlive it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %v: %w", args, err)
	}
	c := &child{cmd: cmd, logPath: logPath, done: make(chan struct{})}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// run starts the binary with args for t and makes sure it is gone when t ends.
func runChild(t *testing.T, name string, args ...string) *child {
	t.Helper()
	c, err := startChild(filepath.Join(t.TempDir(), name+".log"), args...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if !c.exited() {
			c.kill()
			t.Errorf("%s still running at the end of the test: killed", name)
		}
		if t.Failed() {
			t.Logf("%s output:\n%s", name, c.tail())
		}
	})
	return c
}

func (c *child) exited() bool {
	select {
	case <-c.done:
		return true
	default:
		return false
	}
}

func (c *child) signal(s syscall.Signal) { _ = c.cmd.Process.Signal(s) }

func (c *child) kill() {
	_ = c.cmd.Process.Kill()
	<-c.done
}

// wait waits up to timeout for the process to exit and returns its exit status.
func (c *child) wait(timeout time.Duration) (int, error) {
	select {
	case <-c.done:
	case <-time.After(timeout):
		return -1, fmt.Errorf("still running after %v", timeout)
	}
	if c.cmd.ProcessState.ExitCode() < 0 {
		return -1, fmt.Errorf("killed: %v", c.err)
	}
	return c.cmd.ProcessState.ExitCode(), nil
}

// output returns what the process wrote so far.
func (c *child) output() string {
	b, _ := os.ReadFile(c.logPath)
	return string(b)
}

func (c *child) tail() string {
	s := c.output()
	if len(s) > 4000 {
		s = "..." + s[len(s)-4000:]
	}
	return s
}

func (c *child) lines() [][]byte {
	var out [][]byte
	sc := bufio.NewScanner(strings.NewReader(c.output()))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	return out
}

// logField returns a string field of a JSON log line ("" if absent).
func logField(line []byte, key string) string {
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		return ""
	}
	s, _ := m[key].(string)
	return s
}

// waitLog waits for a JSON log line with msg and returns the value of field.
func (c *child) waitLog(t *testing.T, msg, field string, timeout time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range c.lines() {
			if logField(l, "msg") == msg {
				return logField(l, field)
			}
		}
		if c.exited() || time.Now().After(deadline) {
			t.Fatalf("no log line %q: %s", msg, c.tail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// httpGet returns the status and body of a GET on 127.0.0.1.
func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	cl := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := cl.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp.StatusCode, string(b)
}

// metric returns the value of an unlabelled metric in a Prometheus text exposition.
func metric(t *testing.T, body, name string) float64 {
	t.Helper()
	for _, l := range strings.Split(body, "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			var f float64
			if _, err := fmt.Sscan(v, &f); err != nil {
				t.Fatalf("metric %s: %q", name, l)
			}
			return f
		}
	}
	t.Fatalf("metric %s not exposed", name)
	return 0
}

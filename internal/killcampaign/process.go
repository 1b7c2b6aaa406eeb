package killcampaign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ledgervault/ledgervault/internal/proc"
)

// MarkerEnv is the environment variable that marks every process of one coordinator
// run (the coordinator, its guards and their shell pipelines inherit it), so that
// survivors are found after the coordinator is gone whatever their parent is now.
const MarkerEnv = "LEDGERVAULT_KILLCAMPAIGN_MARKER"

// child is a running ledgervault process whose stderr is kept in a log file and
// scanned line by line.
type child struct {
	cmd     *exec.Cmd
	marker  string
	logPath string
	done    chan struct{} // closed once cmd.Wait returned
	err     error         // cmd.Wait's result, set before done is closed
	lw      *lineWriter
}

// lineWriter writes a process's stderr to its log file and keeps the lines a watch
// function accepts.
type lineWriter struct {
	mu      sync.Mutex
	f       *os.File
	partial []byte
	lines   []string
	watch   func(line []byte) bool
}

// maxLine bounds a buffered partial line; longer lines are logged, not watched.
const maxLine = 1 << 20

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.f.Write(p)
	w.partial = append(w.partial, p...)
	for {
		i := bytes.IndexByte(w.partial, '\n')
		if i < 0 {
			break
		}
		if line := w.partial[:i]; w.watch != nil && w.watch(line) {
			w.lines = append(w.lines, string(line))
		}
		w.partial = w.partial[i+1:]
	}
	if len(w.partial) > maxLine {
		w.partial = w.partial[:0]
	}
	w.partial = append([]byte(nil), w.partial...)
	return len(p), nil
}

// startChild starts bin with args and extra environment, logging its stderr to
// logPath. watch, if set, is called for every stderr line; lines it accepts are kept.
func startChild(bin string, args, env []string, logPath string, watch func([]byte) bool) (*child, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open log %s: %w", logPath, err)
	}
	c := &child{logPath: logPath, done: make(chan struct{}), lw: &lineWriter{f: logFile, watch: watch}}
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, MarkerEnv+"="); ok {
			c.marker = v
		}
	}
	c.cmd = exec.Command(bin, args...)
	c.cmd.Env = append(os.Environ(), env...)
	c.cmd.Stdout = io.Discard
	c.cmd.Stderr = c.lw
	// A process that survives the child and holds its stderr open (an orphan, which
	// the campaign counts) must not keep Wait from returning.
	c.cmd.WaitDelay = time.Second
	// Its own group: a terminal's Ctrl-C reaches the campaign, which stops its children
	// in order. The parent-death signal ends it should the campaign itself be killed.
	c.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s %s: %w", bin, strings.Join(args, " "), err)
	}
	go func() {
		c.err = c.cmd.Wait()
		if errors.Is(c.err, exec.ErrWaitDelay) {
			c.err = nil // exited with status 0; an orphan held stderr (counted separately)
		}
		c.lw.mu.Lock()
		logFile.Close()
		c.lw.mu.Unlock()
		close(c.done)
	}()
	return c, nil
}

// signal sends sig to the process (not its children: they must die because the
// process died, which is what the campaign checks).
func (c *child) signal(sig syscall.Signal) error {
	return c.cmd.Process.Signal(sig)
}

// waitDone waits up to timeout for the process to exit; on timeout it SIGKILLs it and
// reports an error. A process already gone is never killed, whatever the timeout
// (select picks at random among ready cases, and a zero timer is ready at once).
func (c *child) waitDone(timeout time.Duration) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case <-c.done:
		return nil
	case <-t.C:
		c.cmd.Process.Kill()
		<-c.done // returns: WaitDelay bounds the wait for stderr
		return fmt.Errorf("%s did not exit within %v (killed)", filepath.Base(c.logPath), timeout)
	}
}

// waitExit waits for the process to exit, up to timeout; on timeout it SIGKILLs it
// and reports an error.
func (c *child) waitExit(timeout time.Duration) (status int, signaled syscall.Signal, err error) {
	if err := c.waitDone(timeout); err != nil {
		return -1, 0, err
	}
	var ee *exec.ExitError
	switch {
	case c.err == nil:
		return 0, 0, nil
	case errors.As(c.err, &ee):
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return -1, ws.Signal(), nil
		}
		return ee.ExitCode(), 0, nil
	default:
		return -1, 0, c.err
	}
}

// kept returns the stderr lines the watch function accepted.
func (c *child) kept() []string {
	c.lw.mu.Lock()
	defer c.lw.mu.Unlock()
	return append([]string(nil), c.lw.lines...)
}

// tail returns the last n bytes of the process's log, for error messages.
func (c *child) tail(n int) string {
	b, err := os.ReadFile(c.logPath)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(bytes.TrimSpace(b))
}

// survivors waits up to limit for every process carrying marker to be gone and
// returns those still alive then.
func survivors(marker string, limit time.Duration) []int {
	deadline := time.Now().Add(limit)
	for {
		pids, _ := proc.ProcessesWithEnv(MarkerEnv, marker)
		pids = alive(pids)
		if len(pids) == 0 || time.Now().After(deadline) {
			return pids
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive drops zombies (exited, not yet reaped by their new parent).
func alive(pids []int) []int {
	out := pids[:0]
	for _, pid := range pids {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i > 0 && i+2 < len(b) && b[i+2] == 'Z' {
			continue
		}
		out = append(out, pid)
	}
	return out
}

// killSurvivors SIGKILLs leftover processes so that one failed kill does not disturb
// the next ones (they were counted first).
func killSurvivors(pids []int) {
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// logField returns a string field of a JSON log line ("" if absent).
func logField(line []byte, key string) string {
	var m map[string]any
	if json.Unmarshal(line, &m) != nil {
		return ""
	}
	switch v := m[key].(type) {
	case string:
		return v
	case float64:
		return fmt.Sprint(int64(v))
	default:
		return ""
	}
}

// runTool runs a ledgervault command to completion and returns its stdout; a non-zero
// exit is an error carrying the tail of stderr.
func runTool(ctx context.Context, bin string, env []string, args ...string) ([]byte, int, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	code := 0
	if err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			return nil, -1, fmt.Errorf("ledgervault %s: %w", args[0], err)
		}
		code = ee.ExitCode()
		tail := stderr.Bytes()
		if len(tail) > 2000 {
			tail = tail[len(tail)-2000:]
		}
		return stdout.Bytes(), code, fmt.Errorf("ledgervault %s: exit %d: %s", strings.Join(args[:min(2, len(args))], " "), code, bytes.TrimSpace(tail))
	}
	return stdout.Bytes(), 0, nil
}

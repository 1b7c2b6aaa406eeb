// Package proc runs child processes so that none outlives its operation: each child
// gets its own process group and a parent-death signal, cancellation kills the whole
// group before the child's stdin is closed (a clean EOF could let an uploader commit a
// truncated file), every child is waited for, and its stderr tail is kept for errors.
//
// Commands that receive data and may spawn grandchildren run under a guard (see
// GuardMain and StartGuarded), a copy of this binary that is the pipeline's subreaper
// and kills it when its parent vanishes without committing.
package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// StderrTail is how many trailing bytes of a child's stderr are kept for errors.
const StderrTail = 64 << 10

var inFlight atomic.Int64

// InFlight returns the number of supervised children started and not yet waited for.
func InFlight() int64 { return inFlight.Load() }

// Spec describes a child process.
type Spec struct {
	// Name names the child in errors.
	Name string
	// Path is the program; Args are its arguments including argv[0].
	Path string
	Args []string
	// Env is the child's whole environment.
	Env []string
	// Dir is the working directory; empty means the current one.
	Dir string
	// Stdin gives the caller a pipe to the child's stdin (Process.Stdin).
	Stdin bool
	// StdoutPipe gives the caller the child's stdout (Process.Stdout); otherwise stdout
	// is captured with stderr.
	StdoutPipe bool
	// Pdeathsig is sent to the child when this process dies; zero means SIGKILL.
	Pdeathsig syscall.Signal
	// TermGrace, when positive, makes cancellation first send SIGTERM to the child
	// alone and wait up to TermGrace for it to exit before the group is SIGKILLed. The
	// guard uses it: it must get to kill its pipeline itself.
	TermGrace time.Duration
}

// Process is a running, supervised child.
type Process struct {
	spec   Spec
	cmd    *exec.Cmd
	pid    int
	stdin  *os.File
	stdout *os.File
	stderr *tailBuffer

	stdinMu     sync.Mutex
	stdinClosed bool

	done        chan struct{} // closed once the child has been waited for
	waitErr     error
	killed      atomic.Bool
	killOnce    sync.Once
	watchDone   chan struct{}
	cancelGrace atomic.Int64  // see DeferCancel
	killNow     chan struct{} // closed by Kill
}

// ExitError reports a child that failed, with the tail of its stderr.
type ExitError struct {
	// Name is the child's Spec.Name.
	Name string
	// Code is the exit status, or -1 if the child was killed by a signal.
	Code int
	// Signal is the signal that killed the child, if any.
	Signal syscall.Signal
	// Killed reports that the supervisor killed the child (cancel or Kill).
	Killed bool
	// Stderr is the tail of the child's stderr.
	Stderr string
}

func (e *ExitError) Error() string {
	var what string
	switch {
	case e.Killed:
		what = "killed on cancel"
	case e.Code >= 0:
		what = fmt.Sprintf("exit status %d", e.Code)
	default:
		what = "killed by " + e.Signal.String()
	}
	if e.Stderr != "" {
		return fmt.Sprintf("%s: %s; stderr: %s", e.Name, what, e.Stderr)
	}
	return fmt.Sprintf("%s: %s", e.Name, what)
}

// Start starts the child. ctx cancellation kills it (see Kill). The caller must call
// Wait exactly once.
func Start(ctx context.Context, spec Spec) (*Process, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	cmd := &exec.Cmd{Path: spec.Path, Args: spec.Args, Env: spec.Env, Dir: spec.Dir}
	sig := spec.Pdeathsig
	if sig == 0 {
		sig = syscall.SIGKILL
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: sig}
	p := &Process{spec: spec, cmd: cmd, stderr: &tailBuffer{max: StderrTail}, done: make(chan struct{}), watchDone: make(chan struct{}), killNow: make(chan struct{})}

	var toClose []*os.File // child ends, closed after start
	closeAll := func(fs []*os.File) {
		for _, f := range fs {
			if f != nil {
				f.Close()
			}
		}
	}
	if spec.Stdin {
		r, w, err := os.Pipe()
		if err != nil {
			return nil, fmt.Errorf("start %s: stdin pipe: %w", spec.Name, err)
		}
		cmd.Stdin, p.stdin = r, w
		toClose = append(toClose, r)
	}
	er, ew, err := os.Pipe()
	if err != nil {
		closeAll(toClose)
		closeAll([]*os.File{p.stdin})
		return nil, fmt.Errorf("start %s: stderr pipe: %w", spec.Name, err)
	}
	cmd.Stderr = ew
	toClose = append(toClose, ew)
	if spec.StdoutPipe {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(toClose)
			closeAll([]*os.File{p.stdin, er})
			return nil, fmt.Errorf("start %s: stdout pipe: %w", spec.Name, err)
		}
		cmd.Stdout, p.stdout = w, r
		toClose = append(toClose, w)
	} else {
		cmd.Stdout = ew
	}

	// Pdeathsig fires when the creating OS thread exits, so the thread stays locked
	// until the child has been waited for.
	started := make(chan error, 1)
	drained := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		inFlight.Add(1)
		p.pid = cmd.Process.Pid
		started <- nil
		err := cmd.Wait()
		// Anything the child left in its group goes with it.
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		select {
		case <-drained:
		case <-time.After(2 * time.Second):
			er.Close() // a process outside the group holds stderr; stop reading
			<-drained
		}
		p.waitErr = err
		inFlight.Add(-1)
		close(p.done)
	}()
	err = <-started
	closeAll(toClose)
	if err != nil {
		er.Close()
		closeAll([]*os.File{p.stdin, p.stdout})
		return nil, fmt.Errorf("start %s: %w", spec.Name, err)
	}
	go func() {
		defer close(drained)
		io.Copy(p.stderr, er)
		er.Close()
	}()
	go func() {
		defer close(p.watchDone)
		select {
		case <-ctx.Done():
			if g := time.Duration(p.cancelGrace.Load()); g > 0 {
				select {
				case <-p.done:
					return
				case <-p.killNow:
				case <-time.After(g):
				}
			}
			p.Kill()
		case <-p.done:
		}
	}()
	return p, nil
}

// Pid returns the child's process id (also its process group id).
func (p *Process) Pid() int { return p.pid }

// Stdin returns the pipe to the child's stdin (Spec.Stdin). Close it with CloseStdin.
func (p *Process) Stdin() io.Writer { return p.stdin }

// Stdout returns the child's stdout (Spec.StdoutPipe). The caller reads it and
// closes it with CloseStdout before or after Wait.
func (p *Process) Stdout() io.Reader { return p.stdout }

// CloseStdout closes the read end of the child's stdout.
func (p *Process) CloseStdout() {
	if p.stdout != nil {
		p.stdout.Close()
	}
}

// CloseStdin closes the child's stdin, signalling the end of the data. Call it only
// to commit; Kill never lets the child see EOF first.
func (p *Process) CloseStdin() error {
	p.stdinMu.Lock()
	defer p.stdinMu.Unlock()
	if p.stdin == nil || p.stdinClosed {
		return nil
	}
	p.stdinClosed = true
	return p.stdin.Close()
}

// Kill stops the child: with TermGrace, SIGTERM to the child and a grace period;
// then SIGKILL to its whole process group; only then is its stdin closed. Kill is
// idempotent and does not wait; call Wait.
func (p *Process) Kill() {
	p.killOnce.Do(func() {
		close(p.killNow)
		select {
		case <-p.done:
			return
		default:
		}
		p.killed.Store(true)
		if p.spec.TermGrace > 0 {
			_ = syscall.Kill(p.pid, syscall.SIGTERM)
			select {
			case <-p.done:
			case <-time.After(p.spec.TermGrace):
			}
		}
		_ = syscall.Kill(-p.pid, syscall.SIGKILL)
		p.CloseStdin()
	})
}

// DeferCancel makes a later context cancellation wait up to grace for the child to
// exit on its own before killing it. A committing upload uses it: once the data is
// complete, finishing is better than leaving the outcome unknown. Kill still acts at
// once.
func (p *Process) DeferCancel(grace time.Duration) { p.cancelGrace.Store(int64(grace)) }

// Done is closed once the child has exited and been waited for.
func (p *Process) Done() <-chan struct{} { return p.done }

// Wait waits for the child, releases its pipes and returns nil for exit status 0 or
// an *ExitError.
func (p *Process) Wait() error {
	<-p.done
	<-p.watchDone
	p.CloseStdin()
	p.CloseStdout()
	err := p.waitErr
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return fmt.Errorf("wait %s: %w", p.spec.Name, err)
	}
	out := &ExitError{Name: p.spec.Name, Code: ee.ExitCode(), Killed: p.killed.Load(), Stderr: p.stderr.String()}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		out.Signal = ws.Signal()
	}
	return out
}

// Stderr returns the captured tail of the child's stderr so far.
func (p *Process) Stderr() string { return p.stderr.String() }

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := len(p)
	if len(p) >= b.max {
		b.buf = append(b.buf[:0], p[len(p)-b.max:]...)
		return n, nil
	}
	if over := len(b.buf) + len(p) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	b.buf = append(b.buf, p...)
	return n, nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

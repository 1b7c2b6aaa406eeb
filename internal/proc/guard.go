package proc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	guardEnv       = "LEDGERVAULT_GUARD"
	guardScriptEnv = "LEDGERVAULT_GUARD_SCRIPT"
	guardParentEnv = "LEDGERVAULT_GUARD_PARENT"

	// ShellPrefix starts every guarded or supervised shell script.
	ShellPrefix = "set -o nounset -o errexit -o pipefail; "

	// GuardExitAborted is the guard's exit status when it killed the pipeline
	// without a commit (parent gone, stdin EOF without COMMIT, signal).
	GuardExitAborted = 120
	// GuardExitFailed is the guard's exit status when it could not run the pipeline.
	GuardExitFailed = 121

	guardGrace = 10 * time.Second
)

// GuardMain runs the guard when this process was started as one by StartGuarded and
// reports isGuard; main (and TestMain of tests that use guards) calls it first:
//
//	if code, ok := proc.GuardMain(); ok { os.Exit(code) }
func GuardMain() (code int, isGuard bool) {
	if os.Getenv(guardEnv) != "1" {
		return 0, false
	}
	return runGuard(), true
}

func guardf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "ledgervault guard: "+format+"\n", args...)
}

// runGuard is the guard: subreaper of a bash pipeline that it feeds from framed
// stdin and kills, group and reparented descendants, unless it gets a COMMIT frame.
func runGuard() int {
	// The pipeline's Pdeathsig belongs to this thread: never let it go.
	runtime.LockOSThread()
	script := os.Getenv(guardScriptEnv)
	parent, _ := strconv.Atoi(os.Getenv(guardParentEnv))
	os.Unsetenv(guardEnv)
	os.Unsetenv(guardScriptEnv)
	os.Unsetenv(guardParentEnv)

	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	signal.Ignore(syscall.SIGPIPE)
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		guardf("become subreaper: %v", err)
		return GuardExitFailed
	}
	if parent == 0 || os.Getppid() != parent {
		guardf("parent %d is gone before the pipeline started", parent)
		return GuardExitAborted
	}
	pid, pw, code := startPipeline(script)
	if pid == 0 {
		return code
	}
	// The pipeline owns stdout now; the parent sees EOF when the pipeline closes it.
	os.Stdout.Close()
	bashDone, allReaped := reapAll(pid)
	events := relayFrames(pw)

	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	abort := func(why string) int {
		killTree(pid)
		waitReaped(allReaped)
		guardf("pipeline killed before commit: %s", why)
		return GuardExitAborted
	}
	for {
		select {
		case s := <-sigc:
			return abort("got " + s.String())
		case <-tick.C:
			if os.Getppid() != parent {
				return abort("parent died")
			}
		case ev := <-events:
			if ev == evEOF {
				return abort("stdin ended without commit")
			}
			// Only now may the pipeline see EOF.
			pw.Close()
			select {
			case ws := <-bashDone:
				killTree(pid) // stragglers the pipeline left behind
				waitReaped(allReaped)
				return statusCode(ws)
			case s := <-sigc:
				return abort("got " + s.String() + " while committing")
			}
		case ws := <-bashDone:
			killTree(pid)
			waitReaped(allReaped)
			if c := statusCode(ws); c != 0 {
				return c
			}
			guardf("pipeline exited before the data was committed")
			return GuardExitAborted
		}
	}
}

// startPipeline starts bash running script in its own process group, reading the
// returned pipe, on the calling (locked) thread so that its Pdeathsig holds. On
// failure pid is 0 and code the guard's exit status.
func startPipeline(script string) (pid int, pw *os.File, code int) {
	bash, err := exec.LookPath("bash")
	if err != nil {
		guardf("find bash: %v", err)
		return 0, nil, GuardExitFailed
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		guardf("pipe: %v", err)
		return 0, nil, GuardExitFailed
	}
	pid, err = syscall.ForkExec(bash, []string{"bash", "-c", ShellPrefix + script}, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{pr.Fd(), 1, 2},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL},
	})
	pr.Close()
	if err != nil {
		pw.Close()
		guardf("start bash: %v", err)
		return 0, nil, GuardExitFailed
	}
	return pid, pw, 0
}

// reapAll is the only reaper in the guard: it waits for every child, direct or
// reparented, reports bash's (pid's) status on bashDone and closes allReaped when
// nobody is left.
func reapAll(pid int) (bashDone <-chan syscall.WaitStatus, allReaped <-chan struct{}) {
	done := make(chan syscall.WaitStatus, 1)
	reaped := make(chan struct{})
	go func() {
		defer close(reaped)
		for {
			var ws syscall.WaitStatus
			wpid, err := syscall.Wait4(-1, &ws, 0, nil)
			if err == syscall.EINTR {
				continue
			}
			if err != nil {
				return // ECHILD: nobody left
			}
			if wpid == pid {
				done <- ws
			}
		}
	}()
	return done, reaped
}

// Events of relayFrames.
const (
	evCommit = iota
	evEOF
)

// relayFrames relays the data frames of stdin to the pipeline's stdin pw and reports
// evCommit (a COMMIT frame) or evEOF (stdin ended or broke without one).
func relayFrames(pw *os.File) <-chan int {
	events := make(chan int, 1)
	go func() {
		buf := make([]byte, MaxFrame)
		for {
			typ, p, err := readFrame(os.Stdin, buf)
			if err != nil {
				if !errors.Is(err, io.EOF) {
					guardf("read frame: %v", err)
				}
				events <- evEOF
				return
			}
			if typ == frameCommit {
				events <- evCommit
				return
			}
			if _, err := pw.Write(p); err != nil {
				// The pipeline stopped reading; its exit status tells why.
				return
			}
		}
	}()
	return events
}

func statusCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// killTree SIGKILLs the pipeline's process group and every live descendant of this
// process (reparented orphans included) until none is left.
func killTree(pgid int) {
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	self := os.Getpid()
	deadline := time.Now().Add(guardGrace)
	for time.Now().Before(deadline) {
		all, err := allProcs()
		if err != nil {
			return
		}
		live := 0
		for _, p := range descendants(all, self) {
			if p.state == 'Z' || p.state == 'X' {
				continue
			}
			live++
			_ = syscall.Kill(p.pid, syscall.SIGKILL)
		}
		if live == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitReaped(allReaped <-chan struct{}) {
	select {
	case <-allReaped:
	case <-time.After(guardGrace):
		guardf("descendants not reaped after %v", guardGrace)
	}
}

// GuardSpec describes a shell pipeline run under a guard.
type GuardSpec struct {
	// Name names the pipeline in errors.
	Name string
	// Script is the bash script; it runs after ShellPrefix.
	Script string
	// Env is the pipeline's whole environment.
	Env []string
	// CommitGrace bounds how long a context cancellation that arrives after Commit
	// sent the COMMIT frame waits for the pipeline to finish before killing it; zero
	// means DefaultCommitGrace.
	CommitGrace time.Duration
}

// DefaultCommitGrace is GuardSpec.CommitGrace's default.
const DefaultCommitGrace = 30 * time.Second

// Guarded is a shell pipeline fed through a guard. Write sends data, Commit ends it
// and requires exit status 0, Abort kills it before it can see EOF.
type Guarded struct {
	ctx   context.Context
	grace time.Duration
	p     *Process
	err   error // first write error
	done  bool
}

// StartGuarded starts a guard (this binary, which must call GuardMain first thing)
// running spec.Script. Cancelling ctx aborts the pipeline.
func StartGuarded(ctx context.Context, spec GuardSpec) (*Guarded, error) {
	// /proc/self/exe is the running image even if the file was replaced on disk.
	const exe = "/proc/self/exe"
	env := append(append([]string(nil), spec.Env...),
		guardEnv+"=1", guardScriptEnv+"="+spec.Script, guardParentEnv+"="+strconv.Itoa(os.Getpid()))
	p, err := Start(ctx, Spec{
		Name:       spec.Name,
		Path:       exe,
		Args:       []string{"ledgervault-guard"},
		Env:        env,
		Stdin:      true,
		StdoutPipe: true,
		Pdeathsig:  syscall.SIGTERM,
		TermGrace:  guardGrace,
	})
	if err != nil {
		return nil, err
	}
	grace := spec.CommitGrace
	if grace <= 0 {
		grace = DefaultCommitGrace
	}
	return &Guarded{ctx: ctx, grace: grace, p: p}, nil
}

// Stdout returns the pipeline's stdout; it must be read or closed (CloseStdout).
func (g *Guarded) Stdout() io.Reader { return g.p.Stdout() }

// CloseStdout stops reading the pipeline's stdout.
func (g *Guarded) CloseStdout() { g.p.CloseStdout() }

// Process returns the guard process.
func (g *Guarded) Process() *Process { return g.p }

// Write sends p to the pipeline's stdin in frames.
func (g *Guarded) Write(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	if err := g.ctx.Err(); err != nil {
		g.err = fmt.Errorf("write to %s: %w", g.p.spec.Name, err)
		return 0, g.err
	}
	n := 0
	for len(p) > 0 {
		c := min(len(p), MaxFrame)
		if err := writeFrame(g.p.Stdin(), frameData, p[:c]); err != nil {
			g.err = fmt.Errorf("write to %s: %w", g.p.spec.Name, err)
			return n, g.err
		}
		n += c
		p = p[c:]
	}
	return n, nil
}

// Commit sends the commit frame, closes the guard's stdin and waits for the pipeline
// to exit with status 0.
func (g *Guarded) Commit() error {
	if g.done {
		return fmt.Errorf("commit %s: already finished", g.p.spec.Name)
	}
	g.done = true
	if err := g.ctx.Err(); err != nil && g.err == nil {
		g.err = fmt.Errorf("commit %s: %w", g.p.spec.Name, err)
	}
	if g.err != nil {
		g.p.Kill()
		g.p.Wait()
		return g.err
	}
	// From here the pipeline may complete the file: a cancellation lets it finish
	// (up to the grace period) rather than leave the outcome unknown.
	g.p.DeferCancel(g.grace)
	if err := writeFrame(g.p.Stdin(), frameCommit, nil); err != nil {
		g.p.Kill()
		werr := g.p.Wait()
		return fmt.Errorf("commit %s: %w (%v)", g.p.spec.Name, err, werr)
	}
	g.p.CloseStdin()
	err := g.p.Wait()
	var ee *ExitError
	if errors.As(err, &ee) && ee.Killed {
		return fmt.Errorf("commit %s: %w: %w", g.p.spec.Name, ErrCommitInterrupted, err)
	}
	return err
}

// ErrCommitInterrupted reports a pipeline killed after it received all the data and
// the COMMIT: the file is either complete or absent, but which is unknown.
var ErrCommitInterrupted = errors.New("killed while committing; the file is either complete or absent")

// Abort kills the pipeline (through the guard, which kills it before any EOF reaches
// it) and waits for the guard. It is a no-op after Commit.
func (g *Guarded) Abort() error {
	if g.done {
		return nil
	}
	g.done = true
	g.p.Kill()
	err := g.p.Wait()
	var ee *ExitError
	if errors.As(err, &ee) && (ee.Killed || ee.Code == GuardExitAborted) {
		return nil
	}
	return err
}

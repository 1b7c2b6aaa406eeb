package benchbackup

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// Usage is what one child process (with the children it waited for) cost.
type Usage struct {
	Wall    time.Duration
	CPU     time.Duration // user + system, the child and its reaped descendants
	PeakRSS int64         // bytes: the largest of the child and its descendants
}

// runChild runs name args as a child process in dir (if not empty) with extra
// environment variables, writing its stdout to stdout (if not nil), and measures it
// with the kernel's resource usage of the child.
//
// The peak RSS comes from wait4's ru_maxrss, which on Linux also covers the
// descendants the child waited for (a shell pipeline's tar and zstd). A child started
// by vfork can inherit the parent's high-water mark at exec, so the high-water mark
// of the direct child is also read from /proc while it runs and the smaller of the
// two is kept when the child runs no descendants that could be larger (own is true).
func runChild(ctx context.Context, stdout io.Writer, env []string, own bool, name string, args ...string) (Usage, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), env...)
	if stdout != nil {
		cmd.Stdout = stdout
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return Usage{}, fmt.Errorf("start %s: %w", name, err)
	}
	var hwm int64
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
poll:
	for {
		if v := vmHWM(cmd.Process.Pid); v > hwm {
			hwm = v
		}
		select {
		case err = <-waited:
			break poll
		case <-time.After(20 * time.Millisecond):
		}
	}
	u := Usage{Wall: time.Since(t0)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.PeakRSS = ru.Maxrss << 10
	}
	if own && hwm > 0 && (u.PeakRSS == 0 || hwm < u.PeakRSS) {
		u.PeakRSS = hwm
	}
	if err != nil {
		msg := stderr.String()
		if len(msg) > 4000 {
			msg = msg[len(msg)-4000:]
		}
		return u, fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, msg)
	}
	return u, nil
}

// background is a child process that runs until stopped (the node serving).
type background struct {
	cmd    *exec.Cmd
	done   chan error
	stderr *strings.Builder
	t0     time.Time
}

func startBackground(ctx context.Context, name string, args ...string) (*background, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	b := &background{cmd: cmd, done: make(chan error, 1), stderr: &strings.Builder{}}
	cmd.Stderr = b.stderr
	b.t0 = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() { b.done <- cmd.Wait() }()
	return b, nil
}

// stop sends SIGTERM, waits for the exit and returns the child's usage.
func (b *background) stop() (Usage, error) {
	b.cmd.Process.Signal(syscall.SIGTERM)
	var err error
	select {
	case err = <-b.done:
	case <-time.After(30 * time.Second):
		b.cmd.Process.Kill()
		err = <-b.done
	}
	u := Usage{Wall: time.Since(b.t0)}
	if ru, ok := b.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.CPU = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
		u.PeakRSS = ru.Maxrss << 10
	}
	// 143: the node's exit status after the SIGTERM it was sent.
	if code := b.cmd.ProcessState.ExitCode(); err != nil && code != 0 && code != 143 && code != -1 {
		return u, fmt.Errorf("node: %w: %s", err, b.stderr.String())
	}
	return u, nil
}

// selfMaxRSS is this process's own peak RSS in bytes.
func selfMaxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return ru.Maxrss << 10
}

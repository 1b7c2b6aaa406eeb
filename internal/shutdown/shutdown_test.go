package shutdown

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// childEnv makes the test binary a child that watches real signals (see child).
const childEnv = "LEDGERVAULT_SHUTDOWN_TEST_CHILD"

func TestMain(m *testing.M) {
	if mode := os.Getenv(childEnv); mode != "" {
		os.Exit(child(mode))
	}
	goleak.VerifyTestMain(m)
}

// child watches SIGINT/SIGTERM and reports each step on stdout. Mode "exit" lets
// the second signal exit the process through Options.Exit; mode "return" returns
// the exit status of the second signal after Aborting is done, as the coordinator
// command does.
func child(mode string) int {
	o := Options{Grace: -1}
	if mode == "exit" {
		o.Exit = os.Exit
	}
	s := Watch(context.Background(), o)
	defer s.Close()
	fmt.Println("ready")
	<-s.Stopping().Done()
	fmt.Println("stopping", s.Signal())
	if mode == "exit" {
		time.Sleep(time.Hour) // the second signal exits through Options.Exit
		return 1
	}
	<-s.Aborting().Done()
	var se *SignalError
	if !errors.As(context.Cause(s.Aborting()), &se) {
		fmt.Println("cause", context.Cause(s.Aborting()))
		return 1
	}
	fmt.Println("aborting", se.Signal)
	return ExitCode(s.SecondSignal())
}

func TestStopWithoutGraceAbortsAtOnce(t *testing.T) {
	s := New(context.Background(), 0)
	defer s.Close()
	if s.Stopping().Err() != nil || s.Aborting().Err() != nil {
		t.Fatal("done before Stop")
	}
	s.Stop()
	if s.Stopping().Err() == nil {
		t.Fatal("Stopping not done after Stop")
	}
	if !errors.Is(context.Cause(s.Aborting()), ErrGraceExpired) {
		t.Fatalf("Aborting cause %v, want ErrGraceExpired", context.Cause(s.Aborting()))
	}
}

func TestNegativeGraceWaitsForAbort(t *testing.T) {
	s := New(context.Background(), -1)
	defer s.Close()
	s.Stop()
	s.Stop() // idempotent
	if s.Aborting().Err() != nil {
		t.Fatal("Aborting done without Abort")
	}
	s.Abort(nil)
	if !errors.Is(context.Cause(s.Aborting()), ErrAborted) {
		t.Fatalf("cause %v, want ErrAborted", context.Cause(s.Aborting()))
	}
	cause := errors.New("lease lost")
	s.Abort(cause) // the first cause stays
	if !errors.Is(context.Cause(s.Aborting()), ErrAborted) {
		t.Fatalf("cause %v after a second Abort, want ErrAborted", context.Cause(s.Aborting()))
	}
}

func TestAbortBeforeStopEndsBoth(t *testing.T) {
	s := New(context.Background(), time.Hour)
	defer s.Close()
	cause := errors.New("lease lost")
	s.Abort(cause)
	if s.Stopping().Err() == nil || !errors.Is(context.Cause(s.Aborting()), cause) {
		t.Fatalf("after Abort: stopping %v, aborting cause %v", s.Stopping().Err(), context.Cause(s.Aborting()))
	}
	s.Stop() // starts no timer after the abort
}

func TestGraceExpires(t *testing.T) {
	s := New(context.Background(), time.Millisecond)
	defer s.Close()
	s.Stop()
	<-s.Aborting().Done()
	if !errors.Is(context.Cause(s.Aborting()), ErrGraceExpired) {
		t.Fatalf("cause %v, want ErrGraceExpired", context.Cause(s.Aborting()))
	}
}

func TestParentEndsStoppingNotAborting(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	s := New(parent, time.Hour)
	cancel()
	<-s.Stopping().Done()
	if s.Aborting().Err() != nil {
		t.Fatal("Aborting ended with the parent, before the grace period")
	}
	s.Close()
	if !errors.Is(context.Cause(s.Aborting()), context.Canceled) {
		t.Fatalf("cause after Close %v, want context.Canceled", context.Cause(s.Aborting()))
	}
}

func TestWatchInjectedSignals(t *testing.T) {
	sigs := make(chan os.Signal)
	exited := make(chan int, 1)
	s := Watch(context.Background(), Options{Grace: -1, Signals: sigs, Exit: func(code int) { exited <- code }})
	defer s.Close()
	if s.Signal() != nil || s.SecondSignal() != nil {
		t.Fatal("signals before any was sent")
	}
	sigs <- syscall.SIGTERM
	<-s.Stopping().Done()
	if s.Signal() != syscall.SIGTERM {
		t.Fatalf("Signal() = %v", s.Signal())
	}
	if s.Aborting().Err() != nil {
		t.Fatal("Aborting done after one signal with a negative grace")
	}
	sigs <- syscall.SIGINT
	if code := <-exited; code != 130 {
		t.Fatalf("exit %d, want 130", code)
	}
	var se *SignalError
	if !errors.As(context.Cause(s.Aborting()), &se) || se.Signal != syscall.SIGINT {
		t.Fatalf("cause %v, want a SignalError of SIGINT", context.Cause(s.Aborting()))
	}
	if s.SecondSignal() != syscall.SIGINT {
		t.Fatalf("SecondSignal() = %v", s.SecondSignal())
	}
}

func TestWatchZeroGraceAbortsWithFirstSignal(t *testing.T) {
	sigs := make(chan os.Signal)
	s := Watch(context.Background(), Options{Signals: sigs})
	defer s.Close()
	sigs <- syscall.SIGINT
	<-s.Aborting().Done()
	if !errors.Is(context.Cause(s.Aborting()), ErrGraceExpired) || s.Stopping().Err() == nil {
		t.Fatalf("after one signal: cause %v, stopping %v", context.Cause(s.Aborting()), s.Stopping().Err())
	}
}

func TestCloseWithoutSignals(t *testing.T) {
	s := Watch(context.Background(), Options{Grace: time.Hour})
	s.Close()
	s.Close() // twice is fine
	if s.Stopping().Err() == nil || s.Signal() != nil {
		t.Fatalf("after Close: stopping %v, signal %v", s.Stopping().Err(), s.Signal())
	}
}

// TestRealSignals sends SIGTERM twice to a child process that watches real signals.
func TestRealSignals(t *testing.T) {
	for _, mode := range []string{"exit", "return"} {
		t.Run(mode, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), childEnv+"="+mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Process.Kill()
			lines := bufio.NewScanner(out)
			expect := func(want string) {
				t.Helper()
				if !lines.Scan() {
					t.Fatalf("child ended before %q: %v", want, lines.Err())
				}
				if got := lines.Text(); got != want {
					t.Fatalf("child said %q, want %q", got, want)
				}
			}
			expect("ready")
			cmd.Process.Signal(syscall.SIGTERM)
			expect("stopping terminated")
			cmd.Process.Signal(syscall.SIGTERM)
			if mode == "return" {
				expect("aborting terminated")
			}
			for lines.Scan() {
				t.Errorf("more output: %q", lines.Text())
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 143 {
				t.Fatalf("child exit %v, want status 143", err)
			}
			if strings.Contains(ee.String(), "signal") {
				t.Fatalf("child was killed by a signal (%v), want an exit", ee)
			}
		})
	}
}

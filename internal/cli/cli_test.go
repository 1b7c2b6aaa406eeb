package cli

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"

	"github.com/spf13/cobra"
	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/internal/proc"
)

func TestExecuteExitStatus(t *testing.T) {
	for _, tc := range []struct {
		err  error
		code int
	}{
		{nil, 0},
		{errors.New("plain"), 1},
		{fmt.Errorf("wrapped: %w", &ExitError{Code: 4, Err: errors.New("lease held")}), 4},
	} {
		root := Root("tool", "a tool")
		root.RunE = func(*cobra.Command, []string) error { return tc.err }
		var stderr bytes.Buffer
		if code := Execute(t.Context(), root, "tool", &stderr); code != tc.code {
			t.Errorf("%v: exit %d, want %d", tc.err, code, tc.code)
		}
		if tc.err != nil && !strings.HasPrefix(stderr.String(), "tool: ") {
			t.Errorf("%v: stderr %q", tc.err, stderr.String())
		}
	}
}

func TestInterrupted(t *testing.T) {
	err := errors.New("write chunk: context canceled")
	if Interrupted(err, nil) != err || Interrupted(nil, syscall.SIGTERM) != nil {
		t.Fatal("Interrupted changed an error without a signal, or made one from nil")
	}
	var ee *ExitError
	if !errors.As(Interrupted(err, syscall.SIGINT), &ee) || ee.Code != 130 || !strings.Contains(ee.Error(), "nothing committed") {
		t.Fatalf("after SIGINT: %v", Interrupted(err, syscall.SIGINT))
	}
	commit := fmt.Errorf("commit x: %w", proc.ErrCommitInterrupted)
	if !errors.As(Interrupted(commit, syscall.SIGTERM), &ee) || ee.Code != 143 || strings.Contains(ee.Error(), "nothing committed") {
		t.Fatalf("commit interrupted by SIGTERM: %v", Interrupted(commit, syscall.SIGTERM))
	}
	// A partial error says what was committed instead of "nothing committed".
	part := fmt.Errorf("restore: %w", partial{err, "5 of 7 chunks committed; rerun to resume from chunk 5"})
	got := Interrupted(part, syscall.SIGINT)
	if !errors.As(got, &ee) || ee.Code != 130 || strings.Contains(got.Error(), "nothing committed") ||
		!strings.Contains(got.Error(), "interrupted by interrupt, 5 of 7 chunks committed; rerun to resume from chunk 5: restore: write chunk") {
		t.Fatalf("partial restore interrupted by SIGINT: %v", got)
	}
}

// partial is a Partial error.
type partial struct {
	error
	summary string
}

func (p partial) Committed() string { return p.summary }

func TestLogFlags(t *testing.T) {
	var f LogFlags
	cmd := &cobra.Command{Use: "x"}
	f.Register(cmd)
	if _, err := f.Logger(); err != nil {
		t.Fatalf("default flags: %v", err)
	}
	err := cmd.PersistentFlags().Set("log-level", "loud")
	if err == nil || !strings.Contains(err.Error(), "want debug, info, warn or error") {
		t.Fatalf("--log-level loud: %v", err)
	}
	if err := cmd.PersistentFlags().Set("log-level", "WARN"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Logger(); err != nil {
		t.Fatalf("--log-level WARN: %v", err)
	}
}

func TestSignalContextStops(t *testing.T) {
	ctx, sig, stop := SignalContext(t.Context(), func(int) { t.Error("exit without a signal") })
	if ctx.Err() != nil || sig() != nil {
		t.Fatal("done before any signal")
	}
	stop()
}

// TestMain checks that no test leaves the signal watcher running.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

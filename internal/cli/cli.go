// Package cli holds what the ledgervault commands (cmd/ledgervault and the
// development command cmd/ledgervault-dev) share: exit statuses carried by errors,
// the log flags, the signal handling of one-off commands and running a root command.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/logging"
	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/internal/shutdown"
	"github.com/ledgervault/ledgervault/storage"
)

// ExitError carries a specific exit status out of a command.
type ExitError struct {
	// Code is the process exit status.
	Code int
	// Err is the error printed.
	Err error
}

// Error returns the message of Err.
func (e *ExitError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *ExitError) Unwrap() error { return e.Err }

// Root returns a root command named use: it prints neither usage nor errors itself
// (Execute prints the error).
func Root(use, short string) *cobra.Command {
	return &cobra.Command{Use: use, Short: short, SilenceUsage: true, SilenceErrors: true}
}

// ExitStoreNotFound is the exit status of a command whose store does not exist
// (storage.ErrStoreNotFound), as restic's "repository does not exist".
const ExitStoreNotFound = 10

// Execute runs root and returns the process exit status: 0 on success, the Code of
// an *ExitError, ExitStoreNotFound for an error matching storage.ErrStoreNotFound, 1
// for any other error (printed to stderr after name). cobra's own usage errors
// (unknown flags and commands, bad flag values, bad arguments, missing required
// flags) exit with ExitUsage.
func Execute(ctx context.Context, root *cobra.Command, name string, stderr io.Writer) int {
	prepareUsage(root)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "%s: %v\n", name, err)
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, storage.ErrStoreNotFound) {
		return ExitStoreNotFound
	}
	return 1
}

// LogFlags select the log level and format of a command.
type LogFlags struct{ level, format string }

// Register adds --log-level and --log-format to cmd and its subcommands.
func (f *LogFlags) Register(cmd *cobra.Command) {
	EnumVar(cmd.PersistentFlags(), &f.level, "log-level", "info", []string{"debug", "info", "warn", "error"}, "log level: debug, info, warn or error")
	EnumVar(cmd.PersistentFlags(), &f.format, "log-format", "auto", []string{"auto", "text", "json"}, "log format: auto (text on a terminal, JSON otherwise), text or json")
}

// Logger returns the logger the flags ask for, writing to stderr, and makes it
// slog's default, so that libraries logging through slog.Default (the AWS SDK's
// messages, see storage/storageurl) write in the same format.
func (f *LogFlags) Logger() (*slog.Logger, error) { return f.LoggerTo(os.Stderr) }

// LoggerTo is Logger writing to w, what is drawn on stderr (a progress display that
// clears its bar before each log line); the auto format still depends on whether
// stderr is a terminal.
func (f *LogFlags) LoggerTo(w io.Writer) (*slog.Logger, error) {
	level, err := logging.ParseLevel(f.level)
	if err != nil {
		return nil, Usagef("--log-level: %w", err)
	}
	format := logging.Format(f.format)
	if format == logging.FormatAuto || format == "" {
		format = logging.FormatJSON
		if logging.IsTerminal(os.Stderr) {
			format = logging.FormatText
		}
	}
	l, err := logging.New(w, format, level)
	if err != nil {
		return nil, Usagef("--log-format: %w", err)
	}
	slog.SetDefault(l)
	return l, nil
}

// SignalContext returns the context of a one-off command (a backup, a restore, a
// storage operation) and of a harness run: the first SIGINT/SIGTERM cancels it at
// once (no grace period: writers abort and nothing is committed) and sig reports
// which signal arrived; the second exits the process at once with 128+N through exit
// (main passes os.Exit), even while a commit that outlives cancellation is
// finishing. stop releases the signals.
func SignalContext(parent context.Context, exit func(int)) (ctx context.Context, sig func() os.Signal, stop func()) {
	s := shutdown.Watch(parent, shutdown.Options{Grace: 0, Exit: exit})
	return s.Aborting(), s.Signal, s.Close
}

// Partial is implemented by the error of an operation that committed part of its
// work before it stopped (a restore): Committed says what was committed and how a
// rerun continues.
type Partial interface {
	error
	Committed() string
}

// Interrupted turns an error after signal sig into exit status 128+N; it returns
// err unchanged when either is nil. The message says what was committed: what a
// Partial error in err's chain reports, or else nothing (one-off writers abort
// everything uncommitted).
func Interrupted(err error, sig os.Signal) error {
	if err == nil || sig == nil {
		return err
	}
	code := shutdown.ExitCode(sig)
	var p Partial
	switch {
	case errors.As(err, &p):
		return &ExitError{Code: code, Err: fmt.Errorf("interrupted by %v, %s: %w", sig, p.Committed(), err)}
	case errors.Is(err, proc.ErrCommitInterrupted):
		return &ExitError{Code: code, Err: fmt.Errorf("interrupted by %v: %w", sig, err)}
	}
	return &ExitError{Code: code, Err: fmt.Errorf("interrupted by %v, nothing committed: %w", sig, err)}
}

// Command ledgervault-dev runs the development harnesses of ledgervault against a
// built ledgervault binary: the backup benchmark (bench-backup), the kill campaign
// (bench-kills) and the fault campaign (bench-faults). They live here, not in
// cmd/ledgervault, so that the shipped binary links neither them nor the in-process
// fake S3 they use.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
)

func main() {
	root := cli.Root("ledgervault-dev", "Development harnesses for ledgervault: the backup benchmark, the kill and fault campaigns")
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usage(err) })
	root.AddCommand(newBenchBackupCmd(), newBenchKillCmd(), newBenchFaultsCmd(), newBenchCompareCmd(), newSSTIngestCmd())
	os.Exit(cli.Execute(context.Background(), root, "ledgervault-dev", os.Stderr))
}

// usage marks a usage error: exit status 2.
func usage(err error) error { return &cli.ExitError{Code: 2, Err: err} }

// harnessFlags are the flags of every harness: the log flags and --ledgervault, the
// ledgervault binary the harness runs.
type harnessFlags struct {
	logs   cli.LogFlags
	binary string
}

func (f *harnessFlags) register(cmd *cobra.Command) {
	f.logs.Register(cmd)
	cmd.Flags().StringVar(&f.binary, "ledgervault", "", "the ledgervault binary to run (default: ledgervault beside this binary, else on PATH)")
}

// harnessRun is what a harness run gets from its flags.
type harnessRun struct {
	ctx    context.Context // cancelled by the first SIGINT/SIGTERM; a second exits at once
	sig    func() os.Signal
	log    *slog.Logger
	binary string
}

// runE returns a cobra RunE that makes the logger, finds the binary, handles
// signals for the time of do and hands them to do.
func (f *harnessFlags) runE(do func(cmd *cobra.Command, r *harnessRun) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		log, err := f.logs.Logger()
		if err != nil {
			return err
		}
		bin, err := resolveBinary(f.binary)
		if err != nil {
			return err
		}
		ctx, sig, stop := cli.SignalContext(cmd.Context(), os.Exit)
		defer stop()
		return do(cmd, &harnessRun{ctx: ctx, sig: sig, log: log, binary: bin})
	}
}

// resolveBinary returns the ledgervault binary: flag, else ledgervault in this
// binary's directory, else ledgervault on PATH.
func resolveBinary(flag string) (string, error) {
	if flag != "" {
		if _, err := os.Stat(flag); err != nil {
			return "", usage(fmt.Errorf("--ledgervault: %w", err))
		}
		return filepath.Abs(flag)
	}
	if exe, err := os.Executable(); err == nil {
		beside := filepath.Join(filepath.Dir(exe), "ledgervault")
		if st, err := os.Stat(beside); err == nil && !st.IsDir() {
			return beside, nil
		}
	}
	p, err := exec.LookPath("ledgervault")
	if err != nil {
		return "", errors.New("no ledgervault binary beside ledgervault-dev or on PATH: build both with `make build` or pass --ledgervault")
	}
	return filepath.Abs(p)
}

// Command ledgervault-dev runs the development harnesses of ledgervault against a
// built ledgervault binary: the backup benchmark (bench-backup) and the kill campaign
// (bench-kills). They live here, not in cmd/ledgervault, so that the shipped binary
// links neither them nor the in-process fake S3 they use.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/proc"
)

func main() {
	// The kill campaign reads shell-command storage in process: its guards re-exec
	// this binary (see internal/proc).
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	root := &cobra.Command{
		Use:           "ledgervault-dev",
		Short:         "Development harnesses for ledgervault: the backup benchmark and the kill campaign",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newBenchBackupCmd(), newBenchKillCmd())
	os.Exit(cli.Execute(context.Background(), root, "ledgervault-dev", os.Stderr))
}

// binaryFlag is --ledgervault, the ledgervault binary the harnesses run.
type binaryFlag struct{ path string }

func (f *binaryFlag) register(cmd *cobra.Command) {
	cmd.Flags().StringVar(&f.path, "ledgervault", "", "the ledgervault binary to run (default: ledgervault beside this binary, else on PATH)")
}

// resolve returns the binary: the flag, ledgervault in this binary's directory, or
// ledgervault on PATH.
func (f *binaryFlag) resolve() (string, error) {
	if f.path != "" {
		if _, err := os.Stat(f.path); err != nil {
			return "", fmt.Errorf("--ledgervault: %w", err)
		}
		return filepath.Abs(f.path)
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

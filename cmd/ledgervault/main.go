// Command ledgervault backs up and restores an authenticated ledger database.
//
// This package only wires flags to packages; the work lives in the packages it calls.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/proc"
)

// exitError carries a specific exit status out of a command.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	// A guard re-exec of this binary (see internal/proc) must not run the CLI.
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	root := newRootCmd()
	err := root.ExecuteContext(context.Background())
	if err == nil {
		return
	}
	fmt.Fprintln(os.Stderr, "ledgervault:", err)
	var ee *exitError
	if errors.As(err, &ee) {
		os.Exit(ee.code)
	}
	os.Exit(1)
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:           "ledgervault",
		Short:         "Verified backup and restore for an authenticated ledger database",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newVersionCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	return root
}

// extraCommands lets each subcommand file register itself without editing this file.
var extraCommands []func() *cobra.Command

// Command ledgervault backs up and restores an authenticated ledger database.
//
// This package only wires flags to packages; the work lives in the packages it calls.
// The test harnesses (benchmarks, kill campaign) are in cmd/ledgervault-dev.
package main

import (
	"context"
	"os"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/proc"
)

func main() {
	// A guard re-exec of this binary (see internal/proc) must not run the CLI.
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	stop := startCPUProfile()
	code := cli.Execute(context.Background(), newRootCmd(), "ledgervault", os.Stderr)
	stop()
	os.Exit(code)
}

func newRootCmd() *cobra.Command {
	root := cli.Root("ledgervault", "Verified backup and restore for an authenticated ledger database")
	setRootVersion(root)
	root.AddCommand(newVersionCmd())
	for _, add := range extraCommands {
		root.AddCommand(add())
	}
	installConfig(root)
	return root
}

// extraCommands lets each subcommand file register itself without editing this file.
var extraCommands []func() *cobra.Command

package main

import (
	"context"
	"io"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/storage"
)

// report is what a maintenance command prints: a table, or one JSON object.
type report interface {
	WriteJSON(w io.Writer) error
	WriteTable(w io.Writer) error
}

// runReport opens the logger, a signal-cancelled context and the store, runs fn, and
// prints the report it returns (also on an error, when fn returns a partial report:
// nil when there is none). The exit status says whether a signal interrupted it.
func runReport(cmd *cobra.Command, sf *storageFlags, lf *cli.LogFlags, asJSON bool, fn func(ctx context.Context, st storage.Store, log *slog.Logger) (report, error)) error {
	log, err := lf.Logger()
	if err != nil {
		return err
	}
	ctx, sig, stop := cli.SignalContext(cmd.Context(), os.Exit)
	defer stop()
	st, err := sf.open(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	rep, runErr := fn(ctx, st, log)
	if rep != nil {
		var err error
		if asJSON {
			err = rep.WriteJSON(cmd.OutOrStdout())
		} else {
			err = rep.WriteTable(cmd.OutOrStdout())
		}
		if runErr == nil {
			runErr = err
		}
	}
	return cli.Interrupted(runErr, sig())
}

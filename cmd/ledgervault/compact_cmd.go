package main

import (
	"context"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/maintenance/compact"
	"github.com/ledgervault/ledgervault/storage"
)

func init() { extraCommands = append(extraCommands, newCompactCmd) }

func newCompactCmd() *cobra.Command {
	var sf storageFlags
	var lf cli.LogFlags
	var o compact.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "compact [--delete-delay 1h] [--min-files 2] [--json]",
		Short: "Merge many small metadata files into compacted ones, never leaving a backup unreferenced",
		Long: `Merge the metadata files into one compacted file (compacted_<time>-<run>-<part>.meta)
when at least --min-files files hold lines no compacted file holds yet. The small files
are not deleted in the same run: a later run deletes a file once every one of its lines
is in a compacted file older than --delete-delay, so readers that listed the old files
have time to finish. Run it periodically (e.g. hourly); run one at a time. A new
metadata file a coordinator writes during a run is simply left for the next run.
See docs/maintenance.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReport(cmd, &sf, &lf, asJSON, func(ctx context.Context, st storage.Store, log *slog.Logger) (report, error) {
				o.Logger = log
				rep, err := compact.Run(ctx, st, o)
				if rep == nil {
					return nil, err
				}
				return rep, err
			})
		},
	}
	sf.register(cmd)
	lf.Register(cmd)
	f := cmd.Flags()
	cli.DurationVar(f, &o.DeleteDelay, "delete-delay", compact.DefaultDeleteDelay, cli.NonNegative, "age a compacted file must reach before the files it covers are deleted")
	cli.IntVar(f, &o.MinFiles, "min-files", compact.DefaultMinFiles, 2, cli.MaxInt, "files with lines not yet compacted it takes to write a compacted file (at least 2)")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	return cmd
}

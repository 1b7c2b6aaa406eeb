package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/maintenance/gc"
	"github.com/ledgervault/ledgervault/storage"
)

func init() { extraCommands = append(extraCommands, newGCCmd) }

func newGCCmd() *cobra.Command {
	var sf storageFlags
	var lf cli.LogFlags
	var o gc.Options
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "gc [--dry-run] [--grace 1h] [--json]",
		Short: "Remove backup folders no metadata references and incomplete uploads, older than a grace period",
		Long: `Remove what interrupted backups leave in storage: backup folders that no metadata
file references and that nobody wrote for --grace, temporary files, and incomplete
multipart or block uploads older than --grace. Folders referenced by metadata and
metadata files are never touched. If any metadata file cannot be read or decoded,
nothing is deleted. Metadata is listed again before each batch of deletions, so a
backup whose metadata a coordinator commits while gc runs is kept.

Prints one row per unreferenced folder and the totals (--json: one JSON object with
backups_removed, bytes_removed, stale_uploads_aborted and items). With --dry-run it
prints what it would remove and removes nothing. See docs/maintenance.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.NoGrace = o.Grace == 0 // an explicit --grace 0s means no grace, not the default
			return runReport(cmd, &sf, &lf, asJSON, func(ctx context.Context, st storage.Store, log *slog.Logger) (report, error) {
				o.Logger = log
				if rep, handled, err := gcIfBackupCLI(ctx, st, log, o.DryRun, o.Grace, o.BatchSize); handled || err != nil {
					return rep, err
				}
				rep, err := gc.Run(ctx, st, o)
				if errors.Is(err, gc.ErrNoMetadata) {
					err = fmt.Errorf("%w; if every backup there is garbage, run again with --allow-no-metadata", err)
				}
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
	f.BoolVar(&o.DryRun, "dry-run", false, "print what would be removed, remove nothing")
	cli.DurationVar(f, &o.Grace, "grace", gc.DefaultGrace, cli.NonNegative, "leave folders written and uploads started within this period alone (a backup may be running)")
	f.BoolVar(&o.AllowNoMetadata, "allow-no-metadata", false, "delete folders even when storage holds no metadata file at all")
	cli.IntVar(f, &o.BatchSize, "batch-size", gc.DefaultBatchSize, 1, cli.MaxInt, "folders deleted between fresh metadata listings")
	f.BoolVar(&asJSON, "json", false, "print one JSON object instead of a table")
	return cmd
}

package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/storage"
)

func init() { extraCommands = append(extraCommands, newListCmd) }

func newListCmd() *cobra.Command {
	sf := storageFlags{logs: new(cli.LogFlags)}
	var asJSON bool
	var cacheDir string
	cmd := &cobra.Command{
		Use:   "list [--json] [--metadata-cache-dir DIR]",
		Short: "What is backed up, as metadata says: each type's ranges, sizes and gaps",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withStore(cmd, &sf, func(ctx context.Context, st storage.Store) error {
				if handled, err := listIfBackupCLI(ctx, st, cmd.OutOrStdout(), asJSON); handled || err != nil {
					return err
				}
				inv, err := catalog.LoadCached(ctx, st, cacheDir)
				if err != nil {
					return err
				}
				if asJSON {
					return inv.WriteJSON(cmd.OutOrStdout())
				}
				return inv.WriteTable(cmd.OutOrStdout())
			})
		},
	}
	sf.register(cmd)
	sf.logs.Register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().StringVar(&cacheDir, "metadata-cache-dir", "", "keep a local cache of metadata files in this directory (one directory per storage)")
	return cmd
}

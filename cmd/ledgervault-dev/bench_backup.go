package main

import (
	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/benchbackup"
	"github.com/ledgervault/ledgervault/internal/cli"
)

func newBenchBackupCmd() *cobra.Command {
	var hf harnessFlags
	var cfg benchbackup.Config
	var keys []uint
	cmd := &cobra.Command{
		Use:   "bench-backup [--keys N]... [--txns N] [--dir DIR]",
		Short: "Measure state snapshot and transaction backups against tar|zstd of the store (prints a table)",
		Args:  cobra.NoArgs,
		RunE: hf.runE(func(cmd *cobra.Command, r *harnessRun) error {
			cfg.Binary, cfg.Logger = r.binary, r.log
			cfg.Keys = cfg.Keys[:0]
			for _, k := range keys {
				cfg.Keys = append(cfg.Keys, uint64(k))
			}
			_, err := benchbackup.Run(r.ctx, cfg, cmd.OutOrStdout())
			return cli.Interrupted(err, r.sig())
		}),
	}
	hf.register(cmd)
	f := cmd.Flags()
	f.UintSliceVar(&keys, "keys", []uint{1_000_000}, "state sizes to back up (repeatable)")
	f.Uint64Var(&cfg.Txns, "txns", 0, "transactions to back up (0: none)")
	f.IntVar(&cfg.ValueSize, "value-size", 100, "value size of the generated accounts")
	f.IntVar(&cfg.Concurrency, "concurrent-data-requests", 0, "concurrency of the backups (0: default)")
	f.StringVar(&cfg.Dir, "dir", "", "work directory (default: a temporary one, removed)")
	return cmd
}

package main

import (
	"os"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/backup/bench"
	"github.com/ledgervault/ledgervault/internal/cli"
)

func init() { extraCommands = append(extraCommands, newBenchBackupCmd) }

func newBenchBackupCmd() *cobra.Command {
	var lf cli.LogFlags
	var cfg bench.Config
	var keys []uint
	cmd := &cobra.Command{
		Use:    "bench-backup [--keys N]... [--txns N] [--dir DIR]",
		Short:  "Measure state snapshot and transaction backups against tar|zstd of the store (prints a table)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := lf.Logger()
			if err != nil {
				return err
			}
			ctx, sig, stop := signalContext(cmd.Context())
			defer stop()
			exe, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Binary, cfg.Logger = exe, log
			cfg.Keys = cfg.Keys[:0]
			for _, k := range keys {
				cfg.Keys = append(cfg.Keys, uint64(k))
			}
			_, err = bench.Run(ctx, cfg, cmd.OutOrStdout())
			return cli.Interrupted(err, sig())
		},
	}
	lf.Register(cmd)
	f := cmd.Flags()
	f.UintSliceVar(&keys, "keys", []uint{1_000_000}, "state sizes to back up (repeatable)")
	f.Uint64Var(&cfg.Txns, "txns", 0, "transactions to back up (0: none)")
	f.IntVar(&cfg.ValueSize, "value-size", 100, "value size of the generated accounts")
	f.IntVar(&cfg.Concurrency, "concurrent-data-requests", 0, "concurrency of the backups (0: default)")
	f.StringVar(&cfg.Dir, "dir", "", "work directory (default: a temporary one, removed)")
	return cmd
}

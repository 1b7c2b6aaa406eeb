package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/restore"
)

func init() { extraCommands = append(extraCommands, newVerifyCmd) }

func newVerifyCmd() *cobra.Command {
	var (
		sf       storageFlags
		lf       cli.LogFlags
		tf       trustFlags
		cacheDir string
		conc     int
		progress string
		asJSON   bool
		format   string
		from, to uint64
		maxRaw   int64
	)
	cmd := &cobra.Command{
		Use:   "verify (--trust-waypoint W ... | --waypoint-file FILE)",
		Short: "Verify every backup in storage as a restore would, without writing a database",
		Long: `Run every check of restore over the backups in storage: the epoch chain from the trusted
waypoint, each state snapshot (chunk hashes, range proofs, root proof against a verified ledger
info), each transaction backup (hashes, decoding, accumulator range proofs against verified ledger
infos), and gaps between backups. Prints one row per backup. Exit status: 0 all verified, 1 any
failure, 10 the store does not exist (nothing is created), 128+N interrupted by signal N.

An Aptos/Diem backup-cli store (detected from its metadata, or --format backupcli) is verified
from the trusted waypoint too (docs/backup-cli.md): exit status 1 when anything is false or does
not decode, 3 when nothing is false but not everything could be checked (missing files, a Diem
1.x store, whose signatures verify does not check), 2 usage error.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if to != 0 && from > to {
				return cli.Usagef("--from-version %d after --to-version %d", from, to)
			}
			if handled, err := verifyIfBackupCLI(cmd, &sf, &tf, format, asJSON); handled {
				return err // a backup-cli store: see verify_backupcli.go
			}
			log, out, err := progressLogger(&lf, progress)
			if err != nil {
				return err
			}
			wps, err := tf.parse()
			if err != nil {
				return cli.Usage(err)
			}
			ctx, sig, stop := cli.SignalContext(cmd.Context(), os.Exit)
			defer stop()
			st, err := sf.open(ctx)
			if err != nil {
				return err
			}
			defer st.Close()
			rep := newPhaseProgress(out, log)
			defer rep.finish() // also on a panic
			r, err := restore.Verify(ctx, st, restore.VerifyOptions{Waypoints: wps, MetadataCacheDir: cacheDir, Concurrency: conc,
				FromVersion: from, ToVersion: to, Logger: log, Progress: rep, Limits: native.Limits{MaxRawSize: maxRaw}})
			rep.finish()
			if err != nil {
				return cli.Interrupted(err, sig())
			}
			if asJSON {
				err = r.WriteJSON(cmd.OutOrStdout())
			} else {
				err = r.WriteTable(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if !r.OK {
				for _, row := range r.Rows {
					if row.OK {
						continue
					}
					if row.Manifest != "" {
						cmd.PrintErrf("ledgervault: verify: %s %s (%s): %s\n", row.Type, row.Range, row.Manifest, row.Error)
					} else {
						cmd.PrintErrf("ledgervault: verify: %s %s: %s\n", row.Type, row.Range, row.Error)
					}
				}
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("%w: %d of %d rows failed", restore.ErrVerifyFailed, r.Failed(), len(r.Rows))}
			}
			return nil
		},
	}
	sf.register(cmd)
	lf.Register(cmd)
	tf.register(cmd)
	cmd.Flags().StringVar(&cacheDir, "metadata-cache-dir", "", "keep a local cache of metadata files in this directory")
	cli.IntVar(cmd.Flags(), &conc, "concurrent-downloads", restore.DefaultConcurrency, 1, restore.MaxConcurrency, "downloads in flight")
	cli.EnumVar(cmd.Flags(), &progress, "progress", "auto", progressModes, "progress display: auto (a bar on a terminal, logs otherwise), bar, log or none")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as one JSON object")
	cli.EnumVar(cmd.Flags(), &format, "format", "auto", []string{"auto", "backupcli", "ledgervault"}, "store format: auto (detect from metadata), backupcli or ledgervault")
	cmd.Flags().Uint64Var(&from, "from-version", 0, "with --to-version: check only snapshot and transaction backups that intersect [from, to]")
	cmd.Flags().Uint64Var(&to, "to-version", 0, "last version of the range checked (0: everything)")
	cli.Int64Var(cmd.Flags(), &maxRaw, "max-chunk-raw-size", native.DefaultMaxRawSize, 1, cli.MaxInt64, "largest decompressed chunk accepted, in bytes")
	return cmd
}

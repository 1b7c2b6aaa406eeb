package main

import (
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/quickstart"
)

func init() { extraCommands = append(extraCommands, newQuickstartCmd) }

func newQuickstartCmd() *cobra.Command {
	var logs cli.LogFlags
	var o quickstart.Options
	cmd := &cobra.Command{
		Use:   "quickstart [--dir DIR]",
		Short: "The whole cycle on local disk: devnet, backup, restore, verify",
		Long: `Initialise a development node, let it commit versions across several epochs, back up its
epoch endings, a state snapshot and its transactions to DIR/backups, restore a fresh database
into DIR/restored from the backups alone (trusting only the genesis waypoint), verify every
backup, and compare the restored state and accumulator roots with the node's.

DIR must be absent or empty; without --dir a new temporary directory is used and kept, so
that you can look at the node, the backups and the restored database afterwards.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !cmd.Flags().Changed("log-level") {
				// The step lines say what happens; logs only for trouble.
				if err := cmd.Flags().Set("log-level", "warn"); err != nil {
					return err
				}
			}
			log, err := logs.Logger()
			if err != nil {
				return err
			}
			if o.Dir == "" {
				if o.Dir, err = os.MkdirTemp("", "ledgervault-quickstart-"); err != nil {
					return err
				}
			}
			ctx, sig, stop := cli.SignalContext(cmd.Context(), os.Exit)
			defer stop()
			out := cmd.OutOrStdout()
			o.Logger = log
			start := time.Now()
			o.Step = func(name string) { fmt.Fprintf(out, "[%6.1fs] %s\n", time.Since(start).Seconds(), name) }
			fmt.Fprintf(out, "quickstart in %s\n", o.Dir)
			s, err := quickstart.Run(ctx, o)
			if s != nil {
				printQuickstart(out, s)
			}
			if err != nil {
				return cli.Interrupted(err, sig())
			}
			fmt.Fprintf(out, "done in %.1fs\n", time.Since(start).Seconds())
			return nil
		},
	}
	logs.Register(cmd)
	f := cmd.Flags()
	f.StringVar(&o.Dir, "dir", "", "working directory (absent or empty; default: a new temporary directory)")
	cli.Uint64Var(f, &o.Versions, "versions", 20_000, 1, cli.MaxUint64, "versions the node commits before the backups")
	cli.Uint64Var(f, &o.EpochLength, "epoch-length", 2_500, 1, cli.MaxUint64, "versions per epoch")
	f.Uint64Var(&o.InitialAccounts, "initial-accounts", 50_000, "accounts created right after genesis")
	cli.Uint64Var(f, &o.TransactionBatch, "transaction-batch-size", 10_000, 1, cli.MaxUint64, "versions per transaction backup")
	cli.Int64Var(f, &o.MaxChunkSize, "max-chunk-size", 1<<20, backup.MinChunkSize, backup.MaxChunkSizeLimit, "largest raw size of a backup chunk in bytes")
	return cmd
}

func printQuickstart(w io.Writer, s *quickstart.Summary) {
	fmt.Fprintf(w, "\nnode:     %s (versions 0-%d, epochs 0-%d ended)\n", s.NodeDir, s.NodeVersion, s.Epochs-1)
	fmt.Fprintf(w, "waypoint: %s\n", s.Waypoint)
	if len(s.Backups) > 0 {
		fmt.Fprintf(w, "backups:  %s\n", s.BackupDir)
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "type\trange\titems\traw MB\tstored MB\tfiles\tseconds\traw MB/s\t")
		for _, b := range s.Backups {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%.2f\t%.2f\t%d\t%.2f\t%.0f\t\n", b.Type, b.Range, b.Items,
				mb(b.RawBytes), mb(b.StoredBytes), b.Files, b.Elapsed.Seconds(), rate(b.RawBytes, b.Elapsed))
		}
		tw.Flush()
	}
	if r := s.Restore; r != nil {
		fmt.Fprintf(w, "restore:  %s to version %d (snapshot at %d) in %.2fs\n", s.RestoreDir, r.TargetVersion, r.SnapshotVersion, s.RestoreElapsed.Seconds())
		fmt.Fprintf(w, "          %d state items, %d transactions, %d files, %.2f MB read (%.0f MB/s)\n",
			r.StateItems, r.Transactions, r.Files, mb(r.Bytes), rate(r.Bytes, s.RestoreElapsed))
		fmt.Fprintf(w, "          state root %s\n          accumulator root %s\n", r.StateRoot, r.AccumulatorRoot)
	}
	if v := s.Verify; v != nil {
		status := "all backups verified"
		if !v.OK {
			status = "FAILURES"
		}
		fmt.Fprintf(w, "verify:   %d backups, %s in %.2fs\n", len(v.Rows), status, s.VerifyElapsed.Seconds())
	}
	if s.Restore != nil {
		eq := "no"
		if s.RootsEqual {
			eq = "yes"
		}
		fmt.Fprintf(w, "roots equal to the node's at version %d: %s\n", s.Restore.TargetVersion, eq)
	}
}

func mb(b int64) float64 { return float64(b) / 1e6 }

func rate(b int64, d time.Duration) float64 {
	if d <= 0 {
		return 0
	}
	return float64(b) / 1e6 / d.Seconds()
}

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/storage"
)

func init() { extraCommands = append(extraCommands, newBackupCmd) }

// Exit statuses of the backup commands (documented in docs/backup-format.md).
const (
	exitAlreadyBackedUp = 3
)

// backupFlags are the flags every backup subcommand shares.
type backupFlags struct {
	storage          storageFlags
	logs             cli.LogFlags
	serviceAddress   string
	maxChunkSize     int64
	concurrency      int
	compressionLevel int
	progress         string
	statsFile        string
}

func (f *backupFlags) register(cmd *cobra.Command) {
	f.storage.register(cmd)
	f.logs.Register(cmd)
	p := cmd.PersistentFlags()
	p.StringVar(&f.serviceAddress, "backup-service-address", backupservice.DefaultAddress, "the node's backup service (host:port or http:// URL)")
	cli.Int64Var(p, &f.maxChunkSize, "max-chunk-size", backup.DefaultMaxChunkSize, backup.MinChunkSize, backup.MaxChunkSizeLimit, "largest raw (uncompressed) size of a chunk in bytes")
	cli.IntVar(p, &f.concurrency, "concurrent-data-requests", backup.DefaultConcurrentDataRequests, 1, 256, "data requests and chunk writes in flight")
	cli.IntVar(p, &f.compressionLevel, "compression-level", 1, 1, 4, "zstd level: 1 fastest, 2 default, 3 better, 4 best")
	cli.EnumVar(p, &f.progress, "progress", "auto", progressModes, "progress display: auto (a bar on a terminal, logs otherwise), bar, log or none")
	p.StringVar(&f.statsFile, "stats-file", "", "write the backup's counters as JSON to this file when it completes")
	p.MarkHidden("stats-file")
}

// run opens the service and the store and runs one backup with signals handled.
func (f *backupFlags) run(cmd *cobra.Command, what string, do func(ctx context.Context, svc *backupservice.Client, st storage.Store, o backup.Options) (*backup.Result, error)) error {
	log, out, err := progressLogger(&f.logs, f.progress)
	if err != nil {
		return err
	}
	ctx, sig, stop := cli.SignalContext(cmd.Context(), os.Exit)
	defer stop()
	st, err := f.storage.openCreating(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	svc, err := backupservice.New(f.serviceAddress, backupservice.ClientOptions{})
	if err != nil {
		return cli.Usagef("--backup-service-address: %w", err)
	}
	defer svc.Close()
	o := backup.Options{
		MaxChunkSize:     f.maxChunkSize,
		Concurrency:      f.concurrency,
		CompressionLevel: zstd.EncoderLevel(f.compressionLevel),
		Logger:           log,
	}
	rep := newProgressReporter(out, what, log)
	defer rep.finish() // also on a panic; finish is idempotent
	o.Progress = rep
	res, err := do(ctx, svc, st, o)
	rep.finish()
	if err != nil {
		if errors.Is(err, backup.ErrAlreadyBackedUp) {
			return &cli.ExitError{Code: exitAlreadyBackedUp, Err: err}
		}
		return cli.Interrupted(err, sig())
	}
	s := res.Stats
	log.Info("backup completed", "type", res.Metadata.Type, "metadata", res.MetadataHandle, "folder", res.Backup, "resumed", res.Resumed, "items", s.Items,
		"raw_bytes", s.RawBytes, "stored_bytes", s.StoredBytes, "files", s.Files, "elapsed", res.Elapsed.Round(time.Millisecond))
	if f.statsFile != "" {
		b, err := json.Marshal(struct {
			backup.Summary
			ElapsedNanos int64 `json:"elapsed_ns"`
		}{s, int64(res.Elapsed)})
		if err != nil {
			return err
		}
		if err := os.WriteFile(f.statsFile, b, 0o644); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintln(cmd.OutOrStdout(), res.MetadataHandle)
	return err
}

func newBackupCmd() *cobra.Command {
	var f backupFlags
	cmd := &cobra.Command{
		Use:   "backup",
		Short: "One-off backups: epoch-ending, state-snapshot, transaction",
		Long: `Back up data from a node's backup service into backup storage. Each backup writes its
chunks, proofs and manifest into a new folder and, last, one create-only metadata file that
makes it discoverable. Exit status: 0 done, 1 failed (nothing discoverable was written),
3 already backed up (a metadata file for the same range exists), 10 the bucket or container
does not exist (a local store is created), 128+N interrupted by signal N.`,
	}
	f.register(cmd)
	cmd.AddCommand(newBackupEpochEndingCmd(&f), newBackupStateSnapshotCmd(&f), newBackupTransactionCmd(&f),
		newBackupCoordinatorCmd(&f))
	return cmd
}

func newBackupEpochEndingCmd(f *backupFlags) *cobra.Command {
	var start, end uint64
	cmd := &cobra.Command{
		Use:   "epoch-ending --start-epoch S --end-epoch E",
		Short: "Back up the signed ledger infos that ended epochs [S, E) (E exclusive)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if end <= start {
				return cli.Usagef("--end-epoch %d is not above --start-epoch %d: the range [%d, %d) is empty", end, start, start, end)
			}
			return f.run(cmd, "ledger infos", func(ctx context.Context, svc *backupservice.Client, st storage.Store, o backup.Options) (*backup.Result, error) {
				return backup.EpochEnding(ctx, svc, st, start, end, o)
			})
		},
	}
	cmd.Flags().Uint64Var(&start, "start-epoch", 0, "first epoch whose ending is backed up")
	cmd.Flags().Uint64Var(&end, "end-epoch", 0, "epoch after the last one backed up (exclusive)")
	cmd.MarkFlagRequired("end-epoch")
	return cmd
}

func newBackupStateSnapshotCmd(f *backupFlags) *cobra.Command {
	var epoch, version uint64
	cmd := &cobra.Command{
		Use:   "state-snapshot (--epoch E | --version V)",
		Short: "Back up all state at a version (by default the last version of epoch E)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			byEpoch, byVersion := cmd.Flags().Changed("epoch"), cmd.Flags().Changed("version")
			if byEpoch == byVersion {
				return cli.Usagef("give exactly one of --epoch or --version")
			}
			return f.run(cmd, "state items", func(ctx context.Context, svc *backupservice.Client, st storage.Store, o backup.Options) (*backup.Result, error) {
				v := version
				if byEpoch {
					var err error
					if v, err = backup.EpochEndVersion(ctx, svc, epoch); err != nil {
						return nil, err
					}
				}
				return backup.StateSnapshot(ctx, svc, st, v, o)
			})
		},
	}
	cmd.Flags().Uint64Var(&epoch, "epoch", 0, "back up the state at the version that ended this epoch")
	cmd.Flags().Uint64Var(&version, "version", 0, "back up the state at this version")
	return cmd
}

func newBackupTransactionCmd(f *backupFlags) *cobra.Command {
	var start, num uint64
	cmd := &cobra.Command{
		Use:   "transaction --start-version V --num-transactions N",
		Short: "Back up transactions [V, V+N) with their outputs and accumulator range proofs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return f.run(cmd, "transactions", func(ctx context.Context, svc *backupservice.Client, st storage.Store, o backup.Options) (*backup.Result, error) {
				return backup.Transactions(ctx, svc, st, start, num, o)
			})
		},
	}
	cmd.Flags().Uint64Var(&start, "start-version", 0, "first version backed up")
	cli.Uint64Var(cmd.Flags(), &num, "num-transactions", 0, 1, cli.MaxUint64, "number of transactions backed up")
	cmd.MarkFlagRequired("num-transactions")
	return cmd
}

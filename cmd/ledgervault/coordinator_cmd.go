package main

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/coordinator"
	"github.com/ledgervault/ledgervault/coordinator/lease"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/shutdown"
	"github.com/ledgervault/ledgervault/storage"
)

// Exit statuses of backup coordinator (documented in docs/coordinator.md).
const (
	exitCoordinatorFatal      = 1
	exitCoordinatorUsage      = 2
	exitCoordinatorLease      = 4
	exitCoordinatorGraceAbort = 75
)

// coordinatorFlags are the flags of backup coordinator beside the backup flags.
type coordinatorFlags struct {
	poll, grace, leaseTTL, retryBase, retryMax, resumeMaxAge, snapshotInterval time.Duration
	snapshotEvery, batch                                                       uint64
	metricsAddr, owner, cacheDir                                               string

	nodeMaxAge time.Duration
}

func newBackupCoordinatorCmd(f *backupFlags) *cobra.Command {
	var cf coordinatorFlags
	cmd := &cobra.Command{
		Use:   "coordinator --backup-service-address A (--storage URL | --command-config FILE)",
		Short: "Back up a node continuously: epoch endings, state snapshots, transaction batches",
		Long: `Poll the node's backup service and keep backup storage up to date: epoch endings first,
a state snapshot at the end of the newest ended epoch every --state-snapshot-interval-epochs
epochs and when that ending is --state-snapshot-interval newer than the newest snapshot
(ledger info timestamps), transactions in aligned batches of --transaction-batch-size.
What is missing is derived
from the metadata in storage on start and after every failure. One coordinator per storage
(a lease in the metadata namespace).

Exit status: 0 stopped by SIGINT/SIGTERM after the in-flight backup finished within
--shutdown-grace; 75 the grace period expired and the in-flight backup was aborted; 128+N a
second signal N aborted at once; 4 another coordinator holds the lease (or it was lost);
1 fatal error; 2 usage. See docs/coordinator.md.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return coordinatorUsage(fmt.Errorf("unexpected arguments %q", args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return cf.run(cmd.Context(), f) },
	}
	cf.register(cmd)
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return coordinatorUsage(err) })
	return cmd
}

func coordinatorUsage(err error) error { return &cli.ExitError{Code: exitCoordinatorUsage, Err: err} }

func (cf *coordinatorFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	cli.DurationVar(fl, &cf.poll, "poll-interval", coordinator.DefaultPollInterval, cli.Positive, "how often to read the node's state when idle")
	fl.Uint64Var(&cf.snapshotEvery, "state-snapshot-interval-epochs", coordinator.DefaultSnapshotEvery, "a state snapshot when none exists of the last N ended epochs (0: only --state-snapshot-interval)")
	cli.DurationVar(fl, &cf.snapshotInterval, "state-snapshot-interval", 0, cli.NonNegative, "also a state snapshot of the newest ended epoch when its ending is this much newer (ledger info timestamps) than the newest snapshot (0: off)")
	cli.Uint64Var(fl, &cf.batch, "transaction-batch-size", coordinator.DefaultTransactionBatchSize, 1, cli.MaxUint64, "transactions per backup, in aligned batches [k*N, (k+1)*N-1]")
	cli.DurationVar(fl, &cf.grace, "shutdown-grace", coordinator.DefaultShutdownGrace, cli.NonNegative, "after SIGINT/SIGTERM, how long the in-flight backup may continue before it is aborted")
	fl.StringVar(&cf.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics, /healthz and /livez on this address (e.g. 127.0.0.1:9187)")
	cli.DurationVar(fl, &cf.nodeMaxAge, "node-max-age", 0, cli.NonNegative, "after this long without reaching the node, lag_versions is unknown (NaN) and /healthz answers 503 (0: max(1m, 3 poll intervals))")
	cli.DurationVar(fl, &cf.leaseTTL, "lease-ttl", lease.DefaultTTL, lease.MinTTL, "storage lease duration; renewed every third of it")
	fl.StringVar(&cf.owner, "owner", "", "lease owner ID (default: hostname and a hash of the working directory and storage)")
	fl.StringVar(&cf.cacheDir, "metadata-cache-dir", "", "keep a local cache of metadata files in this directory")
	cli.DurationVar(fl, &cf.retryBase, "retry-base", coordinator.DefaultRetryBase, cli.Positive, "first delay after a transient failure (doubles per failure)")
	cli.DurationVar(fl, &cf.retryMax, "retry-max", coordinator.DefaultRetryMax, cli.Positive, "longest delay between retries")
	cli.DurationVar(fl, &cf.resumeMaxAge, "resume-max-age", coordinator.DefaultResumeMaxAge, cli.Positive, "resume an interrupted state snapshot only if its folder was written within this (keep below gc --grace)")
}

// validate checks what the flags' own checks cannot: values that must agree with
// each other. Each flag's range is checked when it is set (internal/cli).
func (cf *coordinatorFlags) validate() error {
	if cf.retryMax < cf.retryBase {
		return fmt.Errorf("--retry-max %v: want at least --retry-base (%v)", cf.retryMax, cf.retryBase)
	}
	if cf.snapshotEvery == 0 && cf.snapshotInterval == 0 {
		return errors.New("--state-snapshot-interval-epochs 0 needs a --state-snapshot-interval (otherwise no state snapshot is ever taken)")
	}
	return nil
}

// leaseOwner is --owner, by default the host and a hash of the working directory
// and the storage.
func (cf *coordinatorFlags) leaseOwner(f *backupFlags) string {
	if cf.owner != "" {
		return cf.owner
	}
	wd, _ := os.Getwd()
	loc := f.storage.url
	if f.storage.commandConfig != "" {
		loc, _ = filepath.Abs(f.storage.commandConfig)
	}
	return lease.DefaultOwner(wd + "\x00" + loc)
}

// run runs the coordinator until a signal: the first SIGINT/SIGTERM stops new
// backups (the one in flight may finish within --shutdown-grace, coordinator.Run's
// grace period), the second aborts at once.
func (cf *coordinatorFlags) run(parent context.Context, f *backupFlags) error {
	log, err := f.logs.Logger()
	if err != nil {
		return coordinatorUsage(err)
	}
	if err := cf.validate(); err != nil {
		return coordinatorUsage(err)
	}
	sd := shutdown.Watch(parent, shutdown.Options{Grace: -1, Logger: log})
	defer sd.Close()
	// The store lives through the grace period (some clients keep their opening
	// context for token refresh): only the second signal ends it.
	st, err := f.storage.openCreating(sd.Aborting())
	if errors.Is(err, storage.ErrStoreNotFound) {
		return err // its own exit status
	}
	if err != nil {
		return coordinatorUsage(err)
	}
	defer st.Close()
	svc, err := backupservice.New(f.serviceAddress, backupservice.ClientOptions{})
	if err != nil {
		return coordinatorUsage(fmt.Errorf("--backup-service-address: %w", err))
	}
	defer svc.Close()
	m := coordinator.NewMetrics()
	m.SetHealthMaxAge(max(2*time.Minute, 3*cf.poll))
	m.SetNodeMaxAge(cmp.Or(cf.nodeMaxAge, max(coordinator.DefaultNodeMaxAge, 3*cf.poll)))
	if cf.metricsAddr != "" {
		ms, err := coordinator.ServeMetrics(cf.metricsAddr, m, log)
		if err != nil {
			return &cli.ExitError{Code: exitCoordinatorFatal, Err: err}
		}
		defer ms.Close()
		log.Info("metrics listening", "addr", ms.Addr())
	}
	shutdownGrace := cf.grace
	if shutdownGrace == 0 {
		shutdownGrace = -1 // no grace: abort the in-flight backup at once
	}
	err = coordinator.Run(sd.Stopping(), coordinator.Config{
		Service: svc, Store: st, PollInterval: cf.poll, StateSnapshotIntervalEpochs: cf.snapshotEvery,
		StateSnapshotInterval: cf.snapshotInterval,
		TransactionBatchSize:  cf.batch, ShutdownGrace: shutdownGrace, Abort: sd.Aborting().Done(),
		Backup: backup.Options{MaxChunkSize: f.maxChunkSize, Concurrency: f.concurrency, CompressionLevel: zstd.EncoderLevel(f.compressionLevel)},
		Owner:  cf.leaseOwner(f), LeaseTTL: cf.leaseTTL, RetryBase: cf.retryBase, RetryMax: cf.retryMax, ResumeMaxAge: cf.resumeMaxAge,
		MetadataCacheDir: cf.cacheDir, Metrics: m, Logger: log,
	})
	return coordinatorExit(err, sd.Signal(), sd.SecondSignal())
}

// coordinatorExit maps the end of coordinator.Run to the exit statuses of
// docs/coordinator.md, given the first and second signal received (nil: none).
func coordinatorExit(err error, first, second os.Signal) error {
	var held *lease.HeldError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, lease.ErrExpired):
		// Storage was unreachable for longer than the lease: a restart retries.
		return &cli.ExitError{Code: exitCoordinatorFatal, Err: err}
	case errors.As(err, &held), errors.Is(err, lease.ErrLost):
		return &cli.ExitError{Code: exitCoordinatorLease, Err: err}
	case errors.Is(err, coordinator.ErrAborted) && second != nil:
		return &cli.ExitError{Code: shutdown.ExitCode(second), Err: &shutdown.SignalError{Signal: second}}
	case errors.Is(err, coordinator.ErrGraceExpired):
		return &cli.ExitError{Code: exitCoordinatorGraceAbort, Err: err}
	case errors.Is(err, coordinator.ErrConfig):
		return coordinatorUsage(err)
	case errors.Is(err, context.Canceled) && first != nil:
		// Stopped while acquiring the lease: nothing was in flight.
		return nil
	}
	return &cli.ExitError{Code: exitCoordinatorFatal, Err: err}
}

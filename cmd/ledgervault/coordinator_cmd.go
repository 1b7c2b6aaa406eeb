package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/klauspost/compress/zstd"
	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/coordinator"
	"github.com/ledgervault/ledgervault/coordinator/lease"
	"github.com/ledgervault/ledgervault/internal/cli"
)

// Exit statuses of backup coordinator (documented in docs/coordinator.md).
const (
	exitCoordinatorFatal      = 1
	exitCoordinatorUsage      = 2
	exitCoordinatorLease      = 4
	exitCoordinatorGraceAbort = 75
)

func newBackupCoordinatorCmd(f *backupFlags) *cobra.Command {
	var (
		poll, grace, leaseTTL, retryBase, retryMax, resumeMaxAge, snapshotInterval time.Duration
		snapshotEvery, batch                                                       uint64
		metricsAddr, owner, cacheDir                                               string
	)
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
				return &cli.ExitError{Code: exitCoordinatorUsage, Err: fmt.Errorf("unexpected arguments %q", args)}
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			usage := func(err error) error { return &cli.ExitError{Code: exitCoordinatorUsage, Err: err} }
			log, err := f.logs.Logger()
			if err != nil {
				return usage(err)
			}
			if f.compressionLevel < 1 || f.compressionLevel > 4 {
				return usage(fmt.Errorf("--compression-level %d: want 1 to 4", f.compressionLevel))
			}
			if f.maxChunkSize < backup.MinChunkSize || f.maxChunkSize > backup.MaxChunkSizeLimit {
				return usage(fmt.Errorf("--max-chunk-size %d: want %d to %d", f.maxChunkSize, backup.MinChunkSize, backup.MaxChunkSizeLimit))
			}
			if f.concurrency < 1 || f.concurrency > 256 {
				return usage(fmt.Errorf("--concurrent-data-requests %d: want 1 to 256", f.concurrency))
			}
			if poll <= 0 || batch == 0 || grace < 0 || leaseTTL < lease.MinTTL || retryBase <= 0 || retryMax < retryBase {
				return usage(errors.New("--poll-interval, --transaction-batch-size and --retry-* must be positive, --shutdown-grace not negative, --lease-ttl at least 100ms"))
			}
			if snapshotInterval < 0 || (snapshotEvery == 0 && snapshotInterval == 0) {
				return usage(errors.New("--state-snapshot-interval must not be negative, and --state-snapshot-interval-epochs 0 needs a --state-snapshot-interval"))
			}
			if owner == "" {
				wd, _ := os.Getwd()
				loc := f.storage.url
				if f.storage.commandConfig != "" {
					loc, _ = filepath.Abs(f.storage.commandConfig)
				}
				owner = lease.DefaultOwner(wd + "\x00" + loc)
			}

			// First SIGINT/SIGTERM: stop new work (run is cancelled), the in-flight
			// backup may finish within the grace period. Second: abort at once.
			run, stopRun := context.WithCancel(cmd.Context())
			defer stopRun()
			// The store lives until the end, also through the grace period: some
			// clients keep their opening context (token refresh), so it is cancelled
			// only by the second signal.
			storeCtx, cancelStore := context.WithCancel(context.WithoutCancel(cmd.Context()))
			defer cancelStore()
			abort := make(chan struct{})
			sigs := make(chan os.Signal, 2)
			signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
			defer signal.Stop(sigs)
			var first, second os.Signal
			sigDone := make(chan struct{})
			watchDone := make(chan struct{})
			go func() {
				defer close(watchDone)
				for {
					select {
					case s := <-sigs:
						if first == nil {
							first = s
							log.Info("signal received: stopping after the in-flight backup", "signal", s.String(), "grace", grace)
							stopRun()
							continue
						}
						second = s
						log.Warn("second signal: aborting now", "signal", s.String())
						close(abort)
						cancelStore()
						return
					case <-sigDone:
						return
					}
				}
			}()
			stopWatch := func() {
				select {
				case <-sigDone:
				default:
					close(sigDone)
				}
				<-watchDone
			}
			defer stopWatch()

			st, err := f.storage.open(storeCtx)
			if err != nil {
				return usage(err)
			}
			defer st.Close()
			svc, err := backupservice.New(f.serviceAddress, backupservice.ClientOptions{})
			if err != nil {
				return usage(err)
			}
			defer svc.Close()

			m := coordinator.NewMetrics()
			m.SetHealthMaxAge(max(2*time.Minute, 3*poll))
			if metricsAddr != "" {
				ln, err := net.Listen("tcp", metricsAddr)
				if err != nil {
					return &cli.ExitError{Code: exitCoordinatorFatal, Err: fmt.Errorf("metrics address: %w", err)}
				}
				srv := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
				served := make(chan struct{})
				go func() {
					defer close(served)
					if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
						log.Error("metrics server", "err", err)
					}
				}()
				defer func() {
					ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
					defer cancel()
					srv.Shutdown(ctx)
					<-served
				}()
				log.Info("metrics listening", "addr", ln.Addr().String())
			}

			shutdownGrace := grace // grace itself is read by the signal watcher
			if shutdownGrace == 0 {
				shutdownGrace = -1 // no grace: abort the in-flight backup at once
			}
			err = coordinator.Run(run, coordinator.Config{
				Service: svc, Store: st, PollInterval: poll, StateSnapshotIntervalEpochs: snapshotEvery,
				StateSnapshotInterval: snapshotInterval,
				TransactionBatchSize:  batch, ShutdownGrace: shutdownGrace, Abort: abort,
				Backup: backup.Options{MaxChunkSize: f.maxChunkSize, Concurrency: f.concurrency, CompressionLevel: zstd.EncoderLevel(f.compressionLevel)},
				Owner:  owner, LeaseTTL: leaseTTL, RetryBase: retryBase, RetryMax: retryMax, ResumeMaxAge: resumeMaxAge,
				MetadataCacheDir: cacheDir, Metrics: m, Logger: log,
			})
			stopWatch()
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
				return &cli.ExitError{Code: 128 + int(second.(syscall.Signal)), Err: fmt.Errorf("aborted by a second signal (%v)", second)}
			case errors.Is(err, coordinator.ErrGraceExpired):
				return &cli.ExitError{Code: exitCoordinatorGraceAbort, Err: err}
			case errors.Is(err, coordinator.ErrConfig):
				return usage(err)
			case errors.Is(err, context.Canceled) && first != nil:
				// Stopped while acquiring the lease: nothing was in flight.
				return nil
			}
			return &cli.ExitError{Code: exitCoordinatorFatal, Err: err}
		},
	}
	fl := cmd.Flags()
	fl.DurationVar(&poll, "poll-interval", coordinator.DefaultPollInterval, "how often to read the node's state when idle")
	fl.Uint64Var(&snapshotEvery, "state-snapshot-interval-epochs", coordinator.DefaultSnapshotEvery, "a state snapshot when none exists of the last N ended epochs (0: only --state-snapshot-interval)")
	fl.DurationVar(&snapshotInterval, "state-snapshot-interval", 0, "also a state snapshot of the newest ended epoch when its ending is this much newer (ledger info timestamps) than the newest snapshot (0: off)")
	fl.Uint64Var(&batch, "transaction-batch-size", coordinator.DefaultTransactionBatchSize, "transactions per backup, in aligned batches [k*N, (k+1)*N-1]")
	fl.DurationVar(&grace, "shutdown-grace", coordinator.DefaultShutdownGrace, "after SIGINT/SIGTERM, how long the in-flight backup may continue before it is aborted")
	fl.StringVar(&metricsAddr, "metrics-addr", "", "serve Prometheus /metrics and /healthz on this address (e.g. 127.0.0.1:9187)")
	fl.DurationVar(&leaseTTL, "lease-ttl", lease.DefaultTTL, "storage lease duration; renewed every third of it")
	fl.StringVar(&owner, "owner", "", "lease owner ID (default: hostname and a hash of the working directory and storage)")
	fl.StringVar(&cacheDir, "metadata-cache-dir", "", "keep a local cache of metadata files in this directory")
	fl.DurationVar(&retryBase, "retry-base", coordinator.DefaultRetryBase, "first delay after a transient failure (doubles per failure)")
	fl.DurationVar(&retryMax, "retry-max", coordinator.DefaultRetryMax, "longest delay between retries")
	fl.DurationVar(&resumeMaxAge, "resume-max-age", coordinator.DefaultResumeMaxAge, "resume an interrupted state snapshot only if its folder was written within this (keep below gc --grace)")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &cli.ExitError{Code: exitCoordinatorUsage, Err: err}
	})
	return cmd
}

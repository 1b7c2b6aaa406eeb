package main

import (
	"errors"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/killcampaign"
)

func newBenchFaultsCmd() *cobra.Command {
	var hf harnessFlags
	var cfg killcampaign.FaultConfig
	var backend string
	cmd := &cobra.Command{
		Use:   "bench-faults [--duration 20m] [--backend shell|s3]",
		Short: "Fault campaign: the coordinator over storage that fails a share of its calls, then catch-up, SIGTERM, gc, verify, restore (prints a table)",
		Long: `Run the fault campaign with the ledgervault binary (--ledgervault): a development node
commits at --tps while the coordinator backs it up to storage that fails --rate of its calls
for --duration, in each of the ways storage fails (refuse; an upload cut partway, leaving its
temporary file; commit then report failure; a read failing halfway; a listing failing
halfway). Over --backend shell every command of the kill campaign's command-adapter config is
wrapped; over --backend s3 the in-process S3 emulator is behind a fault-injecting proxy. Then
the faults stop; the coordinator must catch up with the node and exit 0 on SIGTERM, leave no
process and log no panic; gc --grace 0s must leave no temporary file or unreferenced folder,
verify must pass and a restore's roots must equal the node's. The table lists the storage
operations, the faults injected by kind, the coordinator's retries_total, the time to catch
up and every check. Exit status 1 if a check failed.`,
		Args: cobra.NoArgs,
		RunE: hf.runE(func(cmd *cobra.Command, r *harnessRun) error {
			cfg.Binary, cfg.Logger = r.binary, r.log
			k, err := killcampaign.ParseKind(backend)
			if err != nil || (k != killcampaign.Shell && k != killcampaign.S3) {
				return usage(fmt.Errorf("--backend %q: want shell or s3", backend))
			}
			cfg.Backend = k
			if cfg.Rate <= 0 || cfg.Rate > 1 {
				return usage(fmt.Errorf("--rate %v: want a fraction above 0, at most 1", cfg.Rate))
			}
			if cfg.LeaseRate < 0 || cfg.LeaseRate > 1 {
				return usage(fmt.Errorf("--lease-rate %v: want a fraction from 0 to 1", cfg.LeaseRate))
			}
			if cfg.FaultDuration <= 0 {
				return usage(fmt.Errorf("--duration %v: want a positive duration", cfg.FaultDuration))
			}
			res, err := killcampaign.RunFaults(r.ctx, cfg)
			if res != nil {
				if werr := res.Write(cmd.OutOrStdout()); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return cli.Interrupted(err, r.sig())
			}
			if res.Failed() {
				return errors.New("the fault campaign found problems (listed above)")
			}
			return nil
		}),
	}
	hf.register(cmd)
	f := cmd.Flags()
	f.StringVar(&backend, "backend", "shell", "storage the faults are injected into: shell or s3")
	f.DurationVar(&cfg.FaultDuration, "duration", 20*time.Minute, "how long the faults are on")
	f.Float64Var(&cfg.Rate, "rate", 0.05, "share of storage calls that fail while the faults are on, above 0, at most 1")
	f.Float64Var(&cfg.LeaseRate, "lease-rate", 0, "share of the calls on lease files that commit then fail, in place of --rate (0: lease files fail at --rate like the rest)")
	f.DurationVar(&cfg.NodeTail, "node-tail", 15*time.Second, "about how long the node commits on after the faults, to its last version")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the faults (0: from the clock; printed)")
	f.StringVar(&cfg.Dir, "dir", "", "work directory (default: a temporary one, removed at the end)")
	f.BoolVar(&cfg.Keep, "keep", false, "keep the temporary work directory (logs of every process, the store)")
	f.Float64Var(&cfg.TPS, "tps", 100, "the node's transactions per second")
	f.Uint64Var(&cfg.EpochLength, "epoch-length", 600, "the node's versions per epoch")
	f.Uint64Var(&cfg.InitialAccounts, "initial-accounts", 1000, "accounts the node creates at init (the state snapshots' size)")
	f.Uint64Var(&cfg.TransactionBatchSize, "transaction-batch-size", 200, "the coordinator's --transaction-batch-size")
	f.Int64Var(&cfg.MaxChunkSize, "max-chunk-size", 8192, "the coordinator's --max-chunk-size (small: snapshots of many chunks)")
	f.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 5*time.Second, "the coordinator's --shutdown-grace")
	f.DurationVar(&cfg.LeaseTTL, "lease-ttl", 15*time.Second, "the coordinator's --lease-ttl (shorter than the default 30s: more renewals meet the faults)")
	f.BoolVar(&cfg.NoMetadataCache, "no-metadata-cache", false, "run the coordinator without --metadata-cache-dir (every re-derivation of its view reads every metadata file)")
	f.DurationVar(&cfg.OrphanWait, "orphan-wait", 2*time.Second, "how long after the coordinator's exit a process of its tree counts as an orphan")
	f.DurationVar(&cfg.CatchUpTimeout, "catch-up-timeout", 2*time.Minute, "the catch-up fails when the backed-up versions do not advance for this long")
	return cmd
}

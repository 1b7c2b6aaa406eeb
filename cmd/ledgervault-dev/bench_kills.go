package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/killcampaign"
)

func newBenchKillCmd() *cobra.Command {
	var hf harnessFlags
	var cfg killcampaign.Config
	var kills int
	var kinds string
	cmd := &cobra.Command{
		Use:   "bench-kills [--kills N] [--storage-kinds local,shell,s3]",
		Short: "Kill campaign: SIGKILL/SIGTERM the coordinator at random moments on each storage kind, then gc, verify, restore (prints a table)",
		Long: `Run the kill campaign with the ledgervault binary (--ledgervault): for each storage kind, a development node commits
continuously while the coordinator is started and killed (SIGKILL or SIGTERM, at a random
moment) --kills times; after each kill, processes of the coordinator's tree still alive after
--orphan-wait and files visible under a final name that are incomplete are counted. Then the
node stops, the coordinator catches up and is stopped with SIGTERM, gc --grace 0s removes the
leftovers, verify checks every backup, and a restore of the latest version is compared with
the node's roots. Exit status 1 if any invariant failed (the table lists the problems).`,
		Args: cobra.NoArgs,
		RunE: hf.runE(func(cmd *cobra.Command, r *harnessRun) error {
			cfg.Binary, cfg.Logger = r.binary, r.log
			for _, s := range strings.Split(kinds, ",") {
				k, err := killcampaign.ParseKind(s)
				if err != nil {
					return usage(fmt.Errorf("--storage-kinds: %w", err))
				}
				cfg.Runs = append(cfg.Runs, killcampaign.KindRun{Kind: k, Kills: kills})
			}
			// An explicit 0 means none (SIGTERM only, no wait), not the default.
			if cfg.SIGKILLFraction == 0 {
				cfg.SIGKILLFraction = -1
			}
			for _, d := range []*time.Duration{&cfg.MinWait, &cfg.MaxWait} {
				if *d == 0 {
					*d = -1
				}
			}
			t, err := killcampaign.Run(r.ctx, cfg)
			if t != nil {
				if werr := t.Write(cmd.OutOrStdout()); werr != nil && err == nil {
					err = werr
				}
			}
			if err != nil {
				return cli.Interrupted(err, r.sig())
			}
			if t.Failed() {
				return errors.New("the kill campaign found problems (listed above)")
			}
			return nil
		}),
	}
	hf.register(cmd)
	f := cmd.Flags()
	f.IntVar(&kills, "kills", 200, "kills per storage kind")
	f.StringVar(&kinds, "storage-kinds", "local,shell,s3", "storage kinds, comma-separated: local, shell, s3")
	f.Uint64Var(&cfg.Seed, "seed", 0, "seed of the random waits and signals (0: from the clock; printed)")
	f.StringVar(&cfg.Dir, "dir", "", "work directory (default: a temporary one, removed at the end)")
	f.BoolVar(&cfg.Keep, "keep", false, "keep the temporary work directory (logs of every process, the stores)")
	f.DurationVar(&cfg.MinWait, "min-wait", 200*time.Millisecond, "shortest run of the coordinator before its signal")
	f.DurationVar(&cfg.MaxWait, "max-wait", 3*time.Second, "longest run of the coordinator before its signal")
	f.Float64Var(&cfg.SIGKILLFraction, "sigkill-fraction", 0.6, "share of kills by SIGKILL, 0 to 1 (the rest are SIGTERM)")
	f.Float64Var(&cfg.TPS, "tps", 50, "the node's transactions per second")
	f.Uint64Var(&cfg.EpochLength, "epoch-length", 600, "the node's versions per epoch")
	f.Uint64Var(&cfg.InitialAccounts, "initial-accounts", 5000, "accounts the node creates at init (the state snapshots' size)")
	f.Uint64Var(&cfg.TransactionBatchSize, "transaction-batch-size", 200, "the coordinator's --transaction-batch-size")
	f.Int64Var(&cfg.MaxChunkSize, "max-chunk-size", 8192, "the coordinator's --max-chunk-size (small: snapshots of many chunks)")
	f.DurationVar(&cfg.ShutdownGrace, "shutdown-grace", 5*time.Second, "the coordinator's --shutdown-grace")
	f.DurationVar(&cfg.OrphanWait, "orphan-wait", 2*time.Second, "how long after the coordinator's exit a process of its tree counts as an orphan")
	f.DurationVar(&cfg.CatchUpTimeout, "catch-up-timeout", 2*time.Minute, "the final catch-up fails when the backed-up versions do not advance for this long")
	return cmd
}

package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/shutdown"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/node"
)

func init() { extraCommands = append(extraCommands, newNodeCmd) }

func newNodeCmd() *cobra.Command {
	var lf cli.LogFlags
	cmd := &cobra.Command{
		Use:   "node",
		Short: "A development ledger node with a backup service (init, run)",
	}
	lf.Register(cmd)
	cmd.AddCommand(newNodeInitCmd(&lf), newNodeRunCmd(&lf))
	return cmd
}

func newNodeInitCmd(lf *cli.LogFlags) *cobra.Command {
	var dir string
	var cacheMiB int64
	var o node.InitOptions
	cmd := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Write a genesis: validator secret (0600), genesis ledger info, genesis validators and waypoint",
		Long: `Write a new development node into DIR (which must be empty or absent): a random
validator secret from which every epoch's ed25519 validator keys derive (DIR/validator-secret,
mode 0600; a real network keeps validator keys on the validators, never next to the data),
the genesis block in DIR/db, the genesis ledger info (DIR/genesis-ledger-info.cbor), the
public keys of the first validator set (DIR/genesis-validators.json), the waypoint
(printed, and written to DIR/waypoint.txt), and the chain configuration (DIR/config.json).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return cli.Usagef("--dir is required")
			}
			log, err := lf.Logger()
			if err != nil {
				return err
			}
			o.Logger = log
			o.CacheSize = cacheMiB << 20
			sd := nodeShutdown(cmd.Context(), log)
			defer sd.Close()
			res, err := node.Init(sd.Stopping(), dir, o)
			if err != nil {
				return err
			}
			_, err = fmt.Fprintln(cmd.OutOrStdout(), res.Waypoint.String())
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "node directory (created; must be empty)")
	cli.IntVar(f, &o.Config.Validators, "validators", 4, 1, ledger.MaxValidators, "validators per epoch")
	cli.Uint64Var(f, &o.Config.EpochLength, "epoch-length", 1000, 1, cli.MaxUint64, "versions per epoch (the validator set rotates at each epoch change)")
	cli.IntVar(f, &o.Config.BlockSize, "block-size", 100, 1, 100_000, "most transactions per block")
	cli.IntVar(f, &o.Config.GenesisAccounts, "genesis-accounts", 100, 1, ledger.MaxWriteOps, "accounts created by the genesis transaction (at most 65536)")
	f.Uint64Var(&o.InitialAccounts, "initial-accounts", 0, "more accounts created in bulk right after genesis (for large states)")
	cli.IntVar(f, &o.AccountValueSize, "initial-account-value-size", 100, 1, ledger.MaxValueSize, "value size of the initial accounts in bytes")
	f.Uint64Var(&o.Config.Seed, "seed", 0, "workload seed")
	cli.IntVar(f, &o.Config.LargeValueEvery, "large-value-every", 100, 0, cli.MaxInt, "one transaction in this many writes a large value (0: never)")
	cli.IntVar(f, &o.Config.LargeValueSize, "large-value-size", 64<<10, 1, ledger.MaxValueSize, "size of the occasional large value in bytes")
	cli.Int64Var(f, &cacheMiB, "db-cache-mib", 0, 0, maxCacheMiB, "store block cache in MiB (0: the store's default)")
	return cmd
}

func newNodeRunCmd(lf *cli.LogFlags) *cobra.Command {
	var dir string
	var cacheMiB int64
	var o node.RunOptions
	cmd := &cobra.Command{
		Use:   "run --dir DIR",
		Short: "Commit a synthetic workload and serve the backup service and metrics",
		Long: `Open the node in DIR and commit a synthetic workload (transfers, new accounts,
deletions, occasional large values; an epoch change with a rotated validator set every
--epoch-length versions given at init), serving the backup service and Prometheus metrics.
SIGINT or SIGTERM stops it gracefully (the block being committed is finished, in-flight
requests get a grace period); a second signal exits at once. Blocks are committed
atomically, so even a SIGKILL loses nothing committed: a restart continues after the
last committed block.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dir == "" {
				return cli.Usagef("--dir is required")
			}
			log, err := lf.Logger()
			if err != nil {
				return err
			}
			o.Logger = log
			o.CacheSize = cacheMiB << 20
			sd := nodeShutdown(cmd.Context(), log)
			defer sd.Close()
			return node.Run(sd.Stopping(), dir, o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&dir, "dir", "", "node directory written by node init")
	f.StringVar(&o.BackupServiceAddress, "backup-service-address", backupservice.DefaultAddress, "backup service listen address")
	f.StringVar(&o.MetricsAddress, "metrics-addr", "127.0.0.1:9186", `Prometheus metrics listen address ("" to disable)`)
	cli.Float64Var(f, &o.TPS, "tps", 0, 0, 1e9, "transactions per second (0: as fast as possible)")
	f.Uint64Var(&o.UntilVersion, "until-version", 0, "stop committing once this version is committed (0: never); the node keeps serving")
	f.BoolVar(&o.ExitWhenDone, "exit-when-done", false, "exit once --until-version is committed instead of serving on")
	cli.DurationVar(f, &o.ShutdownGrace, "shutdown-grace", 0, cli.NonNegative, "how long in-flight backup requests may finish on shutdown (default 10s)")
	cli.DurationVar(f, &o.WriteTimeout, "write-timeout", 0, cli.NonNegative, "cut a backup client that accepts no data for this long (default 30s)")
	cli.Int64Var(f, &cacheMiB, "db-cache-mib", 0, 0, maxCacheMiB, "store block cache in MiB (0: the store's default)")
	return cmd
}

// maxCacheMiB is the largest --db-cache-mib (1 TiB).
const maxCacheMiB = 1 << 20

// nodeShutdown is the shutdown of node init and run: the first SIGINT or SIGTERM
// stops the node gracefully (it finishes the block being committed; in-flight
// requests get --shutdown-grace), a second one exits at once with status 128+signal.
func nodeShutdown(parent context.Context, log *slog.Logger) *shutdown.Shutdown {
	return shutdown.Watch(parent, shutdown.Options{Grace: -1, Logger: log, Exit: os.Exit})
}

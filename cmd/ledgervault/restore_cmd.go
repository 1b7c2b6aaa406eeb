package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/node"
	"github.com/ledgervault/ledgervault/restore"
)

func init() { extraCommands = append(extraCommands, newRestoreCmd) }

// exitTargetNotEmpty is restore's status for a refused database directory.
const exitTargetNotEmpty = 3

// trustFlags select the trusted waypoints of restore and verify.
type trustFlags struct {
	waypoints    []string
	waypointFile string
}

func (f *trustFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.waypoints, "trust-waypoint", nil, "trusted waypoint VERSION:HASH of an epoch-ending ledger info (repeatable; the lowest is the root of trust, e.g. the genesis waypoint 0:HASH)")
	cmd.Flags().StringVar(&f.waypointFile, "waypoint-file", "", "file holding a trusted waypoint (the node's waypoint.txt)")
}

func (f *trustFlags) parse() ([]ledger.Waypoint, error) {
	var out []ledger.Waypoint
	for _, s := range f.waypoints {
		wp, err := ledger.ParseWaypoint(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("--trust-waypoint: %w", err)
		}
		out = append(out, wp)
	}
	if f.waypointFile != "" {
		wp, err := node.ReadWaypointFile(f.waypointFile)
		if err != nil {
			return nil, fmt.Errorf("--waypoint-file: %w", err)
		}
		out = append(out, wp)
	}
	if len(out) == 0 {
		return nil, errors.New("give a trusted waypoint with --trust-waypoint VERSION:HASH or --waypoint-file FILE (the node's waypoint.txt)")
	}
	return out, nil
}

func newRestoreCmd() *cobra.Command {
	var (
		sf       storageFlags
		lf       cli.LogFlags
		tf       trustFlags
		target   string
		dbDir    string
		cacheDir string
		conc     int
		progress string
		asJSON   bool
		maxRaw   int64
	)
	cmd := &cobra.Command{
		Use:   "restore --target-version V|latest --db DIR (--trust-waypoint W ... | --waypoint-file FILE)",
		Short: "Bootstrap a fresh database from backups, verifying everything against a trusted waypoint",
		Long: `Restore a database at --db to a backed-up version. Nothing in storage is trusted but the
waypoint: the epoch history is verified from it, the newest state snapshot at or before the target
is restored chunk by chunk (hashes, range proofs, root proof), transactions are replayed from the
snapshot to the target against verified ledger infos, and at the end the database's state root and
accumulator root must equal the verified commitments.

The database directory must be absent or empty, or hold an interrupted restore of the same plan
(RESTORE-PLAN.json), which is resumed. Exit status: 0 restored (or already restored: roots
re-checked), 1 failed, 3 the directory is not empty and not a restore of the same plan,
10 the store does not exist (nothing is created), 128+N interrupted by signal N (run again
to resume).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, out, err := progressLogger(&lf, progress)
			if err != nil {
				return err
			}
			wps, err := tf.parse()
			if err != nil {
				return cli.Usage(err)
			}
			o := restore.Options{DBDir: dbDir, Waypoints: wps, MetadataCacheDir: cacheDir, Concurrency: conc, Logger: log,
				Limits: native.Limits{MaxRawSize: maxRaw}}
			switch {
			case target == "latest":
				o.Latest = true
			case target == "":
				return cli.Usagef("--target-version is required (a version or latest)")
			default:
				if o.Target, err = parseVersion(target); err != nil {
					return cli.Usagef("--target-version: %w", err)
				}
			}
			if dbDir == "" {
				return cli.Usagef("--db is required")
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
			o.Progress = rep
			res, err := restore.Run(ctx, st, o)
			rep.finish()
			if err != nil {
				if errors.Is(err, restore.ErrTargetNotEmpty) {
					return &cli.ExitError{Code: exitTargetNotEmpty, Err: withResumeFlags(err, dbDir)}
				}
				return cli.Interrupted(err, sig())
			}
			return printRestoreResult(cmd.OutOrStdout(), res, asJSON)
		},
	}
	sf.register(cmd)
	lf.Register(cmd)
	tf.register(cmd)
	cmd.Flags().StringVar(&target, "target-version", "", "version to restore to, or latest")
	cmd.Flags().StringVar(&dbDir, "db", "", "database directory to restore into")
	cmd.Flags().StringVar(&cacheDir, "metadata-cache-dir", "", "keep a local cache of metadata files in this directory")
	cli.IntVar(cmd.Flags(), &conc, "concurrent-downloads", restore.DefaultConcurrency, 1, restore.MaxConcurrency, "downloads in flight (state chunks are streamed; transaction chunks are held: about 2 x this x their size)")
	cli.EnumVar(cmd.Flags(), &progress, "progress", "auto", progressModes, "progress display: auto (a bar on a terminal, logs otherwise), bar, log or none")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as one JSON object")
	cli.Int64Var(cmd.Flags(), &maxRaw, "max-chunk-raw-size", native.DefaultMaxRawSize, 1, cli.MaxInt64, "largest decompressed chunk accepted, in bytes")
	return cmd
}

// withResumeFlags adds to a refusal of a directory holding another plan's restore
// the flags that resume that restore.
func withResumeFlags(err error, dbDir string) error {
	var tne *restore.TargetNotEmptyError
	if !errors.As(err, &tne) || tne.Previous == nil {
		return err
	}
	args := fmt.Sprintf("--db %s --target-version %d", dbDir, tne.Previous.Target)
	for _, wp := range tne.Previous.Waypoints {
		args += " --trust-waypoint " + wp.String()
	}
	return fmt.Errorf("%w (its flags: %s)", err, args)
}

func parseVersion(s string) (uint64, error) {
	var v uint64
	if _, err := fmt.Sscan(s, &v); err != nil || fmt.Sprint(v) != s {
		return 0, fmt.Errorf("%q is not a version number", s)
	}
	return v, nil
}

func printRestoreResult(w io.Writer, res *restore.Result, asJSON bool) error {
	if asJSON {
		return json.NewEncoder(w).Encode(res)
	}
	snap := "none (from version 0)"
	if res.HasSnapshot {
		snap = fmt.Sprintf("version %d", res.SnapshotVersion)
	}
	status := "restored"
	switch {
	case res.AlreadyRestored:
		status = "already restored (roots re-checked)"
	case res.Resumed:
		status = "restored (resumed)"
	}
	rate := float64(res.Bytes) / max(res.Elapsed.Seconds(), 1e-9) / 1e6
	_, err := fmt.Fprintf(w, `%s to version %d
  state root        %s
  accumulator root  %s
  state snapshot    %s, %d items restored
  transactions      %d saved
  epoch endings     %d verified
  downloaded        %d files, %d bytes (%.1f MB/s)
  time              %s (epochs %s, state %s, transactions %s)
`, status, res.TargetVersion, res.StateRoot, res.AccumulatorRoot, snap, res.StateItems, res.Transactions, res.Epochs,
		res.Files, res.Bytes, rate, res.Elapsed.Round(time.Millisecond), res.EpochDuration.Round(time.Millisecond),
		res.StateDuration.Round(time.Millisecond), res.TxnDuration.Round(time.Millisecond))
	return err
}

package main

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/internal/benchbackup"
	"github.com/ledgervault/ledgervault/internal/cli"
)

// defaultRestic is restic built from source for the comparison, beside the checkout.
const defaultRestic = "../shared/bin/restic"

func newBenchCompareCmd() *cobra.Command {
	var hf harnessFlags
	var cfg benchbackup.CompareConfig
	cmd := &cobra.Command{
		Use:   "bench-compare [--accounts N] [--txns N] [--runs R] [--restic PATH]",
		Short: "Build one node and compare ledgervault's backup and verified restore with restic, tar|zstd and raw SST ingest (prints one table)",
		Args:  cobra.NoArgs,
		RunE: hf.runE(func(cmd *cobra.Command, r *harnessRun) error {
			if cfg.Accounts == 0 {
				return usage(errors.New("--accounts: want at least 1"))
			}
			if cfg.Runs < 1 {
				return usage(errors.New("--runs: want at least 1"))
			}
			self, err := os.Executable()
			if err != nil {
				return err
			}
			cfg.Binary, cfg.Self, cfg.Logger = r.binary, self, r.log
			cfg.Restic = findRestic(cfg.Restic, cmd.Flags().Changed("restic"))
			_, err = benchbackup.Compare(r.ctx, cfg, cmd.OutOrStdout())
			return cli.Interrupted(err, r.sig())
		}),
	}
	hf.register(cmd)
	f := cmd.Flags()
	f.Uint64Var(&cfg.Accounts, "accounts", 500_000, "node init --initial-accounts of the node measured")
	f.Uint64Var(&cfg.Txns, "txns", 20_000, "transactions committed after the snapshot version, backed up and restored (0: none)")
	f.IntVar(&cfg.Runs, "runs", 1, "runs of every measured row, interleaved (the table shows medians)")
	f.StringVar(&cfg.Restic, "restic", "", "restic binary (default: restic on PATH, else "+defaultRestic+" (or ../"+defaultRestic+"); the restic rows are skipped if none)")
	f.StringVar(&cfg.Dir, "dir", "", "work directory (default: a temporary one, removed)")
	f.StringVar(&cfg.ProfileDir, "cpuprofile-dir", "", "write CPU profiles of the ledgervault backup and restore children into this directory")
	return cmd
}

// findRestic returns the restic to run: the flag if given, else restic on PATH, else
// defaultRestic if it exists, else "" (the rows are skipped).
func findRestic(flag string, set bool) string {
	if set {
		return flag
	}
	if p, err := exec.LookPath("restic"); err == nil {
		return p
	}
	// The checkout is /work/X or a worktree /work/wt/X: shared is beside either.
	for _, rel := range []string{defaultRestic, "../" + defaultRestic} {
		if p, err := filepath.Abs(rel); err == nil {
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p
			}
		}
	}
	return ""
}

// newSSTIngestCmd is the child process of bench-compare's raw SST ingest row.
func newSSTIngestCmd() *cobra.Command {
	var src, dst, pairs string
	var version uint64
	cmd := &cobra.Command{
		Use:    "sst-ingest --src NODEDB --version V --pairs FILE | --pairs FILE --version V --dst DIR",
		Short:  "Dump a node store's state at V to FILE (with --src), or build SSTables of FILE's pairs and ingest them into a fresh Pebble store, unverified (bench-compare's baseline)",
		Args:   cobra.NoArgs,
		Hidden: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if pairs == "" || (src == "") == (dst == "") {
				return usage(errors.New("--pairs and one of --src (dump) and --dst (ingest) are required"))
			}
			var res benchbackup.IngestResult
			var err error
			if src != "" {
				res, err = benchbackup.DumpState(cmd.Context(), src, version, pairs)
			} else {
				res, err = benchbackup.IngestState(cmd.Context(), pairs, version, dst)
			}
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(res)
		},
	}
	cmd.Flags().StringVar(&src, "src", "", "node store (its db directory)")
	cmd.Flags().StringVar(&dst, "dst", "", "fresh Pebble directory")
	cmd.Flags().StringVar(&pairs, "pairs", "", "the file of pairs")
	cmd.Flags().Uint64Var(&version, "version", 0, "state version")
	return cmd
}

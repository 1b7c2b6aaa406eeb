package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/internal/progress"
	"github.com/ledgervault/ledgervault/storage"
)

func init() { extraCommands = append(extraCommands, newAuditCmd) }

// Exit statuses of audit (besides 0, 1 and 128+N).
const (
	exitUsage      = 2
	exitIncomplete = 3
)

// auditWalkers are the formats audit can walk.
var auditWalkers = map[backupcli.Format]audit.Walker{
	backupcli.FormatBackupCLI:   audit.BackupCLI,
	backupcli.FormatLedgerVault: audit.Native,
}

func usageError(err error) error { return &cli.ExitError{Code: exitUsage, Err: err} }

func newAuditCmd() *cobra.Command {
	sf := storageFlags{logs: new(cli.LogFlags)}
	var asJSON bool
	var format, progress string
	var conc int
	cmd := &cobra.Command{
		Use:   "audit [--storage URL | --command-config FILE] [--json] [--format auto|backupcli|ledgervault] [--concurrency N]",
		Short: "Check a store end to end, read-only: missing, unreferenced, partial and mismatched files",
		Long: `Walk metadata, then every manifest, then every file the manifests reference, decoding each
completely, and list storage for files and folders no metadata references. Reports each
finding with its kind, file handle, backup folder and what is wrong:

  missing       a file that metadata or a manifest references is absent
  unreferenced  a file or folder no metadata references (with its age)
  partial       a file that does not decode completely (truncated or corrupt gzip, records
                whose framing does not consume the file, an empty or undecodable file)
  mismatch      a file that disagrees with its manifest (record counts, key order,
                first/last key), or a manifest whose ranges do not tile its metadata range

The format is detected from the metadata (--format overrides it). For ledgervault's own
format, chunks go through the format's chunk decoder (zstd, record framing, trailer) and
are compared with their manifest (size, SHA-256, record counts, epochs and waypoints,
ascending state key hashes, first/last key); proofs are decoded but not verified (that
is verify). Temporary files and incomplete uploads are invisible to listings: gc removes
them. Aptos/Diem backup-cli
stores are read in place: through file:// a gzip layer written by the operator's config is
removed transparently; through --command-config the config's own open_for_read does it.
A command config without list_backups cannot list folders: unreferenced files are then not
checked, and the audit says so. Nothing is ever written.

Exit status: 0 no findings, 1 findings, 2 usage error, 3 the audit could not complete
(storage failure, unknown or unsupported format), 10 the store does not exist, 128+N
interrupted by signal N.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if conc < 1 || conc > 256 {
				return usageError(fmt.Errorf("--concurrency %d: want 1..256", conc))
			}
			if sf.commandConfig == "" && sf.url == "" {
				return usageError(errors.New("choose a store with --storage URL or --command-config FILE"))
			}
			if sf.commandConfig != "" && sf.url != "" {
				return usageError(errors.New("use either --command-config or --storage, not both"))
			}
			if sf.commandConfig != "" {
				if _, err := os.Stat(sf.commandConfig); err != nil {
					return usageError(fmt.Errorf("--command-config: %w", err))
				}
			}
			var forced backupcli.Format
			switch format {
			case "auto":
			case string(backupcli.FormatBackupCLI), string(backupcli.FormatLedgerVault):
				forced = backupcli.Format(format)
			default:
				return usageError(fmt.Errorf("--format %q: want auto, backupcli or ledgervault", format))
			}
			showProgress, err := progressWanted(progress)
			if err != nil {
				return err
			}
			if _, err := sf.logs.Logger(); err != nil { // slog's default, for the storage clients
				return usageError(err)
			}
			ctx, sig, stop := cli.SignalContext(cmd.Context(), os.Exit)
			defer stop()
			st, err := sf.open(ctx)
			if errors.Is(err, storage.ErrStoreNotFound) {
				return err // exit status 10, as every reader
			}
			if err != nil {
				return auditOpenError(err)
			}
			defer st.Close()
			rep, err := runAudit(ctx, st, forced, conc, showProgress)
			if err != nil {
				if s := sig(); s != nil {
					return cli.Interrupted(err, s)
				}
				return &cli.ExitError{Code: exitIncomplete, Err: err}
			}
			if asJSON {
				for _, n := range rep.Notes { // the JSON's shape is fixed; the table prints them
					fmt.Fprintln(os.Stderr, "ledgervault audit: note:", n)
				}
				err = rep.WriteJSON(cmd.OutOrStdout())
			} else {
				err = rep.WriteTable(cmd.OutOrStdout())
			}
			if err != nil {
				return err
			}
			if len(rep.Findings) > 0 {
				return &cli.ExitError{Code: 1, Err: fmt.Errorf("%d findings", len(rep.Findings))}
			}
			return nil
		},
	}
	sf.register(cmd)
	sf.logs.Register(cmd)
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print one JSON object: format, metadata_files, backups, files, bytes, findings")
	cli.EnumVar(f, &format, "format", "auto", []string{"auto", string(backupcli.FormatBackupCLI), string(backupcli.FormatLedgerVault)}, "store format: auto (detect from metadata), backupcli or ledgervault")
	cli.IntVar(f, &conc, "concurrency", backupcli.DefaultConcurrency, 1, 256, "files read at once")
	cli.EnumVar(f, &progress, "progress", "auto", []string{"auto", "on", "off"}, "progress on stderr: auto (on a terminal), on or off")
	cmd.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError(err) })
	return cmd
}

// auditOpenError is the exit of a store that did not open: a usage error (a bad
// --storage or --command-config) stays one, anything else means the audit could not
// complete.
func auditOpenError(err error) error {
	var ee *cli.ExitError
	if errors.As(err, &ee) {
		return err
	}
	return &cli.ExitError{Code: exitIncomplete, Err: err}
}

func progressWanted(v string) (bool, error) {
	switch v {
	case "auto":
		return term.IsTerminal(int(os.Stderr.Fd())), nil
	case "on":
		return true, nil
	case "off":
		return false, nil
	}
	return false, usageError(fmt.Errorf("--progress %q: want auto, on or off", v))
}

// storeFormat returns forced, or the format detected from st's metadata.
func storeFormat(ctx context.Context, st storage.Store, forced backupcli.Format) (backupcli.Format, error) {
	if forced != backupcli.FormatUnknown {
		return forced, nil
	}
	f, err := backupcli.DetectStore(ctx, st)
	if err != nil {
		return f, err
	}
	if f == backupcli.FormatUnknown {
		return f, errors.New("cannot tell the store's format: no metadata line of a known format (use --format; " +
			"a command config with relative paths must be run from the directory it was written for)")
	}
	return f, nil
}

func runAudit(ctx context.Context, st storage.Store, forced backupcli.Format, conc int, showProgress bool) (*audit.Report, error) {
	f, err := storeFormat(ctx, st, forced)
	if err != nil {
		return nil, err
	}
	walk, ok := auditWalkers[f]
	if !ok {
		return nil, fmt.Errorf("audit of %s stores is not implemented yet", f)
	}
	o := audit.Options{Concurrency: conc}
	if showProgress {
		disp := progress.New(os.Stderr, progress.Options{})
		disp.Start("audit (files)", progress.Items, 0)
		defer disp.Finish()
		var mu sync.Mutex // the walker reports from several goroutines
		var lastDone, lastBytes int64
		o.Progress = func(done, total int, bytes int64) {
			mu.Lock()
			defer mu.Unlock()
			disp.SetTotal(int64(total))
			disp.Add(int64(done)-lastDone, bytes-lastBytes)
			lastDone, lastBytes = int64(done), bytes
		}
	}
	return walk(ctx, st, o)
}

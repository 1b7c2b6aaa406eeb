package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptosverify"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/cli"
	"github.com/ledgervault/ledgervault/storage"
)

// exitNotFullyVerified is verify's exit status when nothing was found false but not
// everything was checked: files missing, or a generation not checked cryptographically.
const exitNotFullyVerified = 3

// parseFormatFlag parses --format auto|backupcli|ledgervault (auto: FormatUnknown).
func parseFormatFlag(v string) (backupcli.Format, error) {
	switch v {
	case "auto":
		return backupcli.FormatUnknown, nil
	case string(backupcli.FormatBackupCLI), string(backupcli.FormatLedgerVault):
		return backupcli.Format(v), nil
	}
	return "", usageError(fmt.Errorf("--format %q: want auto, backupcli or ledgervault", v))
}

// aptosWaypoint returns the root of trust for a backup-cli store: the lowest of the
// --trust-waypoint values and the --waypoint-file's content, each in the aptos text
// form "version:hash" (which is also ledgervault's; a 0x before the hash is accepted).
func (f *trustFlags) aptosWaypoint() (aptos.Waypoint, error) {
	var all []aptos.Waypoint
	for _, s := range f.waypoints {
		wp, err := aptos.ParseWaypoint(s)
		if err != nil {
			return aptos.Waypoint{}, usageError(fmt.Errorf("--trust-waypoint: %w", err))
		}
		all = append(all, wp)
	}
	if f.waypointFile != "" {
		fh, err := os.Open(f.waypointFile)
		if err != nil {
			return aptos.Waypoint{}, usageError(fmt.Errorf("--waypoint-file: %w", err))
		}
		b, err := io.ReadAll(io.LimitReader(fh, 1<<10))
		fh.Close()
		if err != nil {
			return aptos.Waypoint{}, usageError(fmt.Errorf("--waypoint-file: %w", err))
		}
		wp, err := aptos.ParseWaypoint(string(b))
		if err != nil {
			return aptos.Waypoint{}, usageError(fmt.Errorf("--waypoint-file %s: %w", f.waypointFile, err))
		}
		all = append(all, wp)
	}
	if len(all) == 0 {
		return aptos.Waypoint{}, usageError(errors.New("give a trusted waypoint with --trust-waypoint VERSION:HASH or --waypoint-file FILE (such as the chain's genesis/waypoint.txt)"))
	}
	low := all[0]
	for _, wp := range all[1:] {
		if wp.Version < low.Version {
			low = wp
		}
	}
	return low, nil
}

// verifyIfBackupCLI runs verify on a backup-cli store (package aptosverify) when the
// store is one (or --format says so); handled says whether it did.
func verifyIfBackupCLI(cmd *cobra.Command, sf *storageFlags, tf *trustFlags, format string, asJSON bool) (handled bool, err error) {
	forced, err := parseFormatFlag(format)
	if err != nil {
		return true, err
	}
	if forced == backupcli.FormatLedgerVault {
		return false, nil
	}
	ctx, sig, stop := cli.SignalContext(cmd.Context(), os.Exit)
	defer stop()
	st, err := sf.open(ctx)
	if errors.Is(err, storage.ErrStoreNotFound) && forced == backupcli.FormatUnknown {
		return false, nil // the native path checks its flags first, then reports it
	}
	if err != nil {
		return true, err
	}
	defer st.Close()
	if forced == backupcli.FormatUnknown {
		f, err := backupcli.DetectStore(ctx, st)
		if err != nil {
			return true, cli.Interrupted(fmt.Errorf("detect the store's format: %w", err), sig())
		}
		if f != backupcli.FormatBackupCLI {
			return false, nil
		}
	}
	trusted, err := tf.aptosWaypoint()
	if err != nil {
		return true, err
	}
	r, err := aptosverify.Verify(ctx, st, aptosverify.Options{Trusted: trusted})
	if err != nil {
		return true, cli.Interrupted(err, sig())
	}
	if asJSON {
		err = r.WriteJSON(cmd.OutOrStdout())
	} else {
		err = r.WriteTable(cmd.OutOrStdout())
	}
	if err != nil || r.OK {
		return true, err
	}
	for _, row := range r.Rows {
		if row.OK {
			continue
		}
		what := row.Error
		if len(row.Missing) > 0 && !strings.Contains(what, string(row.Missing[0])) {
			hs := make([]string, len(row.Missing))
			for i, h := range row.Missing {
				hs[i] = string(h)
			}
			what = "missing " + strings.Join(hs, ", ") + ": " + what
		}
		where := ""
		if row.Manifest != "" {
			where = " (" + string(row.Manifest) + ")"
		}
		cmd.PrintErrf("ledgervault: verify: %s %s %s%s: %s\n", row.Status, row.Type, row.Range, where, what)
	}
	if n := r.Count(aptosverify.StatusFailed); n > 0 {
		return true, &cli.ExitError{Code: 1, Err: fmt.Errorf("verification failed: %d of %d rows failed", n, len(r.Rows))}
	}
	return true, &cli.ExitError{Code: exitNotFullyVerified, Err: fmt.Errorf("not fully verified: nothing found false, but %d of %d rows incomplete or not checked (%d files missing)",
		r.Count(aptosverify.StatusIncomplete)+r.Count(aptosverify.StatusNotChecked), len(r.Rows), r.MissingFiles)}
}

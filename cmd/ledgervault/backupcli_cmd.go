package main

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/sweep"
)

// isBackupCLIStore reports whether st's metadata is Aptos/Diem backup-cli's.
func isBackupCLIStore(ctx context.Context, st storage.Store) (bool, error) {
	f, err := backupcli.DetectStore(ctx, st)
	return f == backupcli.FormatBackupCLI, err
}

// listIfBackupCLI prints the listing of st when it is a backup-cli store (the same
// table and JSON as ledgervault's own); handled says whether it was one.
func listIfBackupCLI(ctx context.Context, st storage.Store, w io.Writer, asJSON bool) (handled bool, err error) {
	if ok, err := isBackupCLIStore(ctx, st); !ok || err != nil {
		return false, err
	}
	files, err := backupcli.LoadMetadata(ctx, st, backupcli.LoadOptions{})
	if err != nil {
		return true, err
	}
	var sizes map[storage.BackupHandle]int64
	if infos, err := st.ListBackups(ctx); err == nil {
		sizes = map[storage.BackupHandle]int64{}
		for _, in := range infos {
			sizes[in.Handle] = in.Size
		}
	} else if !storage.IsPermanent(err) && !errors.Is(err, storage.ErrNotSupported) {
		return true, err
	} // a store that cannot list folders lists without sizes
	l := backupcli.NewListing(backupcli.NewView(files), sizes)
	if asJSON {
		return true, l.WriteJSON(w)
	}
	return true, l.WriteTable(w)
}

// gcIfBackupCLI sweeps st when it is a backup-cli store (see package sweep);
// handled says whether it was one.
func gcIfBackupCLI(ctx context.Context, st storage.Store, log *slog.Logger, dryRun bool, grace time.Duration, batch int) (rep report, handled bool, err error) {
	if ok, err := isBackupCLIStore(ctx, st); !ok || err != nil {
		return nil, false, err
	}
	res, err := sweep.BackupCLI(ctx, st, sweep.Options{Grace: grace, DryRun: dryRun, BatchSize: batch, Logger: log})
	if res == nil || (err != nil && len(res.Removed) == 0) {
		return nil, true, err // nothing done: the error says it all
	}
	return res, true, err
}

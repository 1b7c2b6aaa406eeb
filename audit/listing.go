package audit

import (
	"context"
	"errors"
	"fmt"
	"sort"

	"github.com/ledgervault/ledgervault/storage"
)

// inventory is what storage holds, as far as it can be listed.
type inventory struct {
	// folders is nil when the store cannot list its folders.
	folders []storage.BackupInfo
	// files maps each folder to its files; nil when the store cannot list files
	// (filesErr says why, when it tried).
	files    map[storage.BackupHandle][]storage.FileInfo
	filesErr error
}

// backupCLIOwnFolders are folders backup-cli itself keeps beside the backups:
// metadata_backup/ is where backup_metadata_file moves compacted metadata.
var backupCLIOwnFolders = map[storage.BackupHandle]bool{"metadata": true, "metadata_backup": true}

// errCannotList reports a store that has no way to list folders.
var errCannotList = errors.New("the store cannot list its folders")

// listStorage lists folders (but the format's own folders, own) and, where the
// store can, their files.
func listStorage(ctx context.Context, st storage.Store, own map[storage.BackupHandle]bool) (*inventory, error) {
	infos, err := st.ListBackups(ctx)
	if err != nil {
		// A command adapter without list_backups cannot list its folders.
		if errors.Is(err, storage.ErrNotSupported) {
			return nil, fmt.Errorf("%w: %v", errCannotList, err)
		}
		return nil, fmt.Errorf("list backup folders: %w", err)
	}
	inv := &inventory{}
	for _, in := range infos {
		if !own[in.Handle] {
			inv.folders = append(inv.folders, in)
		}
	}
	sort.Slice(inv.folders, func(i, j int) bool { return inv.folders[i].Handle < inv.folders[j].Handle })
	inv.files = map[storage.BackupHandle][]storage.FileInfo{}
	for _, f := range inv.folders {
		fs, err := st.ListFiles(ctx, f.Handle)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue // removed meanwhile
			}
			if errors.Is(err, storage.ErrNotSupported) {
				// A command adapter without list_files: folders only.
				inv.files = nil
				inv.filesErr = err
				break
			}
			return nil, fmt.Errorf("list files of %s: %w", f.Handle, err)
		}
		inv.files[f.Handle] = fs
	}
	return inv, nil
}

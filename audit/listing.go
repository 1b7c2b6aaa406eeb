package audit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"time"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

// FileInfo is a file in a backup folder.
type FileInfo struct {
	Handle  storage.FileHandle
	Size    int64
	ModTime time.Time
}

// FileLister is a store that can list the files of a backup folder. storage.Store
// is gaining this method (with its own storage.FileInfo); until every backend has
// it, ListFiles finds it by name (see Lister).
type FileLister interface {
	ListFiles(ctx context.Context, backup storage.BackupHandle) ([]FileInfo, error)
}

// Lister returns a FileLister for st, or nil when st cannot list files: st itself
// when it implements FileLister; an adapter for a ListFiles method of the shape
// storage.Store is gaining (ListFiles(ctx, storage.BackupHandle) ([]T, error) with T
// a struct of Handle, Size and ModTime), found by reflection so that this package
// works before and after that method lands; for a local store without either, a
// walk of its folder.
func Lister(st storage.Store) FileLister {
	if fl, ok := st.(FileLister); ok {
		return fl
	}
	if fl := reflectLister(st); fl != nil {
		return fl
	}
	if ls, ok := st.(*local.Store); ok {
		return localLister{root: ls.Root()}
	}
	return nil
}

type reflectFileLister struct{ m reflect.Value }

var (
	ctxType   = reflect.TypeOf((*context.Context)(nil)).Elem()
	errType   = reflect.TypeOf((*error)(nil)).Elem()
	timeType  = reflect.TypeOf(time.Time{})
	bhType    = reflect.TypeOf(storage.BackupHandle(""))
	int64Type = reflect.TypeOf(int64(0))
)

func reflectLister(st storage.Store) FileLister {
	m := reflect.ValueOf(st).MethodByName("ListFiles")
	if !m.IsValid() {
		return nil
	}
	t := m.Type()
	if t.NumIn() != 2 || t.NumOut() != 2 || t.In(0) != ctxType || t.In(1) != bhType || t.Out(1) != errType || t.Out(0).Kind() != reflect.Slice {
		return nil
	}
	el := t.Out(0).Elem()
	if el.Kind() != reflect.Struct {
		return nil
	}
	for name, want := range map[string]reflect.Type{"Size": int64Type, "ModTime": timeType} {
		f, ok := el.FieldByName(name)
		if !ok || f.Type != want {
			return nil
		}
	}
	if f, ok := el.FieldByName("Handle"); !ok || f.Type.Kind() != reflect.String {
		return nil
	}
	return reflectFileLister{m: m}
}

func (r reflectFileLister) ListFiles(ctx context.Context, backup storage.BackupHandle) ([]FileInfo, error) {
	out := r.m.Call([]reflect.Value{reflect.ValueOf(ctx), reflect.ValueOf(backup)})
	if err, _ := out[1].Interface().(error); err != nil {
		return nil, err
	}
	s := out[0]
	infos := make([]FileInfo, 0, s.Len())
	for i := 0; i < s.Len(); i++ {
		e := s.Index(i)
		infos = append(infos, FileInfo{
			Handle:  storage.FileHandle(e.FieldByName("Handle").String()),
			Size:    e.FieldByName("Size").Int(),
			ModTime: e.FieldByName("ModTime").Interface().(time.Time),
		})
	}
	return infos, nil
}

// localLister walks a local store's folder (regular files, not hidden ones: those
// are the backend's temporary files, which gc's stale-upload sweep handles).
type localLister struct{ root string }

func (l localLister) ListFiles(ctx context.Context, backup storage.BackupHandle) ([]FileInfo, error) {
	if err := storage.ValidateHandle(string(backup)); err != nil || strings.Contains(string(backup), "/") {
		return nil, fmt.Errorf("list files of %q: %w", backup, storage.ErrInvalidName)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(l.root, string(backup)))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("list files of %s: %w", backup, storage.ErrNotFound)
		}
		return nil, fmt.Errorf("list files of %s: %w", backup, err)
	}
	var out []FileInfo
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		out = append(out, FileInfo{Handle: storage.FileHandle(string(backup) + "/" + e.Name()), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

// inventory is what storage holds, as far as it can be listed.
type inventory struct {
	// folders is nil when the store cannot list its folders.
	folders []storage.BackupInfo
	// files maps each folder to its files; nil when the store cannot list files
	// (filesErr says why, when it tried).
	files    map[storage.BackupHandle][]FileInfo
	filesErr error
}

// backupCLIOwnFolders are folders backup-cli itself keeps beside the backups:
// metadata_backup/ is where backup_metadata_file moves compacted metadata.
var backupCLIOwnFolders = map[storage.BackupHandle]bool{"metadata": true, "metadata_backup": true}

// errCannotList reports a store that has no way to list folders.
var errCannotList = errors.New("the store cannot list its folders")

// listStorage lists folders and, where the store can, their files.
func listStorage(ctx context.Context, st storage.Store) (*inventory, error) {
	infos, err := st.ListBackups(ctx)
	if err != nil {
		// The command adapter without list_backups says so with a permanent error.
		if storage.IsPermanent(err) && strings.Contains(err.Error(), "not configured") {
			return nil, fmt.Errorf("%w: %v", errCannotList, err)
		}
		return nil, fmt.Errorf("list backup folders: %w", err)
	}
	inv := &inventory{}
	for _, in := range infos {
		if !backupCLIOwnFolders[in.Handle] {
			inv.folders = append(inv.folders, in)
		}
	}
	sort.Slice(inv.folders, func(i, j int) bool { return inv.folders[i].Handle < inv.folders[j].Handle })
	fl := Lister(st)
	if fl == nil {
		return inv, nil
	}
	inv.files = map[storage.BackupHandle][]FileInfo{}
	for _, f := range inv.folders {
		fs, err := fl.ListFiles(ctx, f.Handle)
		if err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				continue // removed meanwhile
			}
			if storage.IsPermanent(err) || errors.Is(err, errors.ErrUnsupported) {
				// A backend that has the method but cannot list (a command adapter
				// without a listing command): folders only.
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

// Package objstore holds what the object-store backends (S3, GCS, Azure Blob) share:
// the key layout of a store, unique backup folder names, and the bounded,
// concurrent part uploader used for multipart and block uploads.
package objstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

// MetadataDir is the folder under the store prefix that holds metadata files.
const MetadataDir = "metadata"

// MarkerName is the object written into every new backup folder so that empty folders
// are listed (with their creation time) for garbage collection. It starts with a dot,
// which storage.ValidateName forbids, so it never collides with a backup file.
const MarkerName = ".ledgervault-backup"

// AbortTimeout bounds the clean-up calls (abort multipart upload, delete staged
// blocks) that run on a fresh context after the caller's context may be cancelled.
const AbortTimeout = 10 * time.Second

// AbortContext returns a context for clean-up that is not cancelled with ctx but has
// its values and a short deadline of its own: an abort sent on an already cancelled
// context fails and leaves the upload open.
func AbortContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), AbortTimeout)
}

// Layout maps handles to object keys under an optional prefix:
// <prefix>/<backup>/<file> and <prefix>/metadata/<name>. Handles are relative to the
// prefix, so they stay valid when the store is reached under another prefix.
type Layout struct {
	prefix string // "" or "a/b/" with a trailing slash
}

// NewLayout checks prefix (slash-separated, no empty, "." or ".." segments; leading
// and trailing slashes are ignored) and returns the layout.
func NewLayout(prefix string) (Layout, error) {
	p := strings.Trim(prefix, "/")
	if p == "" {
		return Layout{}, nil
	}
	if err := storage.ValidateHandle(p); err != nil {
		return Layout{}, fmt.Errorf("store prefix: %w", err)
	}
	return Layout{prefix: p + "/"}, nil
}

// Prefix returns the key prefix, empty or ending in a slash.
func (l Layout) Prefix() string { return l.prefix }

// Key returns the object key of a handle.
func (l Layout) Key(h string) string { return l.prefix + h }

// Handle returns the handle of an object key, and false when the key is not under
// the prefix.
func (l Layout) Handle(key string) (string, bool) {
	if !strings.HasPrefix(key, l.prefix) {
		return "", false
	}
	return key[len(l.prefix):], true
}

// MetadataPrefix returns the key prefix of metadata files.
func (l Layout) MetadataPrefix() string { return l.prefix + MetadataDir + "/" }

// BackupPrefix returns the key prefix of the files of backup h.
func (l Layout) BackupPrefix(h storage.BackupHandle) string { return l.prefix + string(h) + "/" }

// NewBackupHandle returns a fresh backup folder name: name, the UTC creation time and
// 8 random bytes, e.g. "epoch-20260102T030405Z-0123456789abcdef".
func NewBackupHandle(name string, now time.Time) (storage.BackupHandle, error) {
	if err := storage.ValidateName(name); err != nil {
		return "", err
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random backup suffix: %w", err)
	}
	return storage.BackupHandle(name + "-" + now.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b[:])), nil
}

// CheckBackup validates a backup handle: one path segment that satisfies
// storage.ValidateHandle and is not the metadata folder.
func CheckBackup(h storage.BackupHandle) error {
	s := string(h)
	if err := storage.ValidateHandle(s); err != nil {
		return err
	}
	if strings.Contains(s, "/") || s == MetadataDir {
		return fmt.Errorf("%w: backup handle %q", storage.ErrInvalidName, s)
	}
	return nil
}

// FileHandle returns the handle of file name in backup, validating both.
func FileHandle(backup storage.BackupHandle, name string) (storage.FileHandle, error) {
	if err := CheckBackup(backup); err != nil {
		return "", err
	}
	if err := storage.ValidateName(name); err != nil {
		return "", err
	}
	return storage.FileHandle(string(backup) + "/" + name), nil
}

// MetadataHandle returns the handle of metadata file name, validating it.
func MetadataHandle(name string) (storage.FileHandle, error) {
	if err := storage.ValidateName(name); err != nil {
		return "", err
	}
	return storage.FileHandle(MetadataDir + "/" + name), nil
}

// CheckMetadata validates a metadata file handle.
func CheckMetadata(h storage.FileHandle) error {
	name, ok := strings.CutPrefix(string(h), MetadataDir+"/")
	if !ok {
		return fmt.Errorf("%w: %q is not a metadata handle", storage.ErrInvalidName, h)
	}
	return storage.ValidateName(name)
}

// BackupOfKey splits the key of an object inside a backup folder into the backup
// handle and the file name; ok is false for keys outside any backup folder
// (metadata files, foreign objects, invalid names).
func (l Layout) BackupOfKey(key string) (backup storage.BackupHandle, file string, ok bool) {
	h, ok := l.Handle(key)
	if !ok {
		return "", "", false
	}
	b, f, ok := strings.Cut(h, "/")
	if !ok || b == MetadataDir || f == "" || strings.Contains(f, "/") {
		return "", "", false
	}
	if CheckBackup(storage.BackupHandle(b)) != nil || storage.ValidateHandle(h) != nil {
		// A file named "." or ".." (or with control characters) is not one a Writer
		// can have made; it is ignored like any foreign object.
		return "", "", false
	}
	return storage.BackupHandle(b), f, true
}

// Backups accumulates listed objects into per-folder BackupInfo records.
type Backups struct {
	l     Layout
	infos map[storage.BackupHandle]*storage.BackupInfo
	order []storage.BackupHandle
}

// NewBackups returns an empty accumulator for layout l.
func NewBackups(l Layout) *Backups {
	return &Backups{l: l, infos: map[storage.BackupHandle]*storage.BackupInfo{}}
}

// Add records one listed object; objects outside backup folders are ignored.
func (b *Backups) Add(key string, size int64, mod time.Time) {
	h, _, ok := b.l.BackupOfKey(key)
	if !ok {
		return
	}
	info := b.infos[h]
	if info == nil {
		info = &storage.BackupInfo{Handle: h}
		b.infos[h] = info
		b.order = append(b.order, h)
	}
	info.Size += size
	if mod.After(info.ModTime) {
		info.ModTime = mod
	}
}

// List returns the folders in the order first seen.
func (b *Backups) List() []storage.BackupInfo {
	out := make([]storage.BackupInfo, 0, len(b.order))
	for _, h := range b.order {
		out = append(out, *b.infos[h])
	}
	return out
}

// MarkerBody returns the small JSON body of a backup folder marker.
func MarkerBody(h storage.BackupHandle, now time.Time) []byte {
	return fmt.Appendf(nil, "{\"backup\":%q,\"created\":%q}\n", h, now.UTC().Format(time.RFC3339Nano))
}

// Files accumulates the listed objects under one backup folder's prefix into the
// folder's FileInfo records: the marker says the folder exists but is not a file, and
// keys that are not a file of that folder are ignored.
type Files struct {
	l      Layout
	b      storage.BackupHandle
	exists bool
	out    []storage.FileInfo
}

// NewFiles returns an empty accumulator for backup folder b, validating b.
func (l Layout) NewFiles(b storage.BackupHandle) (*Files, error) {
	if err := CheckBackup(b); err != nil {
		return nil, err
	}
	return &Files{l: l, b: b, out: []storage.FileInfo{}}, nil
}

// Add records one listed object.
func (f *Files) Add(key string, size int64, mod time.Time) {
	if key == f.l.BackupPrefix(f.b)+MarkerName {
		f.exists = true
		return
	}
	b, name, ok := f.l.BackupOfKey(key)
	if !ok || b != f.b || storage.ValidateName(name) != nil {
		return
	}
	f.exists = true
	f.out = append(f.out, storage.FileInfo{Handle: storage.FileHandle(string(b) + "/" + name), Size: size, ModTime: mod})
}

// List returns the folder's files sorted by handle, or an error matching
// storage.ErrNotFound when neither the marker nor any file was listed.
func (f *Files) List() ([]storage.FileInfo, error) {
	if !f.exists {
		return nil, fmt.Errorf("backup folder %s: %w", f.b, storage.ErrNotFound)
	}
	slices.SortFunc(f.out, func(a, b storage.FileInfo) int { return strings.Compare(string(a.Handle), string(b.Handle)) })
	return f.out, nil
}

// Package local stores backups in a directory on a local or mounted file system.
//
// Layout: <root>/<backup-name>-<random>/<file> for backup files and
// <root>/metadata/<name> for metadata. A file is written to a temporary file
// ".tmp-<name>-<random>" in its final folder, fsynced, then linked to its final name
// with renameat2(RENAME_NOREPLACE) (or link(2) where that is unsupported) so that an
// existing file is never replaced, and the folder is fsynced. Readers and listings
// never see temporary files.
package local

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/ledgervault/ledgervault/storage"
)

const (
	metadataDir = "metadata"
	tmpPrefix   = ".tmp-"
	delPrefix   = ".deleting-"
)

// Store is a backup store in a local directory. It is safe for concurrent use.
type Store struct {
	root string
}

var _ storage.Store = (*Store)(nil)

// New opens a store rooted at dir, creating the directory and its metadata folder
// if needed: for writers (backups, storage put).
func New(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	if err := os.MkdirAll(filepath.Join(abs, metadataDir), 0o755); err != nil {
		return nil, fmt.Errorf("local store %s: create folders: %w", abs, classify(err))
	}
	return &Store{root: abs}, nil
}

// Open opens the existing store rooted at dir without creating anything: for
// readers. A store exists when dir holds its metadata folder (every store a writer
// created does, and so do Aptos backup-cli stores); otherwise the error is a
// *storage.StoreNotFoundError, so that a mistyped path or the parent of a store is
// reported instead of listed as an empty store.
func Open(dir string) (*Store, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local store %s: %w", dir, err)
	}
	fi, err := os.Stat(filepath.Join(abs, metadataDir))
	switch {
	case err == nil && fi.IsDir():
		return &Store{root: abs}, nil
	case err == nil:
		return nil, &storage.StoreNotFoundError{Store: abs, Reason: metadataDir + " is not a folder"}
	case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
		if rfi, rerr := os.Stat(abs); rerr == nil && rfi.IsDir() {
			return nil, &storage.StoreNotFoundError{Store: abs, Reason: "the directory has no " + metadataDir + " folder"}
		}
		return nil, &storage.StoreNotFoundError{Store: abs}
	}
	return nil, fmt.Errorf("local store %s: %w", abs, classify(err))
}

// Root returns the store's root directory.
func (s *Store) Root() string { return s.root }

// classify marks errors a retry cannot fix as permanent.
func classify(err error) error {
	for _, e := range []syscall.Errno{syscall.EACCES, syscall.EPERM, syscall.EROFS, syscall.ENOSPC, syscall.EDQUOT} {
		if errors.Is(err, e) {
			return storage.Permanent(err)
		}
	}
	return err
}

// fsErr wraps a file system error with what was being done: a missing file or
// folder matches storage.ErrNotFound, anything else is classified.
func fsErr(what string, err error) error {
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("%s: %w", what, storage.ErrNotFound)
	}
	return fmt.Errorf("%s: %w", what, classify(err))
}

func randomSuffix() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand failed: %v", err)) // never fails on Linux
	}
	return hex.EncodeToString(b[:])
}

// backupDir validates a backup handle and returns its folder.
func (s *Store) backupDir(b storage.BackupHandle) (string, error) {
	h := string(b)
	if err := storage.ValidateHandle(h); err != nil {
		return "", err
	}
	if strings.Contains(h, "/") || h == metadataDir || strings.HasPrefix(h, ".") {
		return "", fmt.Errorf("%w: backup handle %q", storage.ErrInvalidName, h)
	}
	return filepath.Join(s.root, h), nil
}

// filePath validates a file handle and returns its path.
func (s *Store) filePath(h storage.FileHandle) (string, error) {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return "", err
	}
	segs := strings.Split(string(h), "/")
	if len(segs) != 2 {
		return "", fmt.Errorf("%w: file handle %q: want folder/name", storage.ErrInvalidName, h)
	}
	for _, seg := range segs {
		if strings.HasPrefix(seg, ".") {
			return "", fmt.Errorf("%w: file handle %q: hidden segment", storage.ErrInvalidName, h)
		}
	}
	return filepath.Join(s.root, segs[0], segs[1]), nil
}

// CreateBackup creates a new folder named name-<random>.
func (s *Store) CreateBackup(ctx context.Context, name string) (storage.BackupHandle, error) {
	if err := storage.ValidateName(name); err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", err
	}
	for {
		h := name + "-" + randomSuffix()
		err := os.Mkdir(filepath.Join(s.root, h), 0o755)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("create backup folder %s: %w", h, classify(err))
		}
		if err := syncDir(s.root); err != nil {
			return "", fmt.Errorf("create backup folder %s: %w", h, err)
		}
		return storage.BackupHandle(h), nil
	}
}

// Create starts writing name in backup through a temporary file.
func (s *Store) Create(ctx context.Context, backup storage.BackupHandle, name string) (storage.Writer, error) {
	if err := storage.ValidateName(name); err != nil {
		return nil, err
	}
	dir, err := s.backupDir(backup)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		if err == nil || errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("create %s/%s: backup folder: %w", backup, name, storage.ErrNotFound)
		}
		return nil, fmt.Errorf("create %s/%s: %w", backup, name, classify(err))
	}
	return s.newWriter(ctx, dir, name, storage.FileHandle(string(backup)+"/"+name))
}

func (s *Store) newWriter(ctx context.Context, dir, name string, h storage.FileHandle) (*writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(dir, tmpPrefix+name+"-*")
	if err != nil {
		return nil, fmt.Errorf("create temp file for %s: %w", h, classify(err))
	}
	return &writer{ctx: ctx, f: f, dir: dir, final: filepath.Join(dir, name), handle: h}, nil
}

// writer writes a temporary file and links it to its final name on Commit.
type writer struct {
	ctx    context.Context
	handle storage.FileHandle
	dir    string
	final  string

	mu        sync.Mutex
	f         *os.File // nil once closed
	committed bool
	done      bool // committed or aborted or failed
}

func (w *writer) Handle() storage.FileHandle { return w.handle }

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, fmt.Errorf("write %s: writer already finished", w.handle)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.handle, err)
	}
	n, err := w.f.Write(p)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", w.handle, classify(err))
	}
	return n, nil
}

// Commit fsyncs the temporary file, links it to the final name without replacing
// anything, removes the temporary name and fsyncs the folder.
func (w *writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.committed {
		return nil
	}
	if w.done {
		return fmt.Errorf("commit %s: writer already aborted", w.handle)
	}
	if err := w.ctx.Err(); err != nil {
		w.abortLocked()
		return fmt.Errorf("commit %s: %w", w.handle, err)
	}
	tmp := w.f.Name()
	err := w.f.Sync()
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if err != nil {
		w.abortLocked()
		return fmt.Errorf("commit %s: sync: %w", w.handle, classify(err))
	}
	if err := renameNoReplace(tmp, w.final); err != nil {
		w.abortLocked()
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("commit %s: %w", w.handle, storage.ErrAlreadyExists)
		}
		return fmt.Errorf("commit %s: %w", w.handle, classify(err))
	}
	w.done, w.committed = true, true
	if err := syncDir(w.dir); err != nil {
		return fmt.Errorf("commit %s: %w", w.handle, err)
	}
	return nil
}

// Abort removes the temporary file; it is a no-op after Commit.
func (w *writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return nil
	}
	return w.abortLocked()
}

func (w *writer) abortLocked() error {
	w.done = true
	var tmp string
	if w.f != nil {
		tmp = w.f.Name()
		w.f.Close()
		w.f = nil
	} else {
		// Closed during Commit; the temp name is gone or must go.
		return nil
	}
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("abort %s: remove temp file: %w", w.handle, err)
	}
	return nil
}

// renameNoReplace moves tmp to final unless final exists (fs.ErrExist).
func renameNoReplace(tmp, final string) error {
	err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, final, unix.RENAME_NOREPLACE)
	if err == nil {
		return nil
	}
	if !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOSYS) {
		os.Remove(tmp)
		if errors.Is(err, unix.EEXIST) {
			return fs.ErrExist
		}
		return &os.LinkError{Op: "renameat2", Old: tmp, New: final, Err: err}
	}
	// File systems without RENAME_NOREPLACE: link(2) is create-only too.
	err = os.Link(tmp, final)
	os.Remove(tmp)
	return err
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, classify(err))
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", dir, classify(err))
	}
	return nil
}

// Open streams a committed file.
func (s *Store) Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error) {
	p, err := s.filePath(h)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.Open(p)
	if err != nil {
		return nil, fsErr("open "+string(h), err)
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: not a regular file: %w", h, storage.ErrNotFound)
	}
	return &ctxReader{ctx: ctx, f: f}, nil
}

// ctxReader stops reading once its context is done.
type ctxReader struct {
	ctx context.Context
	f   *os.File
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.f.Read(p)
}

func (r *ctxReader) Close() error { return r.f.Close() }

// SaveMetadata writes metadata/<name> create-only.
func (s *Store) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	if err := storage.ValidateName(name); err != nil {
		return "", err
	}
	h := storage.FileHandle(metadataDir + "/" + name)
	w, err := s.newWriter(ctx, filepath.Join(s.root, metadataDir), name, h)
	if err != nil {
		return "", err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return "", err
	}
	if err := w.Commit(); err != nil {
		return "", err
	}
	return h, nil
}

// ListMetadata lists metadata/<name> handles.
func (s *Store) ListMetadata(ctx context.Context) ([]storage.FileHandle, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(filepath.Join(s.root, metadataDir))
	if err != nil {
		return nil, fmt.Errorf("list metadata: %w", classify(err))
	}
	var out []storage.FileHandle
	for _, e := range ents {
		if e.Type().IsRegular() && storage.ValidateName(e.Name()) == nil {
			out = append(out, storage.FileHandle(metadataDir+"/"+e.Name()))
		}
	}
	return out, nil
}

// DeleteMetadata removes a metadata file.
func (s *Store) DeleteMetadata(ctx context.Context, h storage.FileHandle) error {
	p, err := s.filePath(h)
	if err != nil {
		return err
	}
	if !strings.HasPrefix(string(h), metadataDir+"/") {
		return fmt.Errorf("%w: %q is not a metadata handle", storage.ErrInvalidName, h)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete metadata %s: %w", h, storage.ErrNotFound)
		}
		return fmt.Errorf("delete metadata %s: %w", h, classify(err))
	}
	return syncDir(filepath.Dir(p))
}

// ListBackups lists backup folders; ModTime is the newest of the folder's and its
// files' modification times, Size the sum of committed file sizes.
func (s *Store) ListBackups(ctx context.Context) ([]storage.BackupInfo, error) {
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", classify(err))
	}
	var out []storage.BackupInfo
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !e.IsDir() || e.Name() == metadataDir || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		dir := filepath.Join(s.root, e.Name())
		fi, err := os.Stat(dir)
		if err != nil {
			continue // deleted meanwhile
		}
		info := storage.BackupInfo{Handle: storage.BackupHandle(e.Name()), ModTime: fi.ModTime()}
		files, _ := os.ReadDir(dir)
		for _, f := range files {
			if strings.HasPrefix(f.Name(), ".") || !f.Type().IsRegular() {
				continue
			}
			if ffi, err := f.Info(); err == nil {
				info.Size += ffi.Size()
				if ffi.ModTime().After(info.ModTime) {
					info.ModTime = ffi.ModTime()
				}
			}
		}
		out = append(out, info)
	}
	return out, nil
}

// ListFiles lists the committed files of a backup folder; temporary files (hidden
// names) and anything that is not a regular file with a valid name are skipped.
func (s *Store) ListFiles(ctx context.Context, b storage.BackupHandle) ([]storage.FileInfo, error) {
	dir, err := s.backupDir(b)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fsErr("list files of "+string(b), err)
	}
	out := []storage.FileInfo{}
	for _, e := range ents {
		if !e.Type().IsRegular() || storage.ValidateName(e.Name()) != nil {
			continue
		}
		fi, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, fmt.Errorf("list files of %s: %s: %w", b, e.Name(), classify(err))
		}
		out = append(out, storage.FileInfo{
			Handle:  storage.FileHandle(string(b) + "/" + e.Name()),
			Size:    fi.Size(),
			ModTime: fi.ModTime(),
		})
	}
	return out, nil // os.ReadDir sorts by name, so by handle
}

// DeleteBackup renames the folder out of sight, then removes it.
func (s *Store) DeleteBackup(ctx context.Context, h storage.BackupHandle) error {
	dir, err := s.backupDir(h)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	gone := filepath.Join(s.root, delPrefix+string(h)+"-"+randomSuffix())
	if err := os.Rename(dir, gone); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("delete backup %s: %w", h, storage.ErrNotFound)
		}
		return fmt.Errorf("delete backup %s: %w", h, classify(err))
	}
	if err := os.RemoveAll(gone); err != nil {
		return fmt.Errorf("delete backup %s: %w", h, classify(err))
	}
	return syncDir(s.root)
}

// AbortStaleUploads removes temporary files (and half-deleted folders) not modified
// for olderThan.
func (s *Store) AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := time.Now().Add(-olderThan)
	ents, err := os.ReadDir(s.root)
	if err != nil {
		return 0, fmt.Errorf("sweep temp files: %w", classify(err))
	}
	removed := 0
	for _, e := range ents {
		if err := ctx.Err(); err != nil {
			return removed, err
		}
		p := filepath.Join(s.root, e.Name())
		if e.IsDir() && strings.HasPrefix(e.Name(), delPrefix) {
			if fi, err := e.Info(); err == nil && !fi.ModTime().After(cutoff) {
				if err := os.RemoveAll(p); err != nil {
					return removed, fmt.Errorf("sweep %s: %w", p, classify(err))
				}
			}
			continue
		}
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		files, err := os.ReadDir(p)
		if err != nil {
			continue
		}
		for _, f := range files {
			if !strings.HasPrefix(f.Name(), tmpPrefix) {
				continue
			}
			fi, err := f.Info()
			if err != nil || fi.ModTime().After(cutoff) {
				continue
			}
			if err := os.Remove(filepath.Join(p, f.Name())); err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return removed, fmt.Errorf("sweep %s: %w", f.Name(), classify(err))
			}
			removed++
		}
	}
	return removed, nil
}

// Close releases nothing; the store holds no resources.
func (s *Store) Close() error { return nil }

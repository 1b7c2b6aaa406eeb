// Package storage defines the contract every backup storage backend implements:
// uniquely named backup folders, files that become visible only when committed,
// create-only metadata files, and what garbage collection needs.
//
// The contract (checked for every backend by the conformance suite in
// storage/storagetest):
//
//   - CreateBackup returns a folder whose name carries a random suffix and is never
//     reused, so a retried backup never writes over an earlier attempt.
//
//   - Create returns a Writer. Its bytes become visible under the final name only when
//     Commit returns nil. Abort, a cancelled context, a write error or a panic in the
//     producing code leave nothing visible under the final name. The pattern is
//
//     w, err := st.Create(ctx, backup, "chunk-0")
//     if err != nil { ... }
//     defer w.Abort()
//     ... write ...
//     if err := w.Commit(); err != nil { ... }
//
//     and Abort after Commit is a no-op.
//
//   - SaveMetadata is create-only: it fails with ErrAlreadyExists if the name exists and
//     never replaces an existing file.
//
//   - ListFiles lists the committed files of one folder (never temporary files,
//     aborted or in-flight uploads, or another folder's files); its handles open with
//     Open. Callers find an earlier attempt's files this way instead of composing
//     handles. A backend that cannot list (a command config without list_files)
//     reports ErrNotSupported, and callers fall back.
//
//   - File handles are opaque strings chosen by the backend; handles coming back from
//     storage or manifests are validated with ValidateHandle before use.
//
//   - A create-only write (SaveMetadata, Commit) can have an ambiguous outcome: it may
//     commit and still report an error, or report ErrAlreadyExists for a retry of its
//     own committed attempt. Callers then read back what is there and decide: the
//     same bytes (or, for a lease, the same holder) are theirs and the write
//     succeeded; anything else is a real conflict; nothing there means the write did
//     not happen; an unreadable outcome is transient. ConfirmMetadata and
//     ConfirmFile implement the rule.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"
)

// BackupHandle identifies a backup folder in a store. It is opaque to callers.
type BackupHandle string

// FileHandle identifies a committed file in a store. It is opaque to callers but is
// always a relative, slash-separated path without empty, "." or ".." segments.
type FileHandle string

// Writer streams one file into a store. The file is visible under its final name only
// after Commit returns nil.
type Writer interface {
	io.Writer
	// Handle returns the handle the file will have once committed.
	Handle() FileHandle
	// Commit makes the written bytes visible under the final name, atomically.
	Commit() error
	// Abort discards everything written; it is a no-op after a successful Commit and
	// safe to call more than once.
	Abort() error
}

// BackupInfo describes a backup folder for garbage collection.
type BackupInfo struct {
	// Handle is the backup folder's handle.
	Handle BackupHandle
	// ModTime is when the folder was created or last written, as the backend knows it.
	ModTime time.Time
	// Size is the total size in bytes of the files in the folder, if known.
	Size int64
}

// FileInfo describes a committed file of a backup folder.
type FileInfo struct {
	// Handle is the file's handle, chosen by the backend; it opens the file with Open.
	Handle FileHandle
	// Size is the file's size in bytes as the backend reports it.
	Size int64
	// ModTime is when the file was committed (its last modification), as the backend
	// knows it; backends that report whole seconds truncate it.
	ModTime time.Time
}

// Store is the backup storage contract.
type Store interface {
	// CreateBackup creates a new, uniquely named backup folder whose name starts with
	// name (which must satisfy ValidateName).
	CreateBackup(ctx context.Context, name string) (BackupHandle, error)
	// Create starts writing the file name (ValidateName) inside backup.
	Create(ctx context.Context, backup BackupHandle, name string) (Writer, error)
	// Open streams a committed file. A missing file yields an error matching ErrNotFound.
	Open(ctx context.Context, h FileHandle) (io.ReadCloser, error)
	// SaveMetadata writes a metadata file create-only. An existing name yields
	// ErrAlreadyExists and the existing file is left intact.
	SaveMetadata(ctx context.Context, name string, data []byte) (FileHandle, error)
	// ListMetadata lists the handles of all metadata files.
	ListMetadata(ctx context.Context) ([]FileHandle, error)
	// DeleteMetadata removes a metadata file (used by compaction).
	DeleteMetadata(ctx context.Context, h FileHandle) error
	// ListBackups lists backup folders with their age, for garbage collection.
	ListBackups(ctx context.Context) ([]BackupInfo, error)
	// ListFiles lists the committed files of backup, sorted by handle: never temporary
	// files, aborted or in-flight uploads, metadata files or another folder's files.
	// An existing empty folder yields an empty list, a folder that does not exist an
	// error matching ErrNotFound, and a backend that cannot list files (a command
	// config without list_files) an error matching ErrNotSupported.
	ListFiles(ctx context.Context, backup BackupHandle) ([]FileInfo, error)
	// DeleteBackup removes a backup folder and everything in it.
	DeleteBackup(ctx context.Context, h BackupHandle) error
	// AbortStaleUploads aborts incomplete uploads (multipart or block uploads, temporary
	// files) started more than olderThan ago, and reports how many it removed.
	AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error)
	// Close releases the store's resources.
	Close() error
}

// ErrNotFound reports that a file or folder does not exist.
var ErrNotFound = errors.New("not found")

// ErrStoreNotFound reports that the store itself does not exist: a local directory
// without its metadata folder, a missing bucket or container. Readers (list, verify,
// restore, audit, gc, compact, storage get and ls) never create a store and fail
// with it; only writers create a local store. It is permanent: errors matching it
// also match ErrPermanent. The command line exits with status 10 for it.
var ErrStoreNotFound = errors.New("store does not exist")

// StoreNotFoundError is the error of a store that does not exist; it matches
// ErrStoreNotFound and ErrPermanent.
type StoreNotFoundError struct {
	// Store names the store: its URL, directory, bucket or container.
	Store string
	// Reason, if set, says what is missing (e.g. "no metadata folder").
	Reason string
}

// Error returns "store does not exist: STORE", with the reason in parentheses.
func (e *StoreNotFoundError) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%v: %s (%s)", ErrStoreNotFound, e.Store, e.Reason)
	}
	return fmt.Sprintf("%v: %s", ErrStoreNotFound, e.Store)
}

// Is reports whether target is ErrStoreNotFound or ErrPermanent.
func (e *StoreNotFoundError) Is(target error) bool {
	return target == ErrStoreNotFound || target == ErrPermanent
}

// ErrAlreadyExists reports that a create-only write found the name taken.
var ErrAlreadyExists = errors.New("already exists")

// ErrNotSupported reports an optional operation the backend cannot perform as
// configured (a command config without the optional command). It is not permanent:
// callers fall back to what works without the operation.
var ErrNotSupported = errors.New("operation not supported by this store")

// ErrInvalidName reports a name or handle that fails validation.
var ErrInvalidName = errors.New("invalid name")

// ErrPermanent marks failures that a retry cannot fix (bad credentials, permission
// denied, disk full, bad configuration). Errors not marked are treated as transient.
var ErrPermanent = errors.New("permanent storage failure")

// Permanent wraps err so that errors.Is(err, ErrPermanent) holds.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrPermanent, err)
}

// IsPermanent reports whether err is a permanent storage failure.
func IsPermanent(err error) bool { return errors.Is(err, ErrPermanent) }

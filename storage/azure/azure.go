// Package azure stores backups in an Azure Blob Storage container through the azblob
// SDK. Files are streamed as staged blocks of bounded memory and made visible by a
// create-only (If-None-Match: *) CommitBlockList, or a single create-only Upload for
// files smaller than one block.
package azure

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/objstore"
)

// DefaultBlockSize is the staged block size (and write buffer size) used when
// Config.BlockSize is zero.
const DefaultBlockSize = 8 << 20

// DefaultConcurrency is the number of block uploads in flight per writer used when
// Config.Concurrency is zero.
const DefaultConcurrency = 2

// MaxBlockSize is the largest block Azure accepts.
const MaxBlockSize = 4000 << 20

// Config configures a Store.
type Config struct {
	// Prefix is an optional blob name prefix under which the store lives.
	Prefix string
	// BlockSize is the staged block size; files smaller than one block are written
	// with a single Upload. Zero means DefaultBlockSize.
	BlockSize int
	// Concurrency is the number of block uploads in flight per writer. Zero means
	// DefaultConcurrency.
	Concurrency int
}

// Store is a storage.Store in an Azure Blob container.
type Store struct {
	c      *container.Client
	layout objstore.Layout
	block  int
	conc   int
	now    func() time.Time
}

var _ storage.Store = (*Store)(nil)

// New returns a store in the container c points at; the caller owns c.
func New(c *container.Client, cfg Config) (*Store, error) {
	if c == nil {
		return nil, storage.Permanent(errors.New("azure store: container client is required"))
	}
	l, err := objstore.NewLayout(cfg.Prefix)
	if err != nil {
		return nil, storage.Permanent(err)
	}
	block := cfg.BlockSize
	if block == 0 {
		block = DefaultBlockSize
	}
	if block < 1 || block > MaxBlockSize {
		return nil, storage.Permanent(fmt.Errorf("azure store: block size %d out of range 1..%d", block, MaxBlockSize))
	}
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	return &Store{c: c, layout: l, block: block, conc: conc, now: time.Now}, nil
}

// Check verifies that the container exists and is reachable with the configured
// credentials.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.c.GetProperties(ctx, nil); err != nil {
		if bloberror.HasCode(err, bloberror.ContainerNotFound) || errors.Is(mapErr(err), storage.ErrNotFound) {
			return &storage.StoreNotFoundError{Store: s.c.URL(), Reason: "no such container"}
		}
		err = mapErr(err)
		return fmt.Errorf("check container %s: %w", s.c.URL(), err)
	}
	return nil
}

func ifAbsent() *blob.AccessConditions {
	etag := azcore.ETagAny
	return &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfNoneMatch: &etag}}
}

// CreateBackup reserves a new folder name and writes its marker blob create-only.
func (s *Store) CreateBackup(ctx context.Context, name string) (storage.BackupHandle, error) {
	return s.layout.CreateBackup(ctx, name, s.now, s.putIfAbsent)
}

func (s *Store) putIfAbsent(ctx context.Context, key string, data []byte) error {
	_, err := s.c.NewBlockBlobClient(key).Upload(ctx, streaming.NopCloser(bytes.NewReader(data)),
		&blockblob.UploadOptions{AccessConditions: ifAbsent()})
	return mapErr(err)
}

// Create starts a create-only block upload of file name in backup.
func (s *Store) Create(ctx context.Context, backup storage.BackupHandle, name string) (storage.Writer, error) {
	h, err := objstore.FileHandle(backup, name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create %s: %w", h, err)
	}
	id, err := newWriterID()
	if err != nil {
		return nil, err
	}
	key := s.layout.Key(string(h))
	w := &writer{s: s, key: key, bb: s.c.NewBlockBlobClient(key), id: id}
	return objstore.NewWriter(ctx, h, objstore.NewParts(ctx, s.block, s.conc, nil, w.stageBlock), w), nil
}

// Open streams a committed file.
func (s *Store) Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error) {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return nil, err
	}
	out, err := s.c.NewBlobClient(s.layout.Key(string(h))).DownloadStream(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", h, mapErr(err))
	}
	return out.Body, nil
}

// SaveMetadata writes metadata file name create-only.
func (s *Store) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	return s.layout.SaveMetadata(ctx, name, data, s.putIfAbsent)
}

// ListMetadata lists the metadata files; blobs with invalid names are skipped.
func (s *Store) ListMetadata(ctx context.Context) ([]storage.FileHandle, error) {
	var out []storage.FileHandle
	err := s.list(ctx, s.layout.MetadataPrefix(), false, func(name string, _ *container.BlobProperties) {
		h, ok := s.layout.Handle(name)
		if ok && objstore.CheckMetadata(storage.FileHandle(h)) == nil {
			out = append(out, storage.FileHandle(h))
		}
	})
	if err != nil {
		return nil, fmt.Errorf("list metadata: %w", err)
	}
	return out, nil
}

// DeleteMetadata removes a metadata file; a missing file yields ErrNotFound.
func (s *Store) DeleteMetadata(ctx context.Context, h storage.FileHandle) error {
	if err := objstore.CheckMetadata(h); err != nil {
		return err
	}
	if _, err := s.c.NewBlobClient(s.layout.Key(string(h))).Delete(ctx, nil); err != nil {
		return fmt.Errorf("delete metadata %s: %w", h, mapErr(err))
	}
	return nil
}

// ListBackups lists backup folders with their newest blob time and total size.
func (s *Store) ListBackups(ctx context.Context) ([]storage.BackupInfo, error) {
	acc := objstore.NewBackups(s.layout)
	err := s.list(ctx, s.layout.Prefix(), false, func(name string, p *container.BlobProperties) {
		size, mod := blobSizeTime(p)
		acc.Add(name, size, mod)
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	return acc.List(), nil
}

// blobSizeTime returns a listed blob's size and modification time, zero where the
// listing left them out.
func blobSizeTime(p *container.BlobProperties) (size int64, mod time.Time) {
	if p == nil {
		return 0, time.Time{}
	}
	if p.ContentLength != nil {
		size = *p.ContentLength
	}
	if p.LastModified != nil {
		mod = *p.LastModified
	}
	return size, mod
}

// ListFiles lists the committed blobs of a backup folder (blobs holding only
// uncommitted blocks are not listed); a folder with neither its marker nor a file is
// ErrNotFound.
func (s *Store) ListFiles(ctx context.Context, b storage.BackupHandle) ([]storage.FileInfo, error) {
	acc, err := s.layout.NewFiles(b)
	if err != nil {
		return nil, err
	}
	err = s.list(ctx, s.layout.BackupPrefix(b), false, func(name string, p *container.BlobProperties) {
		size, mod := blobSizeTime(p)
		acc.Add(name, size, mod)
	})
	if err != nil {
		return nil, fmt.Errorf("list files of %s: %w", b, err)
	}
	return acc.List()
}

// DeleteBackup deletes every blob of a backup folder, the marker last, so an
// interrupted delete leaves the folder listed for the next garbage collection.
func (s *Store) DeleteBackup(ctx context.Context, h storage.BackupHandle) error {
	if err := objstore.CheckBackup(h); err != nil {
		return err
	}
	marker := s.layout.BackupPrefix(h) + objstore.MarkerName
	var keys []string
	hasMarker := false
	err := s.list(ctx, s.layout.BackupPrefix(h), false, func(name string, _ *container.BlobProperties) {
		if name == marker {
			hasMarker = true
		} else {
			keys = append(keys, name)
		}
	})
	if err != nil {
		return fmt.Errorf("delete backup %s: %w", h, err)
	}
	if hasMarker {
		keys = append(keys, marker)
	}
	for _, k := range keys {
		if _, err := s.c.NewBlobClient(k).Delete(ctx, nil); err != nil && !bloberror.HasCode(err, bloberror.BlobNotFound) {
			return fmt.Errorf("delete backup %s: blob %s: %w", h, k, mapErr(err))
		}
	}
	return nil
}

// AbortStaleUploads removes blobs under the store prefix that hold only uncommitted
// blocks (an interrupted writer's) and were last touched more than olderThan ago.
// Azure itself discards uncommitted blocks after about a week; where the service
// refuses to delete a blob that has no committed content, it is left to that.
func (s *Store) AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := s.now().Add(-olderThan)
	committed := map[string]bool{}
	if err := s.list(ctx, s.layout.Prefix(), false, func(name string, _ *container.BlobProperties) {
		committed[name] = true
	}); err != nil {
		return 0, fmt.Errorf("list blobs: %w", err)
	}
	var stale []string
	if err := s.list(ctx, s.layout.Prefix(), true, func(name string, p *container.BlobProperties) {
		if committed[name] {
			return
		}
		if p != nil && p.LastModified != nil && !p.LastModified.Before(cutoff) {
			return
		}
		stale = append(stale, name)
	}); err != nil {
		return 0, fmt.Errorf("list uncommitted blobs: %w", err)
	}
	n := 0
	for _, name := range stale {
		removed, err := s.discardUncommitted(ctx, name)
		if err != nil {
			return n, fmt.Errorf("discard uncommitted blob %s: %w", name, err)
		}
		if removed {
			n++
		}
	}
	return n, nil
}

// neverModified is a time before any blob was written: a delete conditioned on
// If-Unmodified-Since it fails (412) for every committed blob, while a blob that has
// only uncommitted blocks counts as nonexistent, for which the condition holds.
var neverModified = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)

// discardUncommitted deletes a blob that has no committed content, never a committed
// one (such as the blob of a concurrent writer that won the create-only race). The
// delete is conditioned on If-Unmodified-Since 2000-01-01, which every committed blob
// fails; If-None-Match: * would not do, Azurite ignores it on delete.
func (s *Store) discardUncommitted(ctx context.Context, key string) (bool, error) {
	since := neverModified
	_, err := s.c.NewBlobClient(key).Delete(ctx, &blob.DeleteOptions{AccessConditions: &blob.AccessConditions{
		ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfUnmodifiedSince: &since},
	}})
	switch {
	case err == nil:
		return true, nil
	case bloberror.HasCode(err, bloberror.BlobNotFound, bloberror.ConditionNotMet):
		// Nothing deletable (the service keeps uncommitted blocks until they expire),
		// or the blob was committed meanwhile: either way leave it.
		return false, nil
	default:
		return false, mapErr(err)
	}
}

// Close releases nothing: the client is owned by the caller.
func (s *Store) Close() error { return nil }

func (s *Store) list(ctx context.Context, prefix string, uncommitted bool, fn func(string, *container.BlobProperties)) error {
	opts := &container.ListBlobsFlatOptions{}
	if prefix != "" {
		opts.Prefix = &prefix
	}
	if uncommitted {
		opts.Include = container.ListBlobsInclude{UncommittedBlobs: true}
	}
	p := s.c.NewListBlobsFlatPager(opts)
	for p.More() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return mapErr(err)
		}
		if page.Segment == nil {
			continue
		}
		for _, it := range page.Segment.BlobItems {
			if it == nil || it.Name == nil {
				continue
			}
			fn(*it.Name, it.Properties)
		}
	}
	return nil
}

// mapErr maps Azure errors onto the storage error kinds.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	switch {
	case bloberror.HasCode(err, bloberror.BlobNotFound):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case bloberror.HasCode(err, bloberror.BlobAlreadyExists, bloberror.ConditionNotMet):
		return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
	case bloberror.HasCode(err, bloberror.ContainerNotFound, bloberror.AuthenticationFailed,
		bloberror.AuthorizationFailure, bloberror.AuthorizationPermissionMismatch, bloberror.InsufficientAccountPermissions,
		bloberror.AccountIsDisabled, bloberror.InvalidResourceName):
		return storage.Permanent(err)
	}
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		switch re.StatusCode {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		case http.StatusPreconditionFailed:
			return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return storage.Permanent(err)
		}
	}
	return err
}

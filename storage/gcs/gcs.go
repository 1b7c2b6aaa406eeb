// Package gcs stores backups in a Google Cloud Storage bucket through
// cloud.google.com/go/storage. Files are streamed with resumable uploads of bounded
// memory (Writer.ChunkSize) under the precondition ifGenerationMatch=0, so a write
// never replaces an existing object. An aborted writer cancels the upload's context
// before closing it: a GCS Writer closed with a live context commits what it has.
package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	gcs "cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/objstore"
)

// DefaultChunkSize is the resumable upload chunk size (and write buffer size) used
// when Config.ChunkSize is zero.
const DefaultChunkSize = 8 << 20

// Config configures a Store.
type Config struct {
	// Bucket is the bucket name.
	Bucket string
	// Prefix is an optional object name prefix under which the store lives.
	Prefix string
	// ChunkSize is the resumable upload chunk size, a multiple of 256 KiB; files
	// smaller than one chunk are sent in a single request. Zero means
	// DefaultChunkSize.
	ChunkSize int
}

// Store is a storage.Store in a GCS bucket.
type Store struct {
	client *gcs.Client
	bucket *gcs.BucketHandle
	name   string
	layout objstore.Layout
	chunk  int
	now    func() time.Time
}

var _ storage.Store = (*Store)(nil)

// New returns a store in cfg.Bucket reached through client, which the caller owns.
func New(client *gcs.Client, cfg Config) (*Store, error) {
	if client == nil || cfg.Bucket == "" {
		return nil, storage.Permanent(errors.New("gcs store: client and bucket are required"))
	}
	l, err := objstore.NewLayout(cfg.Prefix)
	if err != nil {
		return nil, storage.Permanent(err)
	}
	chunk := cfg.ChunkSize
	if chunk == 0 {
		chunk = DefaultChunkSize
	}
	if chunk < 0 || chunk%(256<<10) != 0 {
		return nil, storage.Permanent(fmt.Errorf("gcs store: chunk size %d is not a positive multiple of 256 KiB", chunk))
	}
	return &Store{client: client, bucket: client.Bucket(cfg.Bucket), name: cfg.Bucket, layout: l, chunk: chunk, now: time.Now}, nil
}

// Check verifies that the bucket exists and is reachable with the configured
// credentials.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.bucket.Attrs(ctx); err != nil {
		if errors.Is(err, gcs.ErrBucketNotExist) || errors.Is(mapErr(err), storage.ErrNotFound) {
			return &storage.StoreNotFoundError{Store: "gs://" + s.name, Reason: "no such bucket"}
		}
		err = mapErr(err)
		return fmt.Errorf("check bucket %s: %w", s.name, err)
	}
	return nil
}

// CreateBackup reserves a new folder name and writes its marker object create-only.
func (s *Store) CreateBackup(ctx context.Context, name string) (storage.BackupHandle, error) {
	return s.layout.CreateBackup(ctx, name, s.now, s.putIfAbsent)
}

// putIfAbsent writes a small object in one request, create-only.
func (s *Store) putIfAbsent(ctx context.Context, key string, data []byte) error {
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w := s.bucket.Object(key).If(gcs.Conditions{DoesNotExist: true}).NewWriter(wctx)
	w.ChunkSize = 0 // one request
	if _, err := w.Write(data); err != nil {
		cancel()
		_ = w.Close()
		return mapErr(err)
	}
	if err := ctx.Err(); err != nil {
		cancel()
		_ = w.Close()
		return err
	}
	return mapErr(w.Close())
}

// Create starts a create-only resumable upload of file name in backup.
func (s *Store) Create(ctx context.Context, backup storage.BackupHandle, name string) (storage.Writer, error) {
	h, err := objstore.FileHandle(backup, name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create %s: %w", h, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	gw := s.bucket.Object(s.layout.Key(string(h))).If(gcs.Conditions{DoesNotExist: true}).NewWriter(wctx)
	gw.ChunkSize = s.chunk
	return &writer{ctx: ctx, cancel: cancel, w: gw, handle: h}, nil
}

// Open streams a committed file.
func (s *Store) Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error) {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return nil, err
	}
	r, err := s.bucket.Object(s.layout.Key(string(h))).NewReader(ctx)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", h, mapErr(err))
	}
	return r, nil
}

// SaveMetadata writes metadata file name create-only.
func (s *Store) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	return s.layout.SaveMetadata(ctx, name, data, s.putIfAbsent)
}

// ListMetadata lists the metadata files; objects with invalid names are skipped.
func (s *Store) ListMetadata(ctx context.Context) ([]storage.FileHandle, error) {
	var out []storage.FileHandle
	err := s.list(ctx, s.layout.MetadataPrefix(), func(a *gcs.ObjectAttrs) {
		h, ok := s.layout.Handle(a.Name)
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
	if err := s.bucket.Object(s.layout.Key(string(h))).Delete(ctx); err != nil {
		return fmt.Errorf("delete metadata %s: %w", h, mapErr(err))
	}
	return nil
}

// ListBackups lists backup folders with their newest object time and total size.
func (s *Store) ListBackups(ctx context.Context) ([]storage.BackupInfo, error) {
	acc := objstore.NewBackups(s.layout)
	err := s.list(ctx, s.layout.Prefix(), func(a *gcs.ObjectAttrs) {
		acc.Add(a.Name, a.Size, a.Updated)
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	return acc.List(), nil
}

// ListFiles lists the objects of a backup folder (an unfinished resumable upload is
// not an object); a folder with neither its marker nor a file is ErrNotFound.
func (s *Store) ListFiles(ctx context.Context, b storage.BackupHandle) ([]storage.FileInfo, error) {
	acc, err := s.layout.NewFiles(b)
	if err != nil {
		return nil, err
	}
	err = s.list(ctx, s.layout.BackupPrefix(b), func(a *gcs.ObjectAttrs) {
		acc.Add(a.Name, a.Size, a.Updated)
	})
	if err != nil {
		return nil, fmt.Errorf("list files of %s: %w", b, err)
	}
	return acc.List()
}

// DeleteBackup deletes every object of a backup folder, the marker last, so an
// interrupted delete leaves the folder listed for the next garbage collection.
func (s *Store) DeleteBackup(ctx context.Context, h storage.BackupHandle) error {
	if err := objstore.CheckBackup(h); err != nil {
		return err
	}
	marker := s.layout.BackupPrefix(h) + objstore.MarkerName
	var keys []string
	hasMarker := false
	err := s.list(ctx, s.layout.BackupPrefix(h), func(a *gcs.ObjectAttrs) {
		if a.Name == marker {
			hasMarker = true
		} else {
			keys = append(keys, a.Name)
		}
	})
	if err != nil {
		return fmt.Errorf("delete backup %s: %w", h, err)
	}
	if hasMarker {
		keys = append(keys, marker)
	}
	for _, k := range keys {
		if err := s.bucket.Object(k).Delete(ctx); err != nil && !errors.Is(err, gcs.ErrObjectNotExist) {
			return fmt.Errorf("delete backup %s: object %s: %w", h, k, mapErr(err))
		}
	}
	return nil
}

// AbortStaleUploads returns 0: GCS offers no way to list incomplete resumable
// uploads. They are invisible, hold no object, and expire on their own after a week;
// writers of this package also cancel theirs when aborted.
func (s *Store) AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	return 0, ctx.Err()
}

// Close releases nothing: the client is owned by the caller.
func (s *Store) Close() error { return nil }

func (s *Store) list(ctx context.Context, prefix string, fn func(*gcs.ObjectAttrs)) error {
	q := &gcs.Query{Prefix: prefix}
	if err := q.SetAttrSelection([]string{"Name", "Size", "Updated"}); err != nil {
		return err
	}
	it := s.bucket.Objects(ctx, q)
	for {
		a, err := it.Next()
		if errors.Is(err, iterator.Done) {
			return nil
		}
		if err != nil {
			return mapErr(err)
		}
		fn(a)
	}
}

// mapErr maps GCS errors onto the storage error kinds.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gcs.ErrObjectNotExist) {
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	}
	if errors.Is(err, gcs.ErrBucketNotExist) {
		return storage.Permanent(err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case http.StatusNotFound:
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		case http.StatusPreconditionFailed:
			return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
		case http.StatusUnauthorized, http.StatusForbidden, http.StatusBadRequest:
			return storage.Permanent(err)
		}
	}
	return err
}

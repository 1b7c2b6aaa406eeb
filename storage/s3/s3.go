// Package s3 stores backups in an Amazon S3 (or S3-compatible) bucket through
// aws-sdk-go-v2. Files are streamed with multipart uploads of bounded memory and
// made visible by a create-only (If-None-Match: *) PutObject or
// CompleteMultipartUpload; an aborted or failed writer aborts its multipart upload
// on a fresh, short-deadline context.
package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/objstore"
)

// DefaultPartSize is the multipart part size (and write buffer size) used when
// Config.PartSize is zero.
const DefaultPartSize = 8 << 20

// MinPartSize is the smallest part size S3 accepts for all but the last part.
const MinPartSize = 5 << 20

// DefaultConcurrency is the number of part uploads in flight per writer used when
// Config.Concurrency is zero.
const DefaultConcurrency = 2

// Config configures a Store.
type Config struct {
	// Bucket is the bucket name.
	Bucket string
	// Prefix is an optional key prefix ("backups/node1") under which the store lives.
	Prefix string
	// PartSize is the multipart part size; files smaller than one part are written
	// with a single PutObject. Zero means DefaultPartSize.
	PartSize int
	// Concurrency is the number of part uploads in flight per writer. Zero means
	// DefaultConcurrency.
	Concurrency int
	// AllowSmallParts permits a PartSize below MinPartSize, for tests against
	// emulators that do not enforce the minimum.
	AllowSmallParts bool
}

// Store is a storage.Store in an S3 bucket.
type Store struct {
	client *s3.Client
	bucket string
	layout objstore.Layout
	part   int
	conc   int
	now    func() time.Time
}

var _ storage.Store = (*Store)(nil)

// New returns a store in cfg.Bucket reached through client.
func New(client *s3.Client, cfg Config) (*Store, error) {
	if client == nil || cfg.Bucket == "" {
		return nil, storage.Permanent(errors.New("s3 store: client and bucket are required"))
	}
	l, err := objstore.NewLayout(cfg.Prefix)
	if err != nil {
		return nil, storage.Permanent(err)
	}
	part := cfg.PartSize
	if part == 0 {
		part = DefaultPartSize
	}
	if part < MinPartSize && !cfg.AllowSmallParts || part < 1 {
		return nil, storage.Permanent(fmt.Errorf("s3 store: part size %d is below the S3 minimum %d", part, MinPartSize))
	}
	conc := cfg.Concurrency
	if conc <= 0 {
		conc = DefaultConcurrency
	}
	return &Store{client: client, bucket: cfg.Bucket, layout: l, part: part, conc: conc, now: time.Now}, nil
}

// Check verifies that the bucket exists and is reachable with the configured
// credentials.
func (s *Store) Check(ctx context.Context) error {
	if _, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &s.bucket}); err != nil {
		err = mapErr(err)
		if errors.Is(err, storage.ErrNotFound) {
			return &storage.StoreNotFoundError{Store: "s3://" + s.bucket, Reason: "no such bucket"}
		}
		return fmt.Errorf("check bucket %s: %w", s.bucket, err)
	}
	return nil
}

// CreateBackup reserves a new folder name and writes its marker object create-only.
func (s *Store) CreateBackup(ctx context.Context, name string) (storage.BackupHandle, error) {
	return s.layout.CreateBackup(ctx, name, s.now, s.putIfAbsent)
}

func (s *Store) putIfAbsent(ctx context.Context, key string, data []byte) error {
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:        &s.bucket,
		Key:           &key,
		Body:          bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
		IfNoneMatch:   aws.String("*"),
	})
	return mapErr(err)
}

// Create starts a create-only upload of file name in backup.
func (s *Store) Create(ctx context.Context, backup storage.BackupHandle, name string) (storage.Writer, error) {
	h, err := objstore.FileHandle(backup, name)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("create %s: %w", h, err)
	}
	u := &upload{s: s, key: s.layout.Key(string(h))}
	return objstore.NewWriter(ctx, h, objstore.NewParts(ctx, s.part, s.conc, u.start, u.uploadPart), u), nil
}

// Open streams a committed file.
func (s *Store) Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error) {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return nil, err
	}
	key := s.layout.Key(string(h))
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &key})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", h, mapErr(err))
	}
	return out.Body, nil
}

// SaveMetadata writes metadata file name create-only.
func (s *Store) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	return s.layout.SaveMetadata(ctx, name, data, s.putIfAbsent)
}

// ListMetadata lists the metadata files; objects with invalid names are skipped.
func (s *Store) ListMetadata(ctx context.Context) ([]storage.FileHandle, error) {
	var out []storage.FileHandle
	err := s.list(ctx, s.layout.MetadataPrefix(), func(o types.Object) {
		h, ok := s.layout.Handle(aws.ToString(o.Key))
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
	key := s.layout.Key(string(h))
	if _, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		return fmt.Errorf("delete metadata %s: %w", h, mapErr(err))
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.bucket, Key: &key}); err != nil {
		return fmt.Errorf("delete metadata %s: %w", h, mapErr(err))
	}
	return nil
}

// ListBackups lists backup folders with their newest object time and total size.
func (s *Store) ListBackups(ctx context.Context) ([]storage.BackupInfo, error) {
	acc := objstore.NewBackups(s.layout)
	err := s.list(ctx, s.layout.Prefix(), func(o types.Object) {
		acc.Add(aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToTime(o.LastModified))
	})
	if err != nil {
		return nil, fmt.Errorf("list backups: %w", err)
	}
	return acc.List(), nil
}

// ListFiles lists the committed objects of a backup folder (incomplete multipart
// uploads are not objects); a folder with neither its marker nor a file is
// ErrNotFound.
func (s *Store) ListFiles(ctx context.Context, b storage.BackupHandle) ([]storage.FileInfo, error) {
	acc, err := s.layout.NewFiles(b)
	if err != nil {
		return nil, err
	}
	err = s.list(ctx, s.layout.BackupPrefix(b), func(o types.Object) {
		acc.Add(aws.ToString(o.Key), aws.ToInt64(o.Size), aws.ToTime(o.LastModified))
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
	var keys, markers []string
	err := s.list(ctx, s.layout.BackupPrefix(h), func(o types.Object) {
		k := aws.ToString(o.Key)
		if k == s.layout.BackupPrefix(h)+objstore.MarkerName {
			markers = append(markers, k)
		} else {
			keys = append(keys, k)
		}
	})
	if err != nil {
		return fmt.Errorf("delete backup %s: %w", h, err)
	}
	for _, batch := range [][]string{keys, markers} {
		for len(batch) > 0 {
			n := min(len(batch), 1000)
			if err := s.deleteKeys(ctx, batch[:n]); err != nil {
				return fmt.Errorf("delete backup %s: %w", h, err)
			}
			batch = batch[n:]
		}
	}
	return nil
}

func (s *Store) deleteKeys(ctx context.Context, keys []string) error {
	ids := make([]types.ObjectIdentifier, len(keys))
	for i := range keys {
		ids[i] = types.ObjectIdentifier{Key: &keys[i]}
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: &s.bucket,
		Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
	})
	if err != nil {
		return mapErr(err)
	}
	for _, e := range out.Errors {
		if aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		return fmt.Errorf("delete %s: %s: %s", aws.ToString(e.Key), aws.ToString(e.Code), aws.ToString(e.Message))
	}
	return nil
}

// AbortStaleUploads aborts multipart uploads under the store prefix initiated more
// than olderThan ago.
func (s *Store) AbortStaleUploads(ctx context.Context, olderThan time.Duration) (int, error) {
	cutoff := s.now().Add(-olderThan)
	prefix := s.layout.Prefix()
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	n := 0
	for {
		out, err := s.client.ListMultipartUploads(ctx, in)
		if err != nil {
			if isCode(err, "NoSuchUpload") {
				// gofakes3 answers 404 NoSuchUpload when the bucket has no uploads.
				return n, nil
			}
			return n, fmt.Errorf("list multipart uploads: %w", mapErr(err))
		}
		for _, u := range out.Uploads {
			if u.Initiated == nil || !u.Initiated.Before(cutoff) {
				continue
			}
			_, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: &s.bucket, Key: u.Key, UploadId: u.UploadId,
			})
			if err != nil && !isCode(err, "NoSuchUpload") {
				return n, fmt.Errorf("abort multipart upload of %s: %w", aws.ToString(u.Key), mapErr(err))
			}
			if err == nil {
				n++
			}
		}
		if !aws.ToBool(out.IsTruncated) {
			return n, nil
		}
		in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
	}
}

// Close releases nothing: the client is owned by the caller.
func (s *Store) Close() error { return nil }

func (s *Store) list(ctx context.Context, prefix string, fn func(types.Object)) error {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket}
	if prefix != "" {
		in.Prefix = &prefix
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return mapErr(err)
		}
		for _, o := range page.Contents {
			fn(o)
		}
	}
	return nil
}

func isCode(err error, code string) bool {
	var ae smithy.APIError
	return errors.As(err, &ae) && ae.ErrorCode() == code
}

// mapErr maps S3 errors onto the storage error kinds.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "NoSuchKey", "NotFound":
			return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
		case "PreconditionFailed", "ConditionalRequestConflict":
			return fmt.Errorf("%w: %w", storage.ErrAlreadyExists, err)
		case "NoSuchBucket", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch",
			"InvalidBucketName", "AllAccessDisabled", "AccountProblem", "InvalidToken", "ExpiredToken":
			return storage.Permanent(err)
		}
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
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

package killcampaign

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// rawObject is one file or object of a store as its backend keeps it, below the
// store's root or prefix.
type rawObject struct {
	// Key is the slash-separated path relative to the store root.
	Key  string
	Size int64
}

// rawStore reads a store underneath the storage contract: every object, temporary
// ones included, so that the check sees what a reader of the bucket or directory
// would see, not only what the backend chooses to list.
type rawStore interface {
	list(ctx context.Context) ([]rawObject, error)
	open(ctx context.Context, key string) (io.ReadCloser, error)
	// openUploads counts incomplete multipart uploads (object stores; 0 for
	// directories).
	openUploads(ctx context.Context) (int, error)
}

// dirStore is a store kept in a local directory (the local backend and the shell
// configurations of this campaign).
type dirStore struct{ root string }

func (d dirStore) list(ctx context.Context) ([]rawObject, error) {
	var out []rawObject
	err := filepath.WalkDir(d.root, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking (a temp file committed or deleted)
			}
			return err
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if e.IsDir() {
			return nil
		}
		info, err := e.Info()
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		rel, err := filepath.Rel(d.root, p)
		if err != nil {
			return err
		}
		out = append(out, rawObject{Key: filepath.ToSlash(rel), Size: info.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", d.root, err)
	}
	return out, nil
}

func (d dirStore) open(_ context.Context, key string) (io.ReadCloser, error) {
	return os.Open(filepath.Join(d.root, filepath.FromSlash(key)))
}

func (d dirStore) openUploads(context.Context) (int, error) { return 0, nil }

// s3Store is a bucket prefix read through the S3 API.
type s3Store struct {
	client *s3.Client
	bucket string
	prefix string // empty or ending in "/"
}

func (s s3Store) list(ctx context.Context) ([]rawObject, error) {
	in := &s3.ListObjectsV2Input{Bucket: &s.bucket}
	if s.prefix != "" {
		in.Prefix = &s.prefix
	}
	var out []rawObject
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list s3://%s/%s: %w", s.bucket, s.prefix, err)
		}
		for _, o := range page.Contents {
			if o.Key == nil {
				continue
			}
			var size int64
			if o.Size != nil {
				size = *o.Size
			}
			out = append(out, rawObject{Key: strings.TrimPrefix(*o.Key, s.prefix), Size: size})
		}
	}
	return out, nil
}

func (s s3Store) open(ctx context.Context, key string) (io.ReadCloser, error) {
	k := s.prefix + key
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &s.bucket, Key: &k})
	if err != nil {
		return nil, fmt.Errorf("get s3://%s/%s: %w", s.bucket, k, err)
	}
	return out.Body, nil
}

func (s s3Store) openUploads(ctx context.Context) (int, error) {
	in := &s3.ListMultipartUploadsInput{Bucket: &s.bucket}
	if s.prefix != "" {
		in.Prefix = &s.prefix
	}
	out, err := s.client.ListMultipartUploads(ctx, in)
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
			return 0, nil // gofakes3 answers 404 when there are none
		}
		return 0, fmt.Errorf("list multipart uploads: %w", err)
	}
	return len(out.Uploads), nil
}

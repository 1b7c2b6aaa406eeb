package s3

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/objstore"
)

type state int

const (
	open state = iota
	committed
	aborted
)

// errClosed reports a write to a writer that was committed or aborted.
var errClosed = errors.New("writer is closed")

// writer streams one object: a single conditional PutObject at Commit for files
// smaller than one part, a multipart upload otherwise.
type writer struct {
	s      *Store
	ctx    context.Context
	handle storage.FileHandle
	key    string
	parts  *objstore.Parts

	mu       sync.Mutex
	state    state
	uploadID string // set by startUpload on the writing goroutine
	werr     error  // the first Write error: such a writer never commits
}

func (w *writer) Handle() storage.FileHandle { return w.handle }

func (w *writer) startUpload(ctx context.Context) error {
	out, err := w.s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &w.s.bucket, Key: &w.key})
	if err != nil {
		return fmt.Errorf("start multipart upload: %w", mapErr(err))
	}
	w.uploadID = aws.ToString(out.UploadId)
	return nil
}

func (w *writer) uploadPart(ctx context.Context, num int, data []byte) (string, error) {
	out, err := w.s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &w.s.bucket, Key: &w.key, UploadId: &w.uploadID,
		PartNumber: aws.Int32(int32(num)), Body: bytes.NewReader(data), ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return "", mapErr(err)
	}
	return aws.ToString(out.ETag), nil
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != open {
		return 0, fmt.Errorf("write %s: %w", w.handle, errClosed)
	}
	if w.werr != nil {
		return 0, w.werr
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.handle, err)
	}
	n, err := w.parts.Write(p)
	if err != nil {
		w.werr = fmt.Errorf("write %s: %w", w.handle, err)
		return n, w.werr
	}
	return n, nil
}

func (w *writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case committed:
		return nil
	case aborted:
		return fmt.Errorf("commit %s: %w", w.handle, errClosed)
	}
	if err := w.commit(); err != nil {
		if aerr := w.abortLocked(); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return fmt.Errorf("commit %s: %w", w.handle, err)
	}
	w.state = committed
	w.parts.Stop(objstore.AbortTimeout)
	return nil
}

func (w *writer) commit() error {
	if err := cmp.Or(w.ctx.Err(), w.werr); err != nil {
		return err
	}
	if !w.parts.Started() {
		data := w.parts.Buffered()
		return w.s.putIfAbsent(w.ctx, w.key, data)
	}
	if err := w.parts.Flush(); err != nil {
		return err
	}
	etags, err := w.parts.Wait()
	if err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	done := make([]types.CompletedPart, len(etags))
	for i := range etags {
		done[i] = types.CompletedPart{ETag: &etags[i], PartNumber: aws.Int32(int32(i + 1))}
	}
	_, err = w.s.client.CompleteMultipartUpload(w.ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &w.s.bucket, Key: &w.key, UploadId: &w.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		IfNoneMatch:     aws.String("*"),
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", mapErr(err))
	}
	w.uploadID = "" // completed: nothing left to abort
	return nil
}

func (w *writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != open {
		return nil
	}
	if err := w.abortLocked(); err != nil {
		return fmt.Errorf("abort %s: %w", w.handle, err)
	}
	return nil
}

// abortLocked stops the part uploads and aborts the multipart upload on a fresh,
// short-deadline context.
func (w *writer) abortLocked() error {
	w.state = aborted
	w.parts.Stop(objstore.AbortTimeout)
	if w.uploadID == "" {
		return nil
	}
	ctx, cancel := objstore.AbortContext(w.ctx)
	defer cancel()
	_, err := w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &w.s.bucket, Key: &w.key, UploadId: &w.uploadID,
	})
	if err != nil && !isCode(err, "NoSuchUpload") {
		return fmt.Errorf("abort multipart upload: %w", mapErr(err))
	}
	w.uploadID = ""
	return nil
}

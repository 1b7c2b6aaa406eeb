package s3

import (
	"bytes"
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// upload is one object being written: a single conditional PutObject at Commit for
// files smaller than one part, a multipart upload otherwise. It implements
// objstore.Upload; objstore.Writer serialises its calls.
type upload struct {
	s        *Store
	key      string
	uploadID string // set by start on the writing goroutine; cleared once completed or aborted
}

func (u *upload) start(ctx context.Context) error {
	out, err := u.s.client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &u.s.bucket, Key: &u.key})
	if err != nil {
		return fmt.Errorf("start multipart upload: %w", mapErr(err))
	}
	u.uploadID = aws.ToString(out.UploadId)
	return nil
}

func (u *upload) uploadPart(ctx context.Context, num int, data []byte) (string, error) {
	out, err := u.s.client.UploadPart(ctx, &s3.UploadPartInput{
		Bucket: &u.s.bucket, Key: &u.key, UploadId: &u.uploadID,
		PartNumber: aws.Int32(int32(num)), Body: bytes.NewReader(data),
		ContentLength: aws.Int64(int64(len(data))),
	})
	if err != nil {
		return "", mapErr(err)
	}
	return aws.ToString(out.ETag), nil
}

// PutIfAbsent writes a small object with one conditional PutObject.
func (u *upload) PutIfAbsent(ctx context.Context, data []byte) error {
	return u.s.putIfAbsent(ctx, u.key, data)
}

// Complete completes the multipart upload create-only (If-None-Match: *).
func (u *upload) Complete(ctx context.Context, etags []string) error {
	done := make([]types.CompletedPart, len(etags))
	for i := range etags {
		done[i] = types.CompletedPart{ETag: &etags[i], PartNumber: aws.Int32(int32(i + 1))}
	}
	_, err := u.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{
		Bucket: &u.s.bucket, Key: &u.key, UploadId: &u.uploadID,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: done},
		IfNoneMatch:     aws.String("*"),
	})
	if err != nil {
		return fmt.Errorf("complete multipart upload: %w", mapErr(err))
	}
	u.uploadID = "" // completed: nothing left to abort
	return nil
}

// Discard aborts the multipart upload, if one was started.
func (u *upload) Discard(ctx context.Context, _ bool) error {
	if u.uploadID == "" {
		return nil
	}
	_, err := u.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
		Bucket: &u.s.bucket, Key: &u.key, UploadId: &u.uploadID,
	})
	if err != nil && !isCode(err, "NoSuchUpload") {
		return fmt.Errorf("abort multipart upload: %w", mapErr(err))
	}
	u.uploadID = ""
	return nil
}

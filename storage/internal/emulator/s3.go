package emulator

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ledgervault/ledgervault/internal/fakes3"
)

// S3 is a gofakes3 server on 127.0.0.1 with one bucket, and an aws-sdk-go-v2 client
// that reaches it over HTTP with path-style addressing.
type S3 struct {
	// URL is the server's base URL (http://127.0.0.1:PORT).
	URL string
	// Bucket is the bucket created for the test.
	Bucket string
	// Client is a real S3 client configured for the server.
	Client *s3.Client
}

// S3AccessKey and S3SecretKey are the static credentials the test client uses;
// gofakes3 accepts any.
const (
	S3AccessKey = "ledgervault-test"
	S3SecretKey = "ledgervault-test-secret"
)

// StartS3 starts gofakes3 in process for the duration of the test.
//
// gofakes3 v1.2.0 honours If-None-Match: * on PutObject but ignores it on
// CompleteMultipartUpload. The server is therefore wrapped in a small handler that
// answers a conditional CompleteMultipartUpload with 412 PreconditionFailed when the
// key exists, as S3 does; conditional writes are serialised by a mutex so the
// emulated check-and-write is atomic. This is emulator support, not backend logic.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	backend := s3mem.New()
	faker := gofakes3.New(backend)
	srv := httptest.NewServer(fakes3.ConditionalComplete(backend, faker.Server()))
	t.Cleanup(srv.Close)

	client := s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(S3AccessKey, S3SecretKey, ""),
		HTTPClient:   srv.Client(),
	})
	bucket := UniqueName("lv-test")
	if _, err := client.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("create bucket %s on gofakes3: %v", bucket, err)
	}
	return &S3{URL: srv.URL, Bucket: bucket, Client: client}
}

// OpenUploads counts the multipart uploads open in the bucket.
func (s *S3) OpenUploads(ctx context.Context) (int, error) {
	out, err := s.Client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.Bucket})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
			return 0, nil // gofakes3 answers 404 when there are none
		}
		return 0, fmt.Errorf("list multipart uploads: %w", err)
	}
	return len(out.Uploads), nil
}

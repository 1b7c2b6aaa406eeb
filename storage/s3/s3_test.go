package s3_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/emulator"
	"github.com/ledgervault/ledgervault/storage/internal/objstoretest"
	s3store "github.com/ledgervault/ledgervault/storage/s3"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testPart = 256 << 10

func newStore(t *testing.T, srv *emulator.S3, prefix string) *s3store.Store {
	t.Helper()
	st, err := s3store.New(srv.Client, s3store.Config{
		Bucket: srv.Bucket, Prefix: prefix, PartSize: testPart, AllowSmallParts: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func openUploads(t *testing.T, srv *emulator.S3) int {
	t.Helper()
	n, err := srv.OpenUploads(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBehaviour(t *testing.T) {
	srv := emulator.StartS3(t)
	n := 0
	objstoretest.Run(t, objstoretest.Harness{
		New: func(t *testing.T) storage.Store {
			n++
			return newStore(t, srv, "prefix/"+string(rune('a'+n)))
		},
		PartSize:    testPart,
		OpenUploads: srv.OpenUploads,
	})
}

func TestAbortStaleUploads(t *testing.T) {
	ctx := context.Background()
	srv := emulator.StartS3(t)
	st := newStore(t, srv, "p")
	// An upload left open by a crashed writer, inside and outside the prefix.
	for _, key := range []string{"p/b-1/chunk", "other/chunk"} {
		if _, err := srv.Client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &srv.Bucket, Key: aws.String(key)}); err != nil {
			t.Fatal(err)
		}
	}
	n, err := st.AbortStaleUploads(ctx, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("AbortStaleUploads(1h) = %d, %v; want 0 (uploads are new)", n, err)
	}
	time.Sleep(1100 * time.Millisecond) // S3 times have second resolution
	n, err = st.AbortStaleUploads(ctx, time.Second)
	if err != nil || n != 1 {
		t.Fatalf("AbortStaleUploads = %d, %v; want 1", n, err)
	}
	if got := openUploads(t, srv); got != 1 {
		t.Fatalf("%d uploads open, want 1 (the one outside the prefix)", got)
	}
	// No uploads at all: gofakes3 answers 404, which means zero.
	empty := emulator.StartS3(t)
	n, err = newStore(t, empty, "").AbortStaleUploads(ctx, 0)
	if err != nil || n != 0 {
		t.Fatalf("AbortStaleUploads on an empty bucket = %d, %v", n, err)
	}
}

func TestMissingBucketIsPermanent(t *testing.T) {
	ctx := context.Background()
	srv := emulator.StartS3(t)
	st, err := s3store.New(srv.Client, s3store.Config{Bucket: "no-such-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); !storage.IsPermanent(err) {
		t.Fatalf("Check: %v, want permanent", err)
	}
	if _, err := st.CreateBackup(ctx, "x"); !storage.IsPermanent(err) {
		t.Fatalf("CreateBackup: %v, want permanent", err)
	}
	if err := newStore(t, srv, "").Check(ctx); err != nil {
		t.Fatalf("Check of the existing bucket: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	srv := emulator.StartS3(t)
	for _, cfg := range []s3store.Config{
		{},
		{Bucket: "b", Prefix: "a/../b"},
		{Bucket: "b", PartSize: 1 << 20},
	} {
		if _, err := s3store.New(srv.Client, cfg); !storage.IsPermanent(err) {
			t.Errorf("New(%+v): %v, want permanent error", cfg, err)
		}
	}
}

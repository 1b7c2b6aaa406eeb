package gc_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ledgervault/ledgervault/maintenance/gc"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/s3"
)

// shiftedClock is the emulator's clock: real time plus a settable offset, so a test
// can write objects "hours ago".
type shiftedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *shiftedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *shiftedClock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

func (c *shiftedClock) set(d time.Duration) {
	c.mu.Lock()
	c.offset = d
	c.mu.Unlock()
}

// TestS3 runs GC against the S3 backend over HTTP on 127.0.0.1 (gofakes3): folder
// ages come from object LastModified times and incomplete multipart uploads are
// aborted.
func TestS3(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	clk := &shiftedClock{}
	faker := gofakes3.New(s3mem.New(s3mem.WithTimeSource(clk)), gofakes3.WithTimeSource(clk), gofakes3.WithTimeSkewLimit(0))
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	client := awss3.New(awss3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(srv.URL),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider("k", "s", ""),
		HTTPClient:   srv.Client(),
	})
	bucket := "gc-test"
	if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	st, err := s3.New(client, s3.Config{Bucket: bucket, Prefix: "node1"})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, ctx: ctx, st: st}

	clk.set(-3 * time.Hour)
	ref := f.backup(100)
	old, _ := f.folder(2000)
	// An upload killed three hours ago, never completed nor aborted.
	key := "node1/" + string(ref) + "/chunk-9"
	if _, err := client.CreateMultipartUpload(ctx, &awss3.CreateMultipartUploadInput{Bucket: &bucket, Key: &key}); err != nil {
		t.Fatal(err)
	}
	clk.set(0)
	young, _ := f.folder(300)

	rep, err := gc.Run(ctx, st, gc.Options{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if rep.BackupsRemoved != 1 || rep.BytesRemoved < 2000 || rep.KeptYoung != 1 || rep.Referenced != 1 || rep.StaleUploadsAborted != 1 {
		t.Fatalf("report %+v", rep)
	}
	if itemAction(rep, old) != gc.Removed || itemAction(rep, young) != gc.KeptYoung {
		t.Fatalf("items %+v", rep.Items)
	}
	infos, err := st.ListBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	left := map[storage.BackupHandle]bool{}
	for _, in := range infos {
		left[in.Handle] = true
	}
	if len(left) != 2 || !left[ref] || !left[young] {
		t.Fatalf("folders left %v", left)
	}
	// The referenced backup's files are intact.
	r, err := st.Open(ctx, storage.FileHandle(string(ref)+"/chunk-0"))
	if err != nil {
		t.Fatal(err)
	}
	r.Close()
}

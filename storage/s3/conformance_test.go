package s3_test

import (
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/emulator"
	s3store "github.com/ledgervault/ledgervault/storage/s3"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// TestConformance runs the shared suite with a fresh gofakes3 per case (so the
// suite's leak check after each case sees the server gone) and the default 8 MiB
// part size, so the 20 MiB cases use real multipart uploads.
func TestConformance(t *testing.T) {
	var cur *emulator.S3
	storagetest.Run(t, func(t *testing.T) storage.Store {
		cur = emulator.StartS3(t)
		st, err := s3New(cur, "conformance")
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, storagetest.Options{
		OpenUploads:    func(ctx context.Context) (int, error) { return cur.OpenUploads(ctx) },
		StaleLeftovers: true,
		// gofakes3 runs in this process and keeps every object and every uploaded
		// part in memory (a 64 MiB file is held as parts, then again as the
		// assembled object), so the heap the suite samples includes the server's
		// copies. The writer itself holds at most Concurrency+1 parts of 8 MiB;
		// TestPartsMemoryBounded in storage/internal/objstore checks that alone.
		MaxHeapGrowth: 40<<20 + 4*64<<20,
	})
}

func s3New(srv *emulator.S3, prefix string) (storage.Store, error) {
	return s3store.New(srv.Client, s3store.Config{Bucket: srv.Bucket, Prefix: prefix})
}

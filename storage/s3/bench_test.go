package s3_test

import (
	"testing"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/emulator"
	s3store "github.com/ledgervault/ledgervault/storage/s3"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// BenchmarkS3 measures write and read throughput against gofakes3 in process over
// loopback HTTP (256 MiB in 32 MiB files, 8 MiB parts, 2 in flight). The figures are
// bound by the emulator, which keeps everything in memory; run with -benchtime=1x:
//
//	go test -run '^$' -bench . -benchtime=1x ./storage/s3
func BenchmarkS3(b *testing.B) {
	storagetest.Benchmark(b, func(tb testing.TB) storage.Store {
		srv := emulator.StartS3(tb)
		st, err := s3store.New(srv.Client, s3store.Config{Bucket: srv.Bucket, Prefix: "bench"})
		if err != nil {
			tb.Fatal(err)
		}
		return st
	})
}

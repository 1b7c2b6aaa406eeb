package gcs_test

import (
	"testing"

	"github.com/ledgervault/ledgervault/storage"
	gcsstore "github.com/ledgervault/ledgervault/storage/gcs"
	"github.com/ledgervault/ledgervault/storage/internal/emulator/fakegcs"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// BenchmarkGCS measures write and read throughput against fake-gcs-server in
// process over loopback HTTP (256 MiB in 32 MiB files, 8 MiB resumable chunks). The
// figures are bound by the emulator, which keeps everything in memory; run with
// -benchtime=1x:
//
//	go test -run '^$' -bench . -benchtime=1x ./storage/gcs
func BenchmarkGCS(b *testing.B) {
	storagetest.Benchmark(b, func(tb testing.TB) storage.Store {
		srv := fakegcs.Start(tb)
		st, err := gcsstore.New(srv.Client, gcsstore.Config{Bucket: srv.Bucket, Prefix: "bench"})
		if err != nil {
			tb.Fatal(err)
		}
		return st
	})
}

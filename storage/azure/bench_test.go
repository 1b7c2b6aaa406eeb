package azure_test

import (
	"testing"

	"github.com/ledgervault/ledgervault/storage"
	azstore "github.com/ledgervault/ledgervault/storage/azure"
	"github.com/ledgervault/ledgervault/storage/internal/emulator"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// BenchmarkAzure measures write and read throughput against Azurite over loopback
// HTTP (256 MiB in 32 MiB files, 8 MiB blocks, 2 in flight). The figures are bound by
// the emulator (Node.js, in-memory); start it through scripts/emulators.sh and run
// with -benchtime=1x:
//
//	go test -run '^$' -bench . -benchtime=1x ./storage/azure
func BenchmarkAzure(b *testing.B) {
	storagetest.Benchmark(b, func(tb testing.TB) storage.Store {
		az := emulator.StartAzurite(tb)
		st, err := azstore.New(az.Client, azstore.Config{Prefix: "bench"})
		if err != nil {
			tb.Fatal(err)
		}
		return st
	})
}

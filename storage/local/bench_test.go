package local_test

import (
	"testing"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// BenchmarkLocal: go test -run XXX -bench . ./storage/local
func BenchmarkLocal(b *testing.B) {
	storagetest.Benchmark(b, func(tb testing.TB) storage.Store {
		st, err := local.New(tb.TempDir())
		if err != nil {
			tb.Fatal(err)
		}
		return st
	})
}

package shell_test

import (
	"testing"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// BenchmarkShellLocalSample runs samples/local.yaml (each write goes through a guard
// and a bash pipeline): go test -run XXX -bench . ./storage/shell
func BenchmarkShellLocalSample(b *testing.B) {
	storagetest.Benchmark(b, func(tb testing.TB) storage.Store {
		st, err := shell.New(localConfig(tb, tb.TempDir()))
		if err != nil {
			tb.Fatal(err)
		}
		return st
	})
}

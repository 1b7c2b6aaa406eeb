package catalog_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// BenchmarkLoad compares reading 500 metadata files from local storage, from storage
// with a first-byte latency, and from a warm cache (which re-verifies every copy).
func BenchmarkLoad(b *testing.B) {
	ctx := context.Background()
	st, err := local.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	const n = 500
	for i := range n {
		line := fmt.Sprintf(`{"format":1,"type":"transaction","first_version":%d,"last_version":%d,"manifest":"f%d/manifest.json","size":123456}`+"\n", i*100, i*100+99, i)
		if _, err := st.SaveMetadata(ctx, fmt.Sprintf("m%04d.meta", i), []byte(line)); err != nil {
			b.Fatal(err)
		}
	}
	// remote adds 2 ms to every Open, as an object store's first byte would.
	remote := storagetest.NewFaultStore(st, storagetest.Every(storagetest.OpOpen, storagetest.Fault{
		Before: func() { time.Sleep(2 * time.Millisecond) },
	}))
	for _, tc := range []struct {
		name string
		st   storage.Store
		dir  string
	}{{"local", st, ""}, {"remote-2ms", remote, ""}, {"warm-cache", remote, b.TempDir()}} {
		if tc.dir != "" {
			if _, err := catalog.LoadEntries(ctx, tc.st, tc.dir); err != nil {
				b.Fatal(err)
			}
		}
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				es, err := catalog.LoadEntries(ctx, tc.st, tc.dir)
				if err != nil || len(es) != n {
					b.Fatal(len(es), err)
				}
			}
		})
	}
}

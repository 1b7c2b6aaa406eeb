package backup_test

import (
	"context"
	"path"
	"sync"
	"testing"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// firstNamed fails the first call of op on a file whose name satisfies match with
// mode (commit-then-fail, duplicate, ...); fired reports whether it did.
func firstNamed(op storagetest.Op, match func(name string) bool, mode storagetest.Mode) (rule storagetest.Rule, fired func() bool) {
	var mu sync.Mutex
	done := false
	return func(c storagetest.Call) storagetest.Fault {
			mu.Lock()
			defer mu.Unlock()
			if c.Op != op || done || !match(c.Name) {
				return storagetest.Fault{}
			}
			done = true
			return storagetest.Fault{Mode: mode}
		}, func() bool {
			mu.Lock()
			defer mu.Unlock()
			return done
		}
}

// metadataFiles returns the metadata files called name.
func metadataFiles(t *testing.T, st storage.Store, name string) []storage.FileHandle {
	t.Helper()
	hs, err := st.ListMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []storage.FileHandle
	for _, h := range hs {
		if path.Base(string(h)) == name {
			out = append(out, h)
		}
	}
	return out
}

// TestAmbiguousWrites backs up each type while the store commits and then reports
// failure (or runs the call twice) for the metadata line or the first chunk's
// commit: the read-back takes the write for ours, so the backup reports success,
// exactly one metadata file is visible and the backup verifies.
func TestAmbiguousWrites(t *testing.T) {
	tc := newTestChain(t, 600, 2000)
	ctx := context.Background()
	cases := []struct {
		name string
		op   storagetest.Op
		file func(string) bool
		mode storagetest.Mode
	}{
		{"metadata-commit-then-fail", storagetest.OpSaveMetadata, native.IsMetadataName, storagetest.FailAfter},
		{"metadata-duplicate", storagetest.OpSaveMetadata, native.IsMetadataName, storagetest.Duplicate},
		{"chunk-commit-then-fail", storagetest.OpCommit, native.IsChunkName, storagetest.FailAfter},
	}
	for _, k := range kinds {
		for _, c := range cases {
			t.Run(k.name+"/"+c.name, func(t *testing.T) {
				st, _ := localStore(t)
				rule, fired := firstNamed(c.op, c.file, c.mode)
				fs := storagetest.NewFaultStore(st, rule)
				res, err := k.run(ctx, tc, fs, smallOpts)
				if !fired() {
					t.Fatal("the fault was never injected")
				}
				if err != nil {
					t.Fatalf("backup under an ambiguous write: %v", err)
				}
				if hs := metadataFiles(t, st, native.MetadataName(&res.Metadata)); len(hs) != 1 || hs[0] != res.MetadataHandle {
					t.Fatalf("metadata files %v, want exactly %s", hs, res.MetadataHandle)
				}
				verifyBackup(t, tc, st, res)
			})
		}
	}
}

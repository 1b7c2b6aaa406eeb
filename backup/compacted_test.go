package backup_test

import (
	"context"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/storage/local"
)

// TestCompactedMetadataStillRefusesDuplicates moves each backup's metadata line into
// a compacted file and deletes the small file, as backup/compact does: a second
// backup of the same range must still be refused, not become a visible duplicate.
func TestCompactedMetadataStillRefusesDuplicates(t *testing.T) {
	ctx := context.Background()
	tc := newTestChain(t, 600, 2000)
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var compacted []byte
	for _, k := range kinds {
		res, err := k.run(ctx, tc, st, backup.Options{})
		if err != nil {
			t.Fatalf("%s: %v", k.name, err)
		}
		r, err := st.Open(ctx, res.MetadataHandle)
		if err != nil {
			t.Fatal(err)
		}
		b, err := io.ReadAll(r)
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		compacted = append(compacted, b...)
	}
	if _, err := st.SaveMetadata(ctx, "compacted_20261125T000000Z-0123456789abcdef-0.meta", compacted); err != nil {
		t.Fatal(err)
	}
	hs, err := st.ListMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hs {
		if !strings.Contains(string(h), "compacted_") {
			if err := st.DeleteMetadata(ctx, h); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, k := range kinds {
		if _, err := k.run(ctx, tc, st, backup.Options{}); !errors.Is(err, backup.ErrAlreadyBackedUp) {
			t.Fatalf("%s: backup of a range held by a compacted metadata file: %v", k.name, err)
		}
	}
}

package azure_test

import (
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/storage"
	azstore "github.com/ledgervault/ledgervault/storage/azure"
	"github.com/ledgervault/ledgervault/storage/internal/emulator"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// TestConformance runs the shared suite against Azurite (a separate process, so the
// suite's heap bound applies to the backend alone) with a fresh container per case
// and the default 8 MiB block size.
//
// StaleLeftovers is false although an abandoned writer does leave an uncommitted
// blob that AbortStaleUploads removes on Azurite (TestAbortStaleUploads checks that):
// the suite also demands that the abandoned writer's Commit then fails, but Azure
// keeps staged blocks apart from the blob (Azurite after the delete, the real
// service until they expire after about a week), so a late CommitBlockList still
// succeeds, with the complete content. Nothing partial ever becomes visible.
func TestConformance(t *testing.T) {
	var cur *emulator.Azurite
	storagetest.Run(t, func(t *testing.T) storage.Store {
		cur = emulator.StartAzurite(t)
		st, err := azstore.New(cur.Client, azstore.Config{Prefix: "conformance"})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, storagetest.Options{
		OpenUploads: func(ctx context.Context) (int, error) { return cur.OpenUploads(ctx) },
	})
}

package azure_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
	azstore "github.com/ledgervault/ledgervault/storage/azure"
	"github.com/ledgervault/ledgervault/storage/internal/emulator"
	"github.com/ledgervault/ledgervault/storage/internal/objstoretest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const testBlock = 256 << 10

func newStore(t *testing.T, az *emulator.Azurite, prefix string) *azstore.Store {
	t.Helper()
	st, err := azstore.New(az.Client, azstore.Config{Prefix: prefix, BlockSize: testBlock})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func TestBehaviour(t *testing.T) {
	az := emulator.StartAzurite(t)
	n := 0
	objstoretest.Run(t, objstoretest.Harness{
		New: func(t *testing.T) storage.Store {
			n++
			return newStore(t, az, "prefix/"+string(rune('a'+n)))
		},
		PartSize:    testBlock,
		OpenUploads: az.OpenUploads,
	})
}

func TestAbortStaleUploads(t *testing.T) {
	ctx := context.Background()
	az := emulator.StartAzurite(t)
	st := newStore(t, az, "p")
	// Blocks staged by a crashed writer, inside and outside the prefix.
	for _, key := range []string{"p/b-1/chunk", "other/chunk"} {
		id := base64.StdEncoding.EncodeToString([]byte("crashed-00000001"))
		_, err := az.Client.NewBlockBlobClient(key).StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader([]byte("partial"))), nil)
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := uncommitted(t, az); len(got) != 2 {
		t.Fatalf("uncommitted blobs %v, want 2", got)
	}
	n, err := st.AbortStaleUploads(ctx, time.Hour)
	if err != nil || n != 0 {
		t.Fatalf("AbortStaleUploads(1h) = %d, %v; want 0 (blocks are new)", n, err)
	}
	time.Sleep(1100 * time.Millisecond) // blob times have second resolution
	n, err = st.AbortStaleUploads(ctx, time.Second)
	if err != nil || n != 1 {
		t.Fatalf("AbortStaleUploads = %d, %v; want 1", n, err)
	}
	if got := uncommitted(t, az); len(got) != 1 || got[0] != "other/chunk" {
		t.Fatalf("uncommitted blobs left: %v, want [other/chunk]", got)
	}
}

func uncommitted(t *testing.T, az *emulator.Azurite) []string {
	t.Helper()
	names, err := az.UncommittedBlobs(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestMissingContainerIsPermanent(t *testing.T) {
	ctx := context.Background()
	az := emulator.StartAzurite(t)
	st, err := azstore.New(az.Service.NewContainerClient("no-such-container"), azstore.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); !storage.IsPermanent(err) {
		t.Fatalf("Check: %v, want permanent", err)
	}
	if _, err := st.CreateBackup(ctx, "x"); !storage.IsPermanent(err) {
		t.Fatalf("CreateBackup: %v, want permanent", err)
	}
	if err := newStore(t, az, "").Check(ctx); err != nil {
		t.Fatalf("Check of the existing container: %v", err)
	}
}

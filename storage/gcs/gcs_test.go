package gcs_test

import (
	"bytes"
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
	gcsstore "github.com/ledgervault/ledgervault/storage/gcs"
	"github.com/ledgervault/ledgervault/storage/internal/emulator/fakegcs"
	"github.com/ledgervault/ledgervault/storage/internal/objstoretest"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(fakegcs.IgnoreTop))
}

const testChunk = 256 << 10

func newStore(t *testing.T, srv *fakegcs.Server, prefix string) *gcsstore.Store {
	t.Helper()
	st, err := gcsstore.New(srv.Client, gcsstore.Config{Bucket: srv.Bucket, Prefix: prefix, ChunkSize: testChunk})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// objectCount counts every object in the emulator's bucket, with no prefix filter:
// a partial upload committed under any name would show here.
func objectCount(t *testing.T, srv *fakegcs.Server) int {
	t.Helper()
	objs, _, err := srv.Server.ListObjects(srv.Bucket, "", "", false)
	if err != nil {
		t.Fatal(err)
	}
	return len(objs)
}

func TestBehaviour(t *testing.T) {
	srv := fakegcs.Start(t)
	n := 0
	objstoretest.Run(t, objstoretest.Harness{
		New: func(t *testing.T) storage.Store {
			n++
			return newStore(t, srv, "prefix/"+string(rune('a'+n)))
		},
		PartSize: testChunk,
	})
}

// TestCancelMidWrite20MiB cancels a 20 MiB resumable upload halfway and checks
// that no object at all appeared in the bucket.
func TestCancelMidWrite20MiB(t *testing.T) {
	srv := fakegcs.Start(t)
	// The default 8 MiB chunks: at the cancel one chunk has been sent and the next is
	// buffered, so the resumable session exists on the server.
	st, err := gcsstore.New(srv.Client, gcsstore.Config{Bucket: srv.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.CreateBackup(context.Background(), "cancel")
	if err != nil {
		t.Fatal(err)
	}
	before := objectCount(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	w, err := st.Create(ctx, b, "big")
	if err != nil {
		t.Fatal(err)
	}
	data := objstoretest.Payload(20<<20, 7)
	if _, err := w.Write(data[:10<<20]); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := w.Abort(); err != nil {
		t.Fatal(err)
	}
	if got := objectCount(t, srv); got != before {
		t.Fatalf("%d objects after cancelled upload, want %d", got, before)
	}
	// The same name can still be written completely afterwards.
	w, err = st.Create(context.Background(), b, "big")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if got := objstoretest.ReadAll(t, st, w.Handle()); !bytes.Equal(got, data) {
		t.Fatal("content differs")
	}
}

func TestMissingBucketIsPermanent(t *testing.T) {
	ctx := context.Background()
	srv := fakegcs.Start(t)
	st, err := gcsstore.New(srv.Client, gcsstore.Config{Bucket: "no-such-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Check(ctx); !storage.IsPermanent(err) {
		t.Fatalf("Check: %v, want permanent", err)
	}
	if err := newStore(t, srv, "").Check(ctx); err != nil {
		t.Fatalf("Check of the existing bucket: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	srv := fakegcs.Start(t)
	for _, cfg := range []gcsstore.Config{
		{},
		{Bucket: "b", Prefix: "a/../b"},
		{Bucket: "b", ChunkSize: 1000},
	} {
		if _, err := gcsstore.New(srv.Client, cfg); !storage.IsPermanent(err) {
			t.Errorf("New(%+v): %v, want permanent error", cfg, err)
		}
	}
}

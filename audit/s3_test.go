package audit_test

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/storageurl"
)

// uploadS3 serves an in-process S3 on 127.0.0.1 holding the store at root under
// prefix, the way an operator's `aws s3 sync` leaves it, and opens it by URL.
func uploadS3(t *testing.T, root, prefix string) storage.Store {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket("vault"); err != nil {
		t.Fatal(err)
	}
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		_, err = backend.PutObject("vault", prefix+"/"+filepath.ToSlash(rel), map[string]string{}, bytes.NewReader(b), int64(len(b)), nil)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	st, err := storageurl.Open(context.Background(), "s3://vault/"+prefix+"?region=us-east-1&use_path_style=true&endpoint="+srv.URL+
		"&access_key_id=test&secret_access_key=test")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// The backup-cli layout read from an object store: the gzip layer of the operator's
// uploads is removed as for file://, folders are listed (files are not, so
// unreferenced files inside referenced folders are not checked).
func TestThroughS3(t *testing.T) {
	root, _, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	rep := run(t, uploadS3(t, root, "libra7"))
	checkFindings(t, rep, aptosFindings)
	if !rep.UnreferencedChecked || rep.Files != 440 || rep.MetadataFiles != 218 {
		t.Fatalf("%+v", rep)
	}

	d77, err := corpora.Diem("77")
	if err != nil {
		t.Fatal(err)
	}
	checkFindings(t, run(t, uploadS3(t, d77, "0l/77")), diemFindings["77"])
}

package storageurl_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/emulator"
	"github.com/ledgervault/ledgervault/storage/internal/emulator/fakegcs"
	"github.com/ledgervault/ledgervault/storage/storageurl"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction(fakegcs.IgnoreTop))
}

// roundTrip writes a file and metadata through a store opened from a URL, then reads
// them back through a second store opened from the same URL.
func roundTrip(t *testing.T, rawURL string) {
	t.Helper()
	ctx := context.Background()
	st, err := storageurl.Open(ctx, rawURL)
	if err != nil {
		t.Fatalf("Open(%s): %v", rawURL, err)
	}
	b, err := st.CreateBackup(ctx, "url")
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Create(ctx, b, "chunk-0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, "m1.meta", []byte("meta")); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	st2, err := storageurl.OpenExisting(ctx, rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	rc, err := st2.Open(ctx, w.Handle())
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || string(got) != "hello" {
		t.Fatalf("read back %q, %v", got, err)
	}
	metas, err := st2.ListMetadata(ctx)
	if err != nil || len(metas) != 1 {
		t.Fatalf("ListMetadata = %v, %v", metas, err)
	}
}

func TestFile(t *testing.T) {
	roundTrip(t, "file://"+t.TempDir())
}

// TestFileOpenExisting: OpenExisting creates nothing; a missing directory, a
// directory without the metadata folder and a path under /proc are all
// ErrStoreNotFound naming the URL; Open (a writer) creates the store.
func TestFileOpenExisting(t *testing.T) {
	dir := t.TempDir()
	for _, u := range []string{"file://" + dir + "/x/nonexistent", "file://" + dir, "file:///proc/nope"} {
		_, err := storageurl.OpenExisting(context.Background(), u)
		if !errors.Is(err, storage.ErrStoreNotFound) || !storage.IsPermanent(err) || !strings.HasPrefix(err.Error(), "store does not exist: "+u) {
			t.Fatalf("OpenExisting(%s) = %v, want ErrStoreNotFound naming the URL", u, err)
		}
		if errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("OpenExisting(%s) = %v matches ErrNotFound (a missing file), want only ErrStoreNotFound", u, err)
		}
	}
	if _, err := os.Stat(dir + "/x"); !os.IsNotExist(err) {
		t.Fatalf("OpenExisting created %s/x: %v", dir, err)
	}
	if _, err := os.Stat(dir + "/metadata"); !os.IsNotExist(err) {
		t.Fatalf("OpenExisting created %s/metadata: %v", dir, err)
	}
	st, err := storageurl.Open(context.Background(), "file://"+dir+"/x/new")
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	st, err = storageurl.OpenExisting(context.Background(), "file://"+dir+"/x/new")
	if err != nil {
		t.Fatalf("OpenExisting after Open created the store: %v", err)
	}
	st.Close()
}

func TestS3(t *testing.T) {
	srv := emulator.StartS3(t)
	q := url.Values{
		"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"},
		"access_key_id": {emulator.S3AccessKey}, "secret_access_key": {emulator.S3SecretKey},
	}
	roundTrip(t, "s3://"+srv.Bucket+"/some/prefix?"+q.Encode())
	q.Set("part_size", "1")
	if _, err := storageurl.Open(context.Background(), "s3://"+srv.Bucket+"?"+q.Encode()); !storage.IsPermanent(err) {
		t.Fatalf("part_size=1: %v, want permanent error", err)
	}
	q.Del("part_size")
	_, err := storageurl.Open(context.Background(), "s3://no-such-bucket?"+q.Encode())
	if !storage.IsPermanent(err) || !errors.Is(err, storage.ErrStoreNotFound) {
		t.Fatalf("missing bucket: %v, want permanent ErrStoreNotFound", err)
	}
	if _, err := storageurl.OpenExisting(context.Background(), "s3://no-such-bucket?"+q.Encode()); !errors.Is(err, storage.ErrStoreNotFound) {
		t.Fatalf("missing bucket, OpenExisting: %v, want ErrStoreNotFound", err)
	}
	if strings.Contains(err.Error(), emulator.S3SecretKey) {
		t.Fatalf("error leaks the secret key: %v", err)
	}
}

func TestGCS(t *testing.T) {
	srv := fakegcs.Start(t)
	t.Setenv("STORAGE_EMULATOR_HOST", srv.URL)
	roundTrip(t, "gs://"+srv.Bucket+"/p")
	_, err := storageurl.OpenExisting(context.Background(), "gs://no-such-bucket/p")
	if !storage.IsPermanent(err) || !errors.Is(err, storage.ErrStoreNotFound) || !strings.Contains(err.Error(), "store does not exist: gs://no-such-bucket/p") {
		t.Fatalf("missing bucket: %v, want permanent ErrStoreNotFound naming the URL", err)
	}
}

func TestAzure(t *testing.T) {
	az := emulator.StartAzurite(t)
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	t.Setenv("AZURE_STORAGE_ACCOUNT", emulator.AzuriteAccount)
	t.Setenv("AZURE_STORAGE_KEY", emulator.AzuriteKey)
	roundTrip(t, "azblob://"+az.Container+"/p?service_url="+url.QueryEscape(az.ServiceURL))
	if _, err := storageurl.Open(context.Background(), "azblob://no-such-container?service_url="+url.QueryEscape(az.ServiceURL)); !storage.IsPermanent(err) || !errors.Is(err, storage.ErrStoreNotFound) {
		t.Fatalf("missing container: %v, want permanent ErrStoreNotFound", err)
	}
	// The same through a connection string.
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "DefaultEndpointsProtocol=http;AccountName="+emulator.AzuriteAccount+
		";AccountKey="+emulator.AzuriteKey+";BlobEndpoint="+az.ServiceURL+";")
	roundTrip(t, "azblob://"+az.Container+"/q")
}

func TestErrors(t *testing.T) {
	t.Setenv("AZURE_STORAGE_ACCOUNT", "")
	t.Setenv("AZURE_STORAGE_KEY", "")
	t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ url, want string }{
		{"ftp://x/y", "supported: file, s3, gs, azblob"},
		{"/plain/path", "for a local directory use file:///plain/path"},
		{"backups/here", "for a local directory use file://" + wd + "/backups/here"},
		{"", "storage URL is empty (file:///DIR"},
		{"s3:///prefix", "bucket name missing"},
		{"s3://b?regoin=x", `unknown query parameter "regoin"`},
		{"s3://b?use_path_style=maybe", `use_path_style="maybe": want true or false`},
		{"gs://b?chunk_size=-1", "positive integer"},
		{"azblob://c", "azure credentials missing"},
		{"file://host/x", "use file:///absolute/path"},
		{"file:///x?y=1", `unknown query parameter "y" (this scheme takes none)`},
		{"%zz://x", "storage URL"},
	} {
		_, err := storageurl.Open(context.Background(), tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) = %v, want an error containing %q", tc.url, err, tc.want)
			continue
		}
		if !storage.IsPermanent(err) || !storage.IsConfig(err) {
			t.Errorf("Open(%q) = %v, want a permanent configuration error", tc.url, err)
		}
		// Nothing failed in storage: the message is what is wrong with the URL.
		if strings.Contains(err.Error(), "permanent storage failure") {
			t.Errorf("Open(%q) = %q, says 'permanent storage failure'", tc.url, err)
		}
		if errors.Is(err, storage.ErrNotFound) {
			t.Errorf("Open(%q) = %v, not a not-found error", tc.url, err)
		}
	}
}

// TestS3SDKLogsGoThroughSlog: the AWS SDK's warnings arrive as records of the
// process's slog logger, not as unstructured "SDK ... WARN" lines on stderr (issue 15
// item 10). The SDK warns when it reads an object whose checksum is a multipart
// composite (S3 answers so for objects written by multipart upload, as every chunk
// above the part size is); a 127.0.0.1 server answers with one.
func TestS3SDKLogsGoThroughSlog(t *testing.T) {
	var buf syncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(prev) })
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet {
			w.Header().Set("x-amz-checksum-crc32", "AAAAAA==-3")
			w.Header().Set("Content-Length", "5")
			io.WriteString(w, "hello")
		}
	}))
	t.Cleanup(srv.Close)
	q := url.Values{
		"endpoint": {srv.URL}, "use_path_style": {"true"}, "region": {"us-east-1"},
		"access_key_id": {"id"}, "secret_access_key": {"secret"},
	}
	ctx := context.Background()
	st, err := storageurl.Open(ctx, "s3://bucket/sdklog?"+q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rc, err := st.Open(ctx, "backup-1/chunk-0")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(rc); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	out := buf.String()
	var sdk int
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if line == "" {
			continue
		}
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("not a JSON record: %q (output %q)", line, out)
		}
		if m["component"] == "aws-sdk" {
			sdk++
			if m["level"] != "WARN" || !strings.Contains(m["msg"].(string), "multipart checksum") {
				t.Errorf("unexpected SDK record %v", m)
			}
		}
	}
	if sdk == 0 {
		t.Fatalf("no SDK warning reached slog (output %q): the SDK printed it itself", out)
	}
}

// syncBuffer is a bytes.Buffer safe for the SDK's concurrent requests.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

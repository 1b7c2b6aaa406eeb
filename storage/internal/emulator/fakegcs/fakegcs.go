// Package fakegcs starts fake-gcs-server in process on 127.0.0.1 for the GCS backend
// tests. It is apart from package emulator because fake-gcs-server starts an
// opencensus goroutine at import that every importing test must tell goleak about.
package fakegcs

import (
	"context"
	"testing"

	gcs "cloud.google.com/go/storage"
	"github.com/fsouza/fake-gcs-server/fakestorage"
	"google.golang.org/api/option"

	"github.com/ledgervault/ledgervault/storage/internal/emulator"
)

// IgnoreTop is the goroutine fake-gcs-server's opencensus dependency starts at
// import; tests using Start pass it to goleak.IgnoreTopFunction.
const IgnoreTop = "go.opencensus.io/stats/view.(*worker).start"

// Server is a fake-gcs-server on 127.0.0.1 (plain HTTP) with one bucket, and a real GCS
// client that reaches it over the network.
type Server struct {
	// URL is the server's base URL (http://127.0.0.1:PORT), the value
	// STORAGE_EMULATOR_HOST would hold.
	URL string
	// Bucket is the bucket created for the test.
	Bucket string
	// Client is a cloud.google.com/go/storage client configured for the server.
	Client *gcs.Client
	// Server is the emulator, for inspecting its state.
	Server *fakestorage.Server
}

// Start starts fake-gcs-server in process for the duration of the test.
func Start(t testing.TB) *Server {
	t.Helper()
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1"})
	if err != nil {
		t.Fatalf("start fake-gcs-server: %v", err)
	}
	t.Cleanup(srv.Stop)
	bucket := emulator.UniqueName("lv-test")
	srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
	client, err := gcs.NewClient(context.Background(),
		option.WithEndpoint(srv.URL()+"/storage/v1/"),
		option.WithoutAuthentication(),
		gcs.WithJSONReads(),
	)
	if err != nil {
		t.Fatalf("GCS client for fake-gcs-server: %v", err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return &Server{URL: srv.URL(), Bucket: bucket, Client: client, Server: srv}
}

package clitest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/fsouza/fake-gcs-server/fakestorage"
	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// GcloudEnv enables running samples/gcloud.yaml with the real gcloud CLI against an
// in-process fake-gcs-server on 127.0.0.1 (each gcloud call takes about two seconds,
// so the whole run takes many minutes; select cases with -run).
const GcloudEnv = "LEDGERVAULT_TEST_GCLOUD"

func TestConformanceGcloudSample(t *testing.T) {
	if os.Getenv(GcloudEnv) != "1" {
		t.Skipf("set %s=1 to run samples/gcloud.yaml with gcloud against fake-gcs-server", GcloudEnv)
	}
	if _, err := exec.LookPath("gcloud"); err != nil {
		t.Fatalf("%s=1 but no gcloud: %v", GcloudEnv, err)
	}
	srv, err := fakestorage.NewServerWithOptions(fakestorage.Options{Scheme: "http", Host: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	token := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(token, []byte("fake-token"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CLOUDSDK_API_ENDPOINT_OVERRIDES_STORAGE", srv.URL()+"/")
	t.Setenv("CLOUDSDK_AUTH_ACCESS_TOKEN_FILE", token)
	t.Setenv("CLOUDSDK_CORE_PROJECT", "test")
	t.Setenv("CLOUDSDK_CORE_DISABLE_PROMPTS", "1")
	base, err := shell.LoadConfig("../samples/gcloud.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Store {
		bucket := fmt.Sprintf("bucket-%d", n.Add(1))
		srv.CreateBucketWithOpts(fakestorage.CreateBucketOpts{Name: bucket})
		cfg := base
		cfg.EnvVars = []shell.EnvVar{{Key: "BUCKET", Value: bucket}, {Key: "PREFIX", Value: "lv/"}}
		st, err := shell.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, storagetest.Options{
		LeakIgnores: []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("net/http.(*conn).serve"),
			goleak.IgnoreTopFunction("go.opencensus.io/stats/view.(*worker).start")},
		LargeSize:     6<<20 + 123,
		MaxHeapGrowth: 1 << 30, // the fake keeps every object in this process
	})
}

package clitest

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync/atomic"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// AWSCLIEnv enables running samples/aws.yaml with the real AWS CLI against an
// in-process S3 fake on 127.0.0.1 (each CLI call takes about a second, so the run
// takes minutes).
const AWSCLIEnv = "LEDGERVAULT_TEST_AWSCLI"

func TestConformanceAWSSample(t *testing.T) {
	if os.Getenv(AWSCLIEnv) != "1" {
		t.Skipf("set %s=1 to run samples/aws.yaml with the aws CLI against gofakes3", AWSCLIEnv)
	}
	if _, err := exec.LookPath("aws"); err != nil {
		t.Fatalf("%s=1 but no aws CLI: %v", AWSCLIEnv, err)
	}
	backend := s3mem.New()
	faker := gofakes3.New(backend)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: faker.Server()}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	for k, v := range map[string]string{
		"AWS_ENDPOINT_URL": "http://" + ln.Addr().String(), "AWS_ACCESS_KEY_ID": "test",
		"AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
	} {
		t.Setenv(k, v)
	}
	base, err := shell.LoadConfig("../samples/aws.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	storagetest.Run(t, func(t *testing.T) storage.Store {
		bucket := fmt.Sprintf("bucket-%d", n.Add(1))
		if err := backend.CreateBucket(bucket); err != nil {
			t.Fatal(err)
		}
		cfg := base
		cfg.EnvVars = []shell.EnvVar{{Key: "BUCKET", Value: bucket}, {Key: "PREFIX", Value: "lv/"}}
		st, err := shell.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}, storagetest.Options{
		LeakIgnores: []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreAnyFunction("net/http.(*conn).serve")},
		LargeSize:   6<<20 + 123,
		// The in-memory S3 fake keeps every object in this process's heap.
		MaxHeapGrowth: 1 << 30,
	})
}

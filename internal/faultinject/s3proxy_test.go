package faultinject

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ledgervault/ledgervault/internal/fakes3"
)

// bucket is the bucket of the proxy tests.
const bucket = "faults"

// s3Setup serves gofakes3 on 127.0.0.1 with a proxy in front and returns a client
// of the proxy that does not retry, a client of the server itself and the proxy.
func s3Setup(t *testing.T, seed uint64) (viaProxy, direct *s3.Client, p *S3Proxy) {
	t.Helper()
	backend := s3mem.New()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: fakes3.ConditionalComplete(backend, gofakes3.New(backend).Server()), ReadHeaderTimeout: 10 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	p, err = NewS3Proxy("http://"+ln.Addr().String(), seed)
	if err != nil {
		t.Fatal(err)
	}
	var trs []*http.Transport
	client := func(endpoint string) *s3.Client {
		tr := &http.Transport{}
		trs = append(trs, tr)
		return s3.New(s3.Options{
			Region:           "us-east-1",
			BaseEndpoint:     aws.String(endpoint),
			UsePathStyle:     true,
			Credentials:      credentials.NewStaticCredentialsProvider("k", "s", ""),
			HTTPClient:       &http.Client{Transport: tr},
			RetryMaxAttempts: 1,
		})
	}
	viaProxy, direct = client(p.URL()), client("http://"+ln.Addr().String())
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Error(err)
		}
		srv.Close()
		<-served
		for _, tr := range trs {
			tr.CloseIdleConnections()
		}
	})
	if _, err := viaProxy.CreateBucket(context.Background(), &s3.CreateBucketInput{Bucket: aws.String(bucket)}); err != nil {
		t.Fatal(err)
	}
	return viaProxy, direct, p
}

func putObject(ctx context.Context, c *s3.Client, key string, data []byte) error {
	_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(data), IfNoneMatch: aws.String("*")})
	return err
}

func exists(t *testing.T, c *s3.Client, key string) bool {
	t.Helper()
	_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	return err == nil
}

// TestS3ProxyKinds forces each kind of fault in turn and checks what the client
// saw, what the server holds and that it was counted.
func TestS3ProxyKinds(t *testing.T) {
	ctx := context.Background()
	c, direct, p := s3Setup(t, 1)
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<12)
	if err := putObject(ctx, c, "whole", data); err != nil {
		t.Fatal(err)
	}
	force := func(k Kind) {
		p.SetKinds(k)
		if err := p.SetRate(1); err != nil {
			t.Fatal(err)
		}
	}

	force(Refuse)
	if err := putObject(ctx, c, "refused", data); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("refused put: %v", err)
	}
	if exists(t, direct, "refused") {
		t.Error("a refused put reached the server")
	}

	force(Cut)
	if err := putObject(ctx, c, "cut", data); err == nil {
		t.Error("cut put succeeded")
	}
	if exists(t, direct, "cut") {
		t.Error("a cut put reached the server")
	}

	force(CommitThenFail)
	err := putObject(ctx, c, "committed", data)
	if err == nil || !strings.Contains(err.Error(), "500") {
		t.Errorf("commit-then-fail put: %v", err)
	}
	if !exists(t, direct, "committed") {
		t.Error("a commit-then-fail put did not commit")
	}
	// The client's retry of its own committed put is refused as S3 would.
	p.SetRate(0)
	if err := putObject(ctx, c, "committed", data); err == nil || !strings.Contains(err.Error(), "412") {
		t.Errorf("retry of a committed create-only put: %v, want 412", err)
	}

	force(HalfRead)
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("whole")})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(out.Body)
	out.Body.Close()
	if err == nil || len(got) != len(data)/2 || !bytes.Equal(got, data[:len(got)]) {
		t.Errorf("half read: %d of %d bytes, error %v; want the first half, then an error", len(got), len(data), err)
	}
	if out.ContentLength == nil || *out.ContentLength != int64(len(data)) {
		t.Errorf("half read announced %v bytes, want %d", out.ContentLength, len(data))
	}

	force(ListFail)
	if _, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)}); err == nil {
		t.Error("failed listing succeeded")
	}

	p.SetRate(0)
	l, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})
	if err != nil || len(l.Contents) != 2 {
		t.Errorf("faults off: listing %v, %v; want whole and committed", l, err)
	}
	cnt := p.Counts()
	for _, k := range Kinds {
		if cnt.Injected[k] != 1 {
			t.Errorf("%s injected %d times, want 1 (counts %v)", k, cnt.Injected[k], cnt.Injected)
		}
	}
	if cnt.InjectedByOp["PutObject"][Cut] != 1 || cnt.InjectedByOp["GetObject"][HalfRead] != 1 || cnt.InjectedByOp["ListObjects"][ListFail] != 1 {
		t.Errorf("faults by operation: %v", cnt.InjectedByOp)
	}
	want := map[string]int{"CreateBucket": 1, "PutObject": 5, "GetObject": 1, "ListObjects": 2}
	for op, n := range want {
		if cnt.Calls[op] != n {
			t.Errorf("%s sent %d times, counted %d (%v)", op, n, cnt.Calls[op], cnt.Calls)
		}
	}
}

// TestS3ProxyRateDeterministic sends the same requests to two proxies with one
// seed: they inject the same faults, about the rate of them.
func TestS3ProxyRateDeterministic(t *testing.T) {
	run := func(seed uint64) Counts {
		ctx := context.Background()
		c, _, p := s3Setup(t, seed)
		p.SetRate(0.3)
		for i := 0; i < 60; i++ {
			c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("none")})
		}
		return p.Counts()
	}
	a, b := run(42), run(42)
	if a.Calls["HeadObject"] != 60 {
		t.Fatalf("counted %d requests, want 60", a.Calls["HeadObject"])
	}
	if a.Injected[Refuse] != b.Injected[Refuse] || a.TotalInjected() != b.TotalInjected() {
		t.Errorf("same seed, different faults: %v and %v", a.Injected, b.Injected)
	}
	if n := a.Injected[Refuse]; n < 5 || n > 35 || a.TotalInjected() != n {
		t.Errorf("faults of 60 head requests at rate 0.3: %v", a.Injected)
	}
}

func TestS3ProxyTarget(t *testing.T) {
	for _, u := range []string{"", "https://x", "ftp://h/"} {
		if p, err := NewS3Proxy(u, 1); err == nil {
			p.Close()
			t.Errorf("NewS3Proxy(%q) accepted", u)
		}
	}
}

// TestS3ProxyFocus fails every request on a lease key (commit then fail) while
// other keys pass; focused requests are counted apart.
func TestS3ProxyFocus(t *testing.T) {
	ctx := context.Background()
	c, direct, p := s3Setup(t, 5)
	if err := p.SetFocus("lease_", 1, CommitThenFail); err != nil {
		t.Fatal(err)
	}
	if err := putObject(ctx, c, "metadata/lease_00000000000000000001.lease", []byte("l")); err == nil {
		t.Error("focused lease put reported success")
	}
	if !exists(t, direct, "metadata/lease_00000000000000000001.lease") {
		t.Error("commit then fail: lease object not committed")
	}
	if err := putObject(ctx, c, "metadata/m1.meta", []byte("one")); err != nil {
		t.Errorf("put outside the focus: %v", err)
	}
	n := p.Counts()
	if n.Calls["PutObject@lease_"] != 1 || n.Calls["PutObject"] != 1 ||
		n.InjectedByOp["PutObject@lease_"][CommitThenFail] != 1 || n.TotalInjected() != 1 {
		t.Errorf("counts: calls %v, injected %v", n.Calls, n.InjectedByOp)
	}
	if err := p.SetFocus("", 0); err != nil {
		t.Fatal(err)
	}
	if err := putObject(ctx, c, "metadata/lease_00000000000000000002.lease", []byte("l")); err != nil {
		t.Errorf("focus ended, lease put: %v", err)
	}
}

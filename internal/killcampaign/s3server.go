package killcampaign

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ledgervault/ledgervault/internal/fakes3"
)

// Static credentials of the emulated S3; gofakes3 accepts any.
const (
	s3AccessKey = "ledgervault-killcampaign"
	s3SecretKey = "ledgervault-killcampaign-secret"
)

// s3Server is gofakes3 served on 127.0.0.1 by the campaign process, with one bucket.
type s3Server struct {
	url    string
	bucket string
	client *s3.Client
	srv    *http.Server
	ln     net.Listener
	served chan error
	hc     *http.Client
}

// startS3 starts the emulator. gofakes3 v1.2.0 ignores If-None-Match on
// CompleteMultipartUpload; the handler answers a conditional complete of an existing
// key with 412 as S3 does (see storage/internal/emulator), so create-only writes hold.
func startS3(ctx context.Context) (*s3Server, error) {
	backend := s3mem.New()
	faker := gofakes3.New(backend)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the S3 emulator: %w", err)
	}
	s := &s3Server{
		url:    "http://" + ln.Addr().String(),
		ln:     ln,
		srv:    &http.Server{Handler: fakes3.ConditionalComplete(backend, faker.Server()), ReadHeaderTimeout: 10 * time.Second},
		served: make(chan error, 1),
		hc:     &http.Client{Transport: &http.Transport{}},
	}
	go func() { s.served <- s.srv.Serve(ln) }()
	s.client = s3.New(s3.Options{
		Region:       "us-east-1",
		BaseEndpoint: aws.String(s.url),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s3AccessKey, s3SecretKey, ""),
		HTTPClient:   s.hc,
	})
	var b [6]byte
	rand.Read(b[:])
	s.bucket = "lv-kill-" + hex.EncodeToString(b[:])
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &s.bucket}); err != nil {
		s.close()
		return nil, fmt.Errorf("create bucket %s on the S3 emulator: %w", s.bucket, err)
	}
	return s, nil
}

// storageURL returns the --storage URL of prefix in the bucket.
func (s *s3Server) storageURL(prefix string) string {
	return fmt.Sprintf("s3://%s/%s?endpoint=%s&use_path_style=true&region=us-east-1", s.bucket, prefix, s.url)
}

// env returns the environment that gives the binary the emulator's credentials and
// keeps it away from any AWS configuration of the machine.
func (s *s3Server) env() []string {
	return []string{
		"AWS_ACCESS_KEY_ID=" + s3AccessKey,
		"AWS_SECRET_ACCESS_KEY=" + s3SecretKey,
		"AWS_SESSION_TOKEN=",
		"AWS_PROFILE=",
		"AWS_CONFIG_FILE=/dev/null",
		"AWS_SHARED_CREDENTIALS_FILE=/dev/null",
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// raw returns a rawStore over prefix.
func (s *s3Server) raw(prefix string) rawStore {
	return s3Store{client: s.client, bucket: s.bucket, prefix: strings.TrimSuffix(prefix, "/") + "/"}
}

func (s *s3Server) close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if serr := <-s.served; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	s.hc.CloseIdleConnections()
	return err
}

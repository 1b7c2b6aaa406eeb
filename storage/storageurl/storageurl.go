// Package storageurl opens a storage backend from a URL:
//
//	file:///var/backups
//	s3://bucket/prefix?region=eu-west-1[&endpoint=http://127.0.0.1:9000&use_path_style=true]
//	gs://bucket/prefix
//	azblob://container/prefix[?service_url=http://127.0.0.1:10000/devstoreaccount1]
//
// Credentials come from each cloud's standard sources (see docs/object-storage.md);
// they never need to be part of the URL.
package storageurl

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"

	gcs "cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/service"
	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	smithylog "github.com/aws/smithy-go/logging"
	"google.golang.org/api/option"

	"github.com/ledgervault/ledgervault/storage"
	azstore "github.com/ledgervault/ledgervault/storage/azure"
	gcsstore "github.com/ledgervault/ledgervault/storage/gcs"
	"github.com/ledgervault/ledgervault/storage/local"
	s3store "github.com/ledgervault/ledgervault/storage/s3"
)

// Schemes lists the supported URL schemes.
var Schemes = []string{"file", "s3", "gs", "azblob"}

// Open returns the store rawURL names, for a writer: a local directory is created
// if it does not exist. For object stores it checks that the bucket or container
// exists and is reachable (it is never created: a missing one is a
// *storage.StoreNotFoundError), so a bad configuration fails here with a permanent
// error rather than in the middle of a backup. Closing the store releases the
// clients Open created.
func Open(ctx context.Context, rawURL string) (storage.Store, error) {
	return open(ctx, rawURL, true)
}

// OpenExisting returns the existing store rawURL names, for a reader: it creates
// nothing, and a store that does not exist (a local directory without its metadata
// folder, a missing bucket or container) is a *storage.StoreNotFoundError naming
// the URL.
func OpenExisting(ctx context.Context, rawURL string) (storage.Store, error) {
	return open(ctx, rawURL, false)
}

func open(ctx context.Context, rawURL string, create bool) (storage.Store, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, storage.ConfigError(fmt.Errorf("storage URL: %w", err))
	}
	q := u.Query()
	var st storage.Store
	switch u.Scheme {
	case "file":
		st, err = openFile(u, q, create)
	case "s3":
		st, err = openS3(ctx, u, q)
	case "gs":
		st, err = openGCS(ctx, u, q)
	case "azblob":
		st, err = openAzure(ctx, u, q)
	case "":
		return nil, storage.ConfigError(bareURLError(rawURL))
	default:
		return nil, storage.ConfigError(fmt.Errorf("storage URL %q: unsupported scheme %q (supported: %s)",
			redact(u), u.Scheme, strings.Join(Schemes, ", ")))
	}
	var nf *storage.StoreNotFoundError
	if errors.As(err, &nf) {
		// The URL the operator gave names the store better than a bucket or path.
		return nil, &storage.StoreNotFoundError{Store: redact(u), Reason: nf.Reason}
	}
	if err != nil {
		return nil, fmt.Errorf("open storage %s: %w", redact(u), err)
	}
	return st, nil
}

// bareURLError is the error of a storage URL without a scheme: a local directory
// must be written file:///DIR. A bare path is not taken for one: a bucket name
// missing its s3:// would otherwise silently become a local directory.
func bareURLError(raw string) error {
	if raw == "" {
		return errors.New("storage URL is empty (file:///DIR, s3://BUCKET/PREFIX, gs://BUCKET/PREFIX or azblob://CONTAINER/PREFIX)")
	}
	hint := "file:///absolute/path"
	if abs, err := filepath.Abs(raw); err == nil {
		hint = (&url.URL{Scheme: "file", Path: abs}).String()
	}
	return fmt.Errorf("storage URL %q has no scheme: for a local directory use %s (supported schemes: %s)",
		raw, hint, strings.Join(Schemes, ", "))
}

// redact hides secrets given as query parameters.
func redact(u *url.URL) string {
	c := *u
	q := c.Query()
	if q.Has("secret_access_key") {
		q.Set("secret_access_key", "REDACTED")
		c.RawQuery = q.Encode()
	}
	return c.String()
}

// params checks that q holds only the allowed keys, so a misspelled option fails
// instead of being ignored.
func params(q url.Values, allowed ...string) error {
	for k := range q {
		switch {
		case len(allowed) == 0:
			return storage.ConfigError(fmt.Errorf("unknown query parameter %q (this scheme takes none)", k))
		case !slices.Contains(allowed, k):
			return storage.ConfigError(fmt.Errorf("unknown query parameter %q (allowed: %s)", k, strings.Join(allowed, ", ")))
		}
	}
	return nil
}

func intParam(q url.Values, key string) (int, error) {
	v := q.Get(key)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0, storage.ConfigError(fmt.Errorf("query parameter %s=%q: want a positive integer", key, v))
	}
	return n, nil
}

func bucketAndPrefix(u *url.URL, what string) (string, string, error) {
	if u.Host == "" {
		return "", "", storage.ConfigError(fmt.Errorf("%s name missing (%s://%s/prefix)", what, u.Scheme, what))
	}
	return u.Host, strings.Trim(u.Path, "/"), nil
}

func openFile(u *url.URL, q url.Values, create bool) (storage.Store, error) {
	if err := params(q); err != nil {
		return nil, err
	}
	if u.Host != "" && u.Host != "localhost" {
		return nil, storage.ConfigError(fmt.Errorf("file URL with host %q: use file:///absolute/path", u.Host))
	}
	if u.Path == "" {
		return nil, storage.ConfigError(errors.New("file URL without a path: use file:///absolute/path"))
	}
	if create {
		return local.New(u.Path)
	}
	return local.Open(u.Path)
}

// closing adds the release of the clients Open created to a store's Close.
type closing struct {
	storage.Store
	release func() error
}

func (c closing) Close() error { return errors.Join(c.Store.Close(), c.release()) }

func openS3(ctx context.Context, u *url.URL, q url.Values) (storage.Store, error) {
	if err := params(q, "region", "endpoint", "use_path_style", "part_size", "access_key_id", "secret_access_key"); err != nil {
		return nil, err
	}
	bucket, prefix, err := bucketAndPrefix(u, "bucket")
	if err != nil {
		return nil, err
	}
	part, err := intParam(q, "part_size")
	if err != nil {
		return nil, err
	}
	pathStyle := false
	if v := q.Get("use_path_style"); v != "" {
		if pathStyle, err = strconv.ParseBool(v); err != nil {
			return nil, storage.ConfigError(fmt.Errorf("query parameter use_path_style=%q: want true or false", v))
		}
	}
	// A buildable client (the config adds AWS_CA_BUNDLE to it, and clones it to do
	// so) whose transports are recorded, so Close can drop idle connections.
	var trs transports
	hc := awshttp.NewBuildableClient().WithTransportOptions(trs.record)
	// The SDK's own logger prints unstructured "SDK <time> WARN ..." lines to stderr
	// (e.g. a response without a checksum); route them into the process's slog logger.
	opts := []func(*awsconfig.LoadOptions) error{awsconfig.WithHTTPClient(hc), awsconfig.WithLogger(sdkLogger{})}
	if r := q.Get("region"); r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	}
	if id, secret := q.Get("access_key_id"), q.Get("secret_access_key"); id != "" || secret != "" {
		opts = append(opts, awsconfig.WithCredentialsProvider(credentials.NewStaticCredentialsProvider(id, secret, "")))
	}
	cfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, storage.ConfigError(fmt.Errorf("aws configuration: %w", err))
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		if ep := q.Get("endpoint"); ep != "" {
			o.BaseEndpoint = aws.String(ep)
		}
		o.UsePathStyle = pathStyle
	})
	st, err := s3store.New(client, s3store.Config{Bucket: bucket, Prefix: prefix, PartSize: part})
	if err != nil {
		return nil, err
	}
	if err := st.Check(ctx); err != nil {
		trs.closeIdle()
		return nil, err
	}
	return closing{st, func() error { trs.closeIdle(); return nil }}, nil
}

// sdkLogger is the AWS SDK's logger: it writes each SDK message as a record of
// slog.Default() (the commands make their configured logger the default), with
// component=aws-sdk, so that JSON logs stay JSON.
type sdkLogger struct{}

// Logf implements the SDK's logging.Logger.
func (sdkLogger) Logf(c smithylog.Classification, format string, v ...any) {
	level := slog.LevelInfo
	switch c {
	case smithylog.Warn:
		level = slog.LevelWarn
	case smithylog.Debug:
		level = slog.LevelDebug
	}
	slog.Default().Log(context.Background(), level, fmt.Sprintf(format, v...), "component", "aws-sdk")
}

// transports records the HTTP transports an AWS client builds.
type transports struct {
	mu  sync.Mutex
	all []*http.Transport
}

func (t *transports) record(tr *http.Transport) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.all = append(t.all, tr)
}

func (t *transports) closeIdle() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tr := range t.all {
		tr.CloseIdleConnections()
	}
}

func openGCS(ctx context.Context, u *url.URL, q url.Values) (storage.Store, error) {
	if err := params(q, "chunk_size"); err != nil {
		return nil, err
	}
	bucket, prefix, err := bucketAndPrefix(u, "bucket")
	if err != nil {
		return nil, err
	}
	chunk, err := intParam(q, "chunk_size")
	if err != nil {
		return nil, err
	}
	// STORAGE_EMULATOR_HOST, when set, is honoured by the client itself.
	opts := []option.ClientOption{gcs.WithJSONReads()}
	client, err := gcs.NewClient(ctx, opts...)
	if err != nil {
		return nil, storage.ConfigError(fmt.Errorf("gcs client: %w", err))
	}
	st, err := gcsstore.New(client, gcsstore.Config{Bucket: bucket, Prefix: prefix, ChunkSize: chunk})
	if err == nil {
		err = st.Check(ctx)
	}
	if err != nil {
		_ = client.Close()
		return nil, err
	}
	return closing{st, client.Close}, nil
}

func openAzure(ctx context.Context, u *url.URL, q url.Values) (storage.Store, error) {
	if err := params(q, "service_url", "endpoint", "block_size"); err != nil {
		return nil, err
	}
	name, prefix, err := bucketAndPrefix(u, "container")
	if err != nil {
		return nil, err
	}
	block, err := intParam(q, "block_size")
	if err != nil {
		return nil, err
	}
	serviceURL := q.Get("service_url")
	if serviceURL == "" {
		serviceURL = q.Get("endpoint")
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	copts := &service.ClientOptions{ClientOptions: azcore.ClientOptions{Transport: &http.Client{Transport: tr}}}
	var svc *service.Client
	switch account, key, conn := os.Getenv("AZURE_STORAGE_ACCOUNT"), os.Getenv("AZURE_STORAGE_KEY"), os.Getenv("AZURE_STORAGE_CONNECTION_STRING"); {
	case account != "" && key != "":
		if serviceURL == "" {
			serviceURL = "https://" + account + ".blob.core.windows.net/"
		}
		cred, cerr := service.NewSharedKeyCredential(account, key)
		if cerr != nil {
			return nil, storage.ConfigError(fmt.Errorf("azure shared key: %w", cerr))
		}
		svc, err = service.NewClientWithSharedKeyCredential(serviceURL, cred, copts)
	case conn != "":
		if serviceURL != "" {
			return nil, storage.ConfigError(errors.New("azure: service_url cannot be combined with AZURE_STORAGE_CONNECTION_STRING (put BlobEndpoint in the connection string)"))
		}
		svc, err = service.NewClientFromConnectionString(conn, copts)
	default:
		return nil, storage.ConfigError(errors.New("azure credentials missing: set AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY, or AZURE_STORAGE_CONNECTION_STRING"))
	}
	if err != nil {
		return nil, storage.ConfigError(fmt.Errorf("azure client: %w", err))
	}
	c := svc.NewContainerClient(name)
	st, err := azstore.New(c, azstore.Config{Prefix: prefix, BlockSize: block})
	if err == nil {
		err = st.Check(ctx)
	}
	if err != nil {
		tr.CloseIdleConnections()
		return nil, err
	}
	return closing{st, func() error { tr.CloseIdleConnections(); return nil }}, nil
}

package killcampaign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/klauspost/compress/zstd"
	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

func TestMain(m *testing.M) {
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// chunk returns a zstd chunk of n records.
func chunk(t testing.TB, n int) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf, zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	rw := records.NewWriter(zw)
	for i := 0; i < n; i++ {
		if err := rw.WriteRecord(bytes.Repeat([]byte{byte(i)}, 100+i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := rw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func file(h string, b []byte) native.File {
	return native.File{Handle: storage.FileHandle(h), Size: int64(len(b)), RawSize: int64(len(b)), SHA256: sha256.Sum256(b)}
}

// store writes a directory store holding one referenced transaction backup and one
// unreferenced folder with a committed chunk.
func store(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	write := func(rel string, b []byte) {
		p := filepath.Join(root, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := chunk(t, 10)
	proof := []byte("proof bytes, checked by size and hash only when referenced")
	m := &native.Transaction{Format: native.FormatVersion, FirstVersion: 0, LastVersion: 9, Chunks: []native.TransactionChunk{{
		FirstVersion: 0, LastVersion: 9,
		File:  file("transaction_0-9-aaaa/txn-000000000000.zst", c),
		Proof: file("transaction_0-9-aaaa/txn-000000000000.proof", proof),
	}}}
	mb, err := native.Encode(m)
	if err != nil {
		t.Fatal(err)
	}
	write("transaction_0-9-aaaa/txn-000000000000.zst", c)
	write("transaction_0-9-aaaa/txn-000000000000.proof", proof)
	write("transaction_0-9-aaaa/manifest.json", mb)
	md := native.Metadata{Format: native.FormatVersion, Type: native.TypeTransaction, FirstVersion: 0, LastVersion: 9,
		Manifest: "transaction_0-9-aaaa/manifest.json"}
	line, err := md.EncodeLine()
	if err != nil {
		t.Fatal(err)
	}
	write("metadata/transaction_0-9.meta", line)
	write("metadata/coordinator.lease", []byte(`{"owner":"x"}`))
	write("transaction_10-19-bbbb/txn-000000000010.zst", chunk(t, 5))
	write("transaction_10-19-bbbb/.tmp-txn-000000000015.zst-123", c[:len(c)/2])
	return root
}

func TestCheckComplete(t *testing.T) {
	root := store(t)
	c, err := checkStorage(context.Background(), dirStore{root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Bad() != 0 || c.Files != 6 || c.Temp != 1 || c.Metadata != 1 || c.Referenced != 1 || c.Unreferenced != 1 {
		t.Fatalf("check %+v", c)
	}
}

func TestCheckFindsPartialFiles(t *testing.T) {
	cases := map[string]struct {
		mutate  func(root string) error
		missing bool
		want    string
	}{
		"truncated unreferenced chunk": {mutate: func(root string) error {
			return truncateFile(filepath.Join(root, "transaction_10-19-bbbb/txn-000000000010.zst"), 0.6)
		}, want: "txn-000000000010.zst"},
		"chunk cut at a frame boundary keeps no trailer": {mutate: func(root string) error {
			// A complete zstd frame whose records stream lacks its trailer.
			var buf bytes.Buffer
			zw, _ := zstd.NewWriter(&buf)
			zw.Write([]byte{0, 0, 0, 3, 'a', 'b', 'c'})
			zw.Close()
			return os.WriteFile(filepath.Join(root, "transaction_10-19-bbbb/txn-000000000020.zst"), buf.Bytes(), 0o644)
		}, want: "truncated"},
		"referenced chunk with other bytes of the same size": {mutate: func(root string) error {
			p := filepath.Join(root, "transaction_0-9-aaaa/txn-000000000000.zst")
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			b[len(b)-1] ^= 1
			return os.WriteFile(p, b, 0o644)
		}, want: "sha256"},
		"truncated referenced proof": {mutate: func(root string) error {
			return truncateFile(filepath.Join(root, "transaction_0-9-aaaa/txn-000000000000.proof"), 0.5)
		}, want: "size"},
		"truncated manifest in an unreferenced folder": {mutate: func(root string) error {
			b, err := os.ReadFile(filepath.Join(root, "transaction_0-9-aaaa/manifest.json"))
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(root, "transaction_10-19-bbbb/manifest.json"), b[:len(b)/2], 0o644)
		}, want: "manifest"},
		"truncated metadata": {mutate: func(root string) error {
			return os.WriteFile(filepath.Join(root, "metadata/transaction_10-19.meta"), []byte(`{"format":1,"type":"transac`), 0o644)
		}, want: "metadata"},
		"truncated lease": {mutate: func(root string) error {
			return os.WriteFile(filepath.Join(root, "metadata/coordinator.lease"), []byte(`{"owner":`), 0o644)
		}, want: "lease"},
		"missing referenced file": {mutate: func(root string) error {
			return os.Remove(filepath.Join(root, "transaction_0-9-aaaa/txn-000000000000.proof"))
		}, missing: true, want: "missing"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			root := store(t)
			if err := tc.mutate(root); err != nil {
				t.Fatal(err)
			}
			c, err := checkStorage(context.Background(), dirStore{root}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.Bad() != 1 || (c.Missing == 1) != tc.missing {
				t.Fatalf("check %+v, want one bad file", c)
			}
			if !strings.Contains(strings.Join(c.Problems, "\n"), tc.want) {
				t.Fatalf("problems %q do not mention %q", c.Problems, tc.want)
			}
		})
	}
}

func TestCheckerCachesCompleteFilesOnly(t *testing.T) {
	root := store(t)
	ck := newChecker(dirStore{root})
	if c, err := ck.run(context.Background()); err != nil || c.Bad() != 0 {
		t.Fatalf("first check: %+v, %v", c, err)
	}
	// A file that changed size is checked again.
	if err := truncateFile(filepath.Join(root, "transaction_10-19-bbbb/txn-000000000010.zst"), 0.5); err != nil {
		t.Fatal(err)
	}
	c, err := ck.run(context.Background())
	if err != nil || c.Partial != 1 {
		t.Fatalf("second check: %+v, %v", c, err)
	}
}

func TestCheckTempNameInMetadata(t *testing.T) {
	root := store(t)
	md := native.Metadata{Format: native.FormatVersion, Type: native.TypeTransaction, FirstVersion: 10, LastVersion: 19,
		Manifest: "transaction_10-19-bbbb/.tmp-manifest.json-1"}
	line, err := md.EncodeLine()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "metadata/transaction_10-19.meta"), line, 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := checkStorage(context.Background(), dirStore{root}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.TempAsFinal != 1 {
		t.Fatalf("check %+v, want the temporary manifest named", c)
	}
}

func truncateFile(p string, frac float64) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	return os.Truncate(p, int64(float64(fi.Size())*frac))
}

func TestCoverageAndAlignment(t *testing.T) {
	root := store(t)
	cov, err := coverage(context.Background(), dirStore{root})
	if err != nil || cov.txnNext != 10 || cov.lines != 1 {
		t.Fatalf("coverage %+v, %v", cov, err)
	}
	for _, c := range [][3]uint64{{0, 200, 199}, {199, 200, 199}, {200, 200, 399}, {1234, 100, 1299}} {
		if got := alignedEnd(c[0], c[1]); got != c[2] {
			t.Errorf("alignedEnd(%d, %d) = %d, want %d", c[0], c[1], got, c[2])
		}
	}
}

func TestS3Store(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv, err := startS3(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.close()
	raw := srv.raw("p/q").(s3Store)
	key := raw.prefix + "transaction_10-19-bbbb/txn-000000000010.zst"
	body := chunk(t, 3)
	if _, err := srv.client.PutObject(ctx, putInput(srv.bucket, key, body)); err != nil {
		t.Fatal(err)
	}
	c, err := checkStorage(ctx, raw, nil)
	if err != nil || c.Files != 1 || c.Bad() != 0 || c.OpenUploads != 0 {
		t.Fatalf("check %+v, %v", c, err)
	}
	if _, err := srv.client.PutObject(ctx, putInput(srv.bucket, raw.prefix+"transaction_10-19-bbbb/txn-000000000011.zst", body[:len(body)-3])); err != nil {
		t.Fatal(err)
	}
	if c, err = checkStorage(ctx, raw, nil); err != nil || c.Partial != 1 {
		t.Fatalf("check %+v, %v", c, err)
	}
}

// FuzzDecodeChunk feeds arbitrary bytes to the chunk decoder: errors, never a panic
// or unbounded memory.
func FuzzDecodeChunk(f *testing.F) {
	f.Add(chunk(f, 3))
	f.Add(chunk(f, 0))
	f.Add([]byte{0x28, 0xb5, 0x2f, 0xfd})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeChunk(context.Background(), bytes.NewReader(b), "b/x.zst")
	})
}

// FuzzCheckSmallFile feeds arbitrary bytes to every small-file decoder.
func FuzzCheckSmallFile(f *testing.F) {
	f.Add("metadata", "x.meta", []byte(`{"format":1,"type":"transaction","manifest":"a/manifest.json"}`))
	f.Add("metadata", "x.lease", []byte(`{}`))
	f.Add("b", "manifest.json", []byte(`{"format":1}`))
	f.Add("b", "state_root.proof", []byte{0x83, 0x40, 0x40, 0x40})
	f.Add("b", "state-000000000000.proof", []byte{0, 1, 2})
	f.Add("b", "txn-000000000000.proof", []byte{0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, folder, name string, b []byte) {
		checkSmallFile(folder, name, b)
	})
}

func putInput(bucket, key string, body []byte) *s3.PutObjectInput {
	return &s3.PutObjectInput{Bucket: &bucket, Key: &key, Body: bytes.NewReader(body)}
}

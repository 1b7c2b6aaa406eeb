package txn

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
)

// gzipDir opens handles under a directory through gzip -cd, as the corpus's own
// command-adapter config (open_for_read: gzip -cd) does.
type gzipDir string

type gzipFile struct {
	*gzip.Reader
	f *os.File
}

func (g gzipFile) Close() error { g.Reader.Close(); return g.f.Close() }

func (d gzipDir) Open(_ context.Context, h storage.FileHandle) (io.ReadCloser, error) {
	f, err := os.Open(filepath.Join(string(d), string(h)))
	if err != nil {
		return nil, err
	}
	zr, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return gzipFile{zr, f}, nil
}

func TestVerifyBackupsOfCorpus(t *testing.T) {
	root := corpusPath(t)
	open := gzipDir(root)
	manifests, err := filepath.Glob(filepath.Join(root, "transaction_*", "transaction.manifest"))
	if err != nil || len(manifests) != 4 {
		t.Fatalf("manifests %v, %v", manifests, err)
	}
	var total uint64
	for _, p := range manifests {
		m, err := decodeManifest(gunzip(t, p))
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		var seen []*aptos.LedgerInfoWithSignatures
		verifier := LedgerInfoVerifierFunc(func(_ context.Context, li *aptos.LedgerInfoWithSignatures) error {
			seen = append(seen, li)
			return nil
		})
		st, err := VerifyBackup(context.Background(), open, m, Options{LedgerInfo: verifier})
		if m.FirstVersion == 0 {
			// The archive did not publish the genesis chunk: its absence is reported as
			// such, naming the file, and is not a verification failure.
			if !errors.Is(err, fs.ErrNotExist) || !strings.Contains(err.Error(), "transaction_0-.b220/0-.chunk") {
				t.Fatalf("genesis backup: %v", err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		if st.Chunks != len(m.Chunks) || st.Total.Transactions != m.LastVersion-m.FirstVersion+1 {
			t.Fatalf("%s: %+v", p, st)
		}
		// Every chunk's ledger info went to the verifier, and the hash domain detected
		// from the records is libra7's.
		if len(seen) != len(m.Chunks) || seen[len(seen)-1].LedgerInfo.Version() < m.LastVersion {
			t.Fatalf("%s: verifier saw %d ledger infos", p, len(seen))
		}
		if st.Total.Domain != "DIEM::" {
			t.Fatalf("%s: domain %q", p, st.Total.Domain)
		}
		t.Logf("%s: %+v", m.Chunks[0].Transactions, st.Total)
		total += st.Total.Transactions
	}
	if total != 60000 {
		t.Fatalf("verified %d transactions", total)
	}
}

// decodeManifest decodes a transaction manifest the way a caller of VerifyBackup
// does (backupcli's decoder) and applies VerifyBackup's manifest check.
func decodeManifest(b []byte) (*backupcli.TransactionManifest, error) {
	m, err := backupcli.DecodeTransactionManifest(b)
	if err != nil {
		return nil, err
	}
	return m, checkManifest(m)
}

func TestDecodeManifestRejects(t *testing.T) {
	good := `{"first_version":1,"last_version":20,"chunks":[{"first_version":1,"last_version":10,"transactions":"t/1-.chunk","proof":"t/1-10.proof"},{"first_version":11,"last_version":20,"transactions":"t/11-.chunk","proof":"t/11-20.proof"}]}`
	if _, err := decodeManifest([]byte(good)); err != nil {
		t.Fatal(err)
	}
	for name, m := range map[string]string{
		"gap":           strings.Replace(good, `"first_version":11`, `"first_version":12`, 1),
		"short":         strings.Replace(good, `"last_version":20,"chunks"`, `"last_version":21,"chunks"`, 1),
		"reversed":      `{"first_version":5,"last_version":4,"chunks":[]}`,
		"no chunks":     `{"first_version":1,"last_version":4,"chunks":[]}`,
		"dotdot handle": strings.Replace(good, `t/1-.chunk`, `../1-.chunk`, 1),
		"absolute":      strings.Replace(good, `t/1-10.proof`, `/etc/passwd`, 1),
		"trailing":      good + `{}`,
		"not json":      `{"first_version":`,
		"negative":      strings.Replace(good, `"first_version":1,"last_version":20`, `"first_version":-1,"last_version":20`, 1),
		"huge":          `{"first_version":1,"last_version":18446744073709551615,"chunks":[{"first_version":1,"last_version":18446744073709551615,"transactions":"a","proof":"b"}]}`,
	} {
		if _, err := decodeManifest([]byte(m)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := decodeManifest(make([]byte, backupcli.MaxManifestSize+1)); err == nil {
		t.Error("oversized manifest accepted")
	}
}

// FuzzDecodeManifest feeds DecodeManifest mutations of the corpus's manifests: no panic,
// and an accepted manifest covers its range with consecutive chunks.
func FuzzDecodeManifest(f *testing.F) {
	root := corpusPath(f)
	manifests, _ := filepath.Glob(filepath.Join(root, "transaction_*", "transaction.manifest"))
	for _, p := range manifests {
		f.Add(gunzip(f, p))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeManifest(b)
		if err != nil {
			return
		}
		next := m.FirstVersion
		for _, c := range m.Chunks {
			if c.FirstVersion != next || c.LastVersion < c.FirstVersion {
				t.Fatalf("accepted %+v", m)
			}
			next = c.LastVersion + 1
		}
		if next-1 != m.LastVersion {
			t.Fatalf("accepted %+v", m)
		}
	})
}

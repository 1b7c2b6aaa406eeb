package backup_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/internal/testchain"
	"github.com/ledgervault/ledgervault/internal/testmain"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/s3"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func TestMain(m *testing.M) { testmain.Run(m, "backup-test") }

var testSecret = []byte("backup-test")

// testChain is a store with a chain and the backup service over it.
type testChain struct {
	db   *ledgerdb.DB
	wp   ledger.Waypoint
	addr string
	svc  *backupservice.Client
}

var chainCfg = devnet.Config{Secret: testSecret, EpochLength: 50, BlockSize: 20, GenesisAccounts: 200, LargeValueEvery: 50, LargeValueSize: 2000}

// newTestChain commits a chain up to last, with extra accounts, and serves it.
func newTestChain(t testing.TB, last, accounts uint64) *testChain {
	t.Helper()
	c := testchain.New(t, chainCfg, last, testchain.Options{Accounts: accounts})
	return &testChain{db: c.DB, wp: c.Waypoint, addr: c.Addr, svc: c.Service}
}

// storeKind names a real backend and where its files live on disk (if they do).
type storeKind struct {
	name string
	open func(t testing.TB) (st storage.Store, root string)
	// tempLeft: an aborted write may leave a hidden temporary file (the shell sample's
	// killed script cannot remove its mktemp file; abort_stale_uploads sweeps them).
	tempLeft bool
	// slow: every file costs a child process (and a guard re-exec of the test binary).
	slow bool
}

func localStore(t testing.TB) (storage.Store, string) {
	root := t.TempDir()
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, root
}

func shellStore(t testing.TB) (storage.Store, string) {
	root := t.TempDir()
	cfg, err := shell.Sample("local", map[string]string{"ROOT": root})
	if err != nil {
		t.Fatal(err)
	}
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, root
}

// s3Store runs gofakes3 in process (PutObject honours If-None-Match: *; the test
// files stay below one part, so no multipart completion is involved).
func s3Store(t testing.TB) (storage.Store, string) {
	faker := gofakes3.New(s3mem.New())
	srv := httptest.NewServer(faker.Server())
	t.Cleanup(srv.Close)
	cl := awss3.New(awss3.Options{
		Region: "us-east-1", BaseEndpoint: aws.String(srv.URL), UsePathStyle: true,
		Credentials: credentials.NewStaticCredentialsProvider("k", "s", ""), HTTPClient: srv.Client(),
	})
	bucket := "backup-test"
	if _, err := cl.CreateBucket(context.Background(), &awss3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	idleMu.Lock()
	idleClients = append(idleClients, srv.Client())
	idleMu.Unlock()
	st, err := s3.New(cl, s3.Config{Bucket: bucket})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, ""
}

var stores = []storeKind{{name: "local", open: localStore}, {name: "shell", open: shellStore, tempLeft: true, slow: true}, {name: "s3", open: s3Store}}

// failNth returns st wrapped so that the n-th call of op (Create, Write or Commit,
// counted over the whole store from 1) fails with storagetest.ErrInjected before it
// reaches st.
func failNth(st storage.Store, op storagetest.Op, n int64) *storagetest.FaultStore {
	return storagetest.NewFaultStore(st, storagetest.Nth(op, n, storagetest.Fault{Mode: storagetest.FailBefore}))
}

// checkNoMetadata fails if any metadata file exists.
func checkNoMetadata(t testing.TB, st storage.Store) {
	t.Helper()
	hs, err := st.ListMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(hs) != 0 {
		t.Fatalf("metadata after a failed backup: %v", hs)
	}
}

// checkFilesComplete checks every visible file under root (a local or shell store's
// directory): chunks decode as complete zstd record streams with their trailer,
// proofs and manifests decode. Hidden files (writers' temporary files) may only
// remain if allowTemp (a killed process cannot clean them up: gc does).
func checkFilesComplete(t testing.TB, root string, allowTemp bool) (files int) {
	t.Helper()
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		name := d.Name()
		rel, _ := filepath.Rel(root, p)
		if strings.HasPrefix(name, ".") {
			if !allowTemp {
				return fmt.Errorf("temporary file left behind: %s", rel)
			}
			return nil
		}
		files++
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if err := checkFileBytes(name, data); err != nil {
			return fmt.Errorf("%s: %w", rel, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// checkFileBytes decodes one stored file by its kind.
func checkFileBytes(name string, data []byte) error {
	switch {
	case strings.HasSuffix(name, ".zst"):
		_, err := decodeChunk(data, func([]byte) error { return nil })
		return err
	case strings.HasPrefix(name, "state-") && strings.HasSuffix(name, ".proof"):
		_, err := smt.DecodeRangeProof(data)
		return err
	case name == "state_root.proof":
		_, err := proof.DecodeStateRoot(data)
		return err
	case strings.HasPrefix(name, "txn-") && strings.HasSuffix(name, ".proof"):
		_, err := proof.DecodeTransactionRange(data)
		return err
	case name == native.ManifestName:
		for _, dec := range []func([]byte) error{
			func(b []byte) error { _, err := native.DecodeStateSnapshot(b); return err },
			func(b []byte) error { _, err := native.DecodeTransaction(b); return err },
			func(b []byte) error { _, err := native.DecodeEpochEnding(b); return err },
		} {
			if dec(data) == nil {
				return nil
			}
		}
		return errors.New("manifest decodes as no manifest type")
	case strings.HasSuffix(name, ".meta"):
		_, err := native.DecodeMetadataFile(name, data)
		return err
	}
	return fmt.Errorf("unexpected file %s", name)
}

// decodeChunk decodes a chunk with the format's chunk decoder and calls fn for every
// record; the stream must end with its checked trailer.
func decodeChunk(data []byte, fn func(rec []byte) error) (uint64, error) {
	var n uint64
	_, err := native.ScanChunk(context.Background(), bytes.NewReader(data), "in-memory", native.Limits{}, func(rec []byte) error {
		n++
		return fn(rec)
	})
	return n, err
}

// readFile reads a file listed in a manifest and checks its size and SHA-256.
func readFile(t testing.TB, st storage.Store, f native.File) []byte {
	t.Helper()
	r, err := st.Open(context.Background(), f.Handle)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	data, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read %s: %v", f.Handle, err)
	}
	if int64(len(data)) != f.Size || sha256.Sum256(data) != [32]byte(f.SHA256) {
		t.Fatalf("%s: %d bytes, sha256 %x; manifest says %d bytes, %s", f.Handle, len(data), sha256.Sum256(data), f.Size, f.SHA256)
	}
	return data
}

// history walks the epoch history from the chain's waypoint through the service.
func (tc *testChain) history(t testing.TB) *ledger.EpochHistory {
	t.Helper()
	ctx := context.Background()
	ds, err := tc.svc.DBState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s, err := tc.svc.EpochEndingLedgerInfos(ctx, 0, ds.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var h *ledger.EpochHistory
	for s.Next() {
		li, err := s.LedgerInfo()
		if err != nil {
			t.Fatal(err)
		}
		if h == nil {
			h, err = ledger.NewEpochHistory(tc.wp, &li.LedgerInfo)
		} else {
			err = h.Append(&li)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Err(); err != nil {
		t.Fatal(err)
	}
	return h
}

// verifyBackup reads a completed backup back through its metadata and verifies every
// file against its manifest and every proof against ledger infos signed by the
// validators of the chain's epoch history.
func verifyBackup(t testing.TB, tc *testChain, st storage.Store, res *backup.Result) {
	t.Helper()
	ctx := context.Background()
	hs, err := st.ListMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var meta *native.Metadata
	for _, h := range hs {
		r, err := st.Open(ctx, h)
		if err != nil {
			t.Fatal(err)
		}
		b, err := native.ReadLimited(r, native.MaxMetadataSize, string(h))
		r.Close()
		if err != nil {
			t.Fatal(err)
		}
		ms, err := native.DecodeMetadataFile(string(h), b)
		if err != nil {
			t.Fatal(err)
		}
		for i := range ms {
			if ms[i].Manifest == res.Metadata.Manifest {
				meta = &ms[i]
			}
		}
	}
	if meta == nil {
		t.Fatalf("no metadata names manifest %s", res.Metadata.Manifest)
	}
	mr, err := st.Open(ctx, meta.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	mb, err := native.ReadLimited(mr, native.MaxManifestSize, "manifest")
	mr.Close()
	if err != nil {
		t.Fatal(err)
	}
	hist := tc.history(t)
	switch meta.Type {
	case native.TypeStateSnapshot:
		m, err := native.DecodeStateSnapshot(mb)
		if err != nil {
			t.Fatal(err)
		}
		rp, err := proof.DecodeStateRoot(readFile(t, st, m.RootProof))
		if err != nil {
			t.Fatal(err)
		}
		if err := hist.Verify(&rp.LedgerInfo); err != nil {
			t.Fatalf("state root proof's ledger info: %v", err)
		}
		root, err := rp.Verify(m.Version, &rp.LedgerInfo.LedgerInfo)
		if err != nil || root != m.RootHash {
			t.Fatalf("state root proof: %v (root %s, manifest %s)", err, root, m.RootHash)
		}
		ver := smt.NewChunkVerifier(root)
		for _, c := range m.Chunks {
			var leaves []smt.Leaf
			n, err := decodeChunk(readFile(t, st, c.File), func(rec []byte) error {
				k, v, err := records.SplitKeyValue(rec, 1<<16)
				if err != nil {
					return err
				}
				leaves = append(leaves, smt.Leaf{KeyHash: smt.KeyHash(k), ValueHash: smt.ValueHash(v)})
				return nil
			})
			if err != nil || n != c.LastIndex-c.FirstIndex+1 {
				t.Fatalf("chunk %s: %d records, %v", c.Handle, n, err)
			}
			if leaves[0].KeyHash != c.FirstKeyHash || leaves[len(leaves)-1].KeyHash != c.LastKeyHash {
				t.Fatalf("chunk %s: key hashes differ from the manifest", c.Handle)
			}
			proof, err := smt.DecodeRangeProof(readFile(t, st, c.Proof))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ver.AddChunk(leaves, proof); err != nil {
				t.Fatalf("chunk %s: %v", c.Handle, err)
			}
		}
		if _, _, err := ver.Finish(); err != nil {
			t.Fatal(err)
		}
	case native.TypeTransaction:
		m, err := native.DecodeTransaction(mb)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range m.Chunks {
			var hashes []ledger.Hash
			_, err := decodeChunk(readFile(t, st, c.File), func(rec []byte) error {
				txn, err := ledger.DecodeTransactionWithOutput(rec)
				if err != nil {
					return err
				}
				hashes = append(hashes, txn.Info.Hash())
				return nil
			})
			if err != nil || uint64(len(hashes)) != c.LastVersion-c.FirstVersion+1 {
				t.Fatalf("chunk %s: %d txns, %v", c.Handle, len(hashes), err)
			}
			p, err := proof.DecodeTransactionRange(readFile(t, st, c.Proof))
			if err != nil {
				t.Fatal(err)
			}
			if err := hist.Verify(&p.LedgerInfo); err != nil {
				t.Fatalf("chunk %s ledger info: %v", c.Handle, err)
			}
			li := p.LedgerInfo.LedgerInfo
			if err := accumulator.VerifyRange(li.AccumulatorRoot, li.Version+1, c.FirstVersion, hashes, p.Proof); err != nil {
				t.Fatalf("chunk %s: %v", c.Handle, err)
			}
		}
	case native.TypeEpochEnding:
		m, err := native.DecodeEpochEnding(mb)
		if err != nil {
			t.Fatal(err)
		}
		if m.FirstEpoch != 0 {
			t.Fatalf("test backups start at genesis, got epoch %d", m.FirstEpoch)
		}
		var h *ledger.EpochHistory
		i := 0
		for _, c := range m.Chunks {
			_, err := decodeChunk(readFile(t, st, c.File), func(rec []byte) error {
				li, err := ledger.DecodeLedgerInfoWithSignatures(rec)
				if err != nil {
					return err
				}
				if h == nil {
					h, err = ledger.NewEpochHistory(tc.wp, &li.LedgerInfo)
				} else {
					err = h.Append(&li)
				}
				if err != nil {
					return err
				}
				if ledger.NewWaypoint(&li.LedgerInfo) != m.Waypoints[i] {
					return fmt.Errorf("waypoint %d differs", i)
				}
				i++
				return nil
			})
			if err != nil {
				t.Fatalf("chunk %s: %v", c.Handle, err)
			}
		}
		if h == nil || h.LatestEpoch() != m.LastEpoch+1 {
			t.Fatalf("epoch history ends at %v", h)
		}
	default:
		t.Fatalf("type %s", meta.Type)
	}
}

// idleClients are HTTP clients whose idle keep-alive connections (a bounded pool,
// not a leak) settle closes before counting.
var (
	idleMu      sync.Mutex
	idleClients []interface{ CloseIdleConnections() }
)

// settle closes idle keep-alive connections, waits for goroutines to finish and
// returns the count.
func settle(base int) int {
	idleMu.Lock()
	for _, c := range idleClients {
		c.CloseIdleConnections()
	}
	idleMu.Unlock()
	n := runtime.NumGoroutine()
	for i := 0; i < 100 && n > base; i++ {
		time.Sleep(10 * time.Millisecond)
		n = runtime.NumGoroutine()
	}
	return n
}

func openFDs(t testing.TB) int {
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// checkNoChildren fails if a child process of the test remains after a grace.
func checkNoChildren(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Second)
	for {
		pids, err := storagetest.ChildProcesses()
		if err != nil {
			t.Fatal(err)
		}
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("child processes left: %s", proc.Describe(pids))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

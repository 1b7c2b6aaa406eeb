package audit_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/internal/testchain"
	"github.com/ledgervault/ledgervault/maintenance/compact"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

var nativeChainCfg = devnet.Config{Secret: []byte("audit-test"), EpochLength: 50, BlockSize: 20, GenesisAccounts: 200, LargeValueEvery: 50, LargeValueSize: 2000}

// smallOpts cut several chunks per backup out of a small chain.
var smallOpts = backup.Options{MaxChunkSize: 8 << 10, Concurrency: 2, StateRequestItems: 150, TransactionRequest: 60}

// nativeFixture is a store of ours with all three backup types, compacted
// metadata beside the files it covers (duplicate lines) and a lease file.
type nativeFixture struct {
	chain *testchain.Chain
	dir   string
	// snapshot is the state snapshot backed up; spare a later epoch-end version
	// with no snapshot, for an interrupted one.
	snapshot, spare uint64
	state, txn      *backup.Result
}

func newNativeFixture(t *testing.T) *nativeFixture {
	t.Helper()
	ctx := context.Background()
	c := testchain.New(t, nativeChainCfg, 400, testchain.Options{Accounts: 1000})
	fx := &nativeFixture{chain: c, dir: t.TempDir()}
	st := openNative(t, fx.dir)
	var err error
	if fx.snapshot, err = backup.EpochEndVersion(ctx, c.Service, 3); err != nil {
		t.Fatal(err)
	}
	if fx.spare, err = backup.EpochEndVersion(ctx, c.Service, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.EpochEnding(ctx, c.Service, st, 0, 7, smallOpts); err != nil {
		t.Fatal(err)
	}
	if fx.state, err = backup.StateSnapshot(ctx, c.Service, st, fx.snapshot, smallOpts); err != nil {
		t.Fatal(err)
	}
	if _, err := backup.Transactions(ctx, c.Service, st, 0, 200, smallOpts); err != nil {
		t.Fatal(err)
	}
	if fx.txn, err = backup.Transactions(ctx, c.Service, st, 200, 200, smallOpts); err != nil {
		t.Fatal(err)
	}
	// A compacted file holding every line, beside the files it covers.
	rep, err := compact.Run(ctx, st, compact.Options{})
	if err != nil || len(rep.Deleted) != 0 {
		t.Fatalf("compact: %+v %v", rep, err)
	}
	// A coordinator's lease: ledgervault's own, never a finding.
	if _, err := st.SaveMetadata(ctx, native.LeaseName(1), []byte(`{"holder":"test"}`)); err != nil {
		t.Fatal(err)
	}
	return fx
}

func openNative(t *testing.T, dir string) storage.Store {
	t.Helper()
	st, err := local.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// copyStore copies the fixture's store into a fresh directory.
func (fx *nativeFixture) copyStore(t *testing.T) string {
	t.Helper()
	dst := t.TempDir()
	if err := corpora.CopyTree(fx.dir, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func runNative(t *testing.T, st storage.Store) *audit.Report {
	t.Helper()
	rep, err := audit.Native(context.Background(), st, audit.Options{Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

// findings renders the findings as "kind handle" lines, sorted.
func findings(rep *audit.Report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, string(f.Kind)+" "+f.Handle)
	}
	sort.Strings(out)
	return out
}

func wantFindings(t *testing.T, rep *audit.Report, want ...string) {
	t.Helper()
	sort.Strings(want)
	got := findings(rep)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		var sb strings.Builder
		rep.WriteTable(&sb)
		t.Fatalf("findings:\n%s\nwant:\n%s\nreport:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"), sb.String())
	}
}

// readManifest decodes the state snapshot or transaction manifest of a result.
func readManifest(t *testing.T, dir string, h storage.FileHandle, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(string(h))))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func writeManifest(t *testing.T, dir string, h storage.FileHandle, v any) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, filepath.FromSlash(string(h))), b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func filePath(dir string, h storage.FileHandle) string {
	return filepath.Join(dir, filepath.FromSlash(string(h)))
}

func TestNativeAudit(t *testing.T) {
	fx := newNativeFixture(t)
	ctx := context.Background()
	var txnM native.Transaction
	readManifest(t, fx.dir, fx.txn.Metadata.Manifest, &txnM)
	var stateM native.StateSnapshot
	readManifest(t, fx.dir, fx.state.Metadata.Manifest, &stateM)
	if len(txnM.Chunks) < 2 || len(stateM.Chunks) < 2 {
		t.Fatalf("want several chunks: %d transaction chunks, %d state chunks", len(txnM.Chunks), len(stateM.Chunks))
	}

	t.Run("clean", func(t *testing.T) {
		rep := runNative(t, openNative(t, fx.dir))
		wantFindings(t, rep)
		// 4 backups, each file read: chunks, proofs and manifests.
		if rep.Format != "ledgervault" || rep.Backups != 4 || rep.MetadataFiles != 5 || rep.Files < 4+2*len(txnM.Chunks)+2*len(stateM.Chunks)+1 || !rep.UnreferencedChecked {
			t.Fatalf("report %+v", rep)
		}
	})

	t.Run("clean through the shell sample", func(t *testing.T) {
		dir := fx.copyStore(t)
		cfg, err := shell.Sample("local", map[string]string{"ROOT": dir})
		if err != nil {
			t.Fatal(err)
		}
		st, err := shell.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		wantFindings(t, runNative(t, st))
		// A flipped byte is seen through the adapter too.
		c := txnM.Chunks[1]
		flipByte(t, filePath(dir, c.Handle))
		rep := runNative(t, st)
		wantFindings(t, rep, "mismatch "+string(c.Handle))
		if !strings.Contains(rep.Findings[0].Detail, "SHA-256") {
			t.Fatalf("detail %q", rep.Findings[0].Detail)
		}
	})

	t.Run("leftovers of interrupted backups", func(t *testing.T) {
		dir := fx.copyStore(t)
		st := openNative(t, dir)
		svc := fx.chain.Service
		before := folderSet(t, st)
		// A transaction backup killed after two commits: a folder with chunks, no
		// manifest, no metadata.
		_, err := backup.Transactions(ctx, svc, storagetest.NewFaultStore(st, storagetest.Nth(storagetest.OpCommit, 3, storagetest.Fault{Mode: storagetest.FailBefore})), 0, 100, smallOpts)
		if !errors.Is(err, storagetest.ErrInjected) {
			t.Fatalf("interrupted transaction backup: %v", err)
		}
		// An epoch-ending backup whose metadata write failed: a committed manifest
		// that no metadata names.
		_, err = backup.EpochEnding(ctx, svc, storagetest.NewFaultStore(st, storagetest.Nth(storagetest.OpSaveMetadata, 1, storagetest.Fault{Mode: storagetest.FailBefore})), 0, 3, smallOpts)
		if !errors.Is(err, storagetest.ErrInjected) {
			t.Fatalf("epoch ending without metadata: %v", err)
		}
		// A state snapshot interrupted twice, then resumed to completion: the final
		// manifest (tag r2) reuses chunks of the earlier attempts; their root proofs
		// are left unreferenced.
		o := smallOpts
		o.Concurrency = 1
		if _, err := backup.StateSnapshot(ctx, svc, storagetest.NewFaultStore(st, storagetest.Nth(storagetest.OpCommit, 4, storagetest.Fault{Mode: storagetest.FailBefore})), fx.spare, o); !errors.Is(err, storagetest.ErrInjected) {
			t.Fatalf("attempt 1: %v", err)
		}
		folder, ok, err := backup.FindResumableStateSnapshot(ctx, st, fx.spare, time.Hour)
		if err != nil || !ok {
			t.Fatalf("no resumable folder: %v %v", ok, err)
		}
		// Before it completes, the whole folder is unreferenced.
		if _, _, err := backup.ResumeStateSnapshot(ctx, svc, storagetest.NewFaultStore(st, storagetest.Nth(storagetest.OpCommit, 3, storagetest.Fault{Mode: storagetest.FailBefore})), folder, fx.spare, o, nil); !errors.Is(err, storagetest.ErrInjected) {
			t.Fatalf("attempt 2: %v", err)
		}
		var leftFolders []string
		for f := range folderSet(t, st) {
			if !before[f] {
				leftFolders = append(leftFolders, "unreferenced "+string(f))
			}
		}
		if len(leftFolders) != 3 {
			t.Fatalf("leftover folders %v", leftFolders)
		}
		rep := runNative(t, st)
		wantFindings(t, rep, leftFolders...)
		for _, f := range rep.Findings {
			if !strings.Contains(f.Detail, "age ") || rep.Ages[f.Handle].Folder == "" {
				t.Fatalf("finding %+v without an age for gc", f)
			}
		}

		res, rd, err := backup.ResumeStateSnapshot(ctx, svc, st, folder, fx.spare, o, nil)
		if err != nil || rd.Chunks == 0 {
			t.Fatalf("attempt 3: reused %d chunks, %v", rd.Chunks, err)
		}
		if base := path.Base(string(res.Metadata.Manifest)); base != native.Tagged(native.ManifestName, native.AttemptTag(2)) {
			t.Fatalf("final manifest %s", base)
		}
		var m native.StateSnapshot
		readManifest(t, dir, res.Metadata.Manifest, &m)
		used := map[string]bool{string(res.Metadata.Manifest): true, string(m.RootProof.Handle): true}
		for _, c := range m.Chunks {
			used[string(c.Handle)], used[string(c.Proof.Handle)] = true, true
		}
		files, err := st.ListFiles(ctx, folder)
		if err != nil {
			t.Fatal(err)
		}
		want := leftFolders[:0:0]
		for _, l := range leftFolders {
			if l != "unreferenced "+string(folder) {
				want = append(want, l)
			}
		}
		for _, f := range files {
			if !used[string(f.Handle)] {
				want = append(want, "unreferenced "+string(f.Handle))
			}
		}
		for _, name := range []string{native.StateRootProofName, native.Tagged(native.StateRootProofName, native.AttemptTag(1))} {
			if h := string(folder) + "/" + name; !strings.Contains(strings.Join(want, "\n"), "unreferenced "+h) {
				t.Fatalf("the earlier attempt's %s is not among the unreferenced files %v", h, want)
			}
		}
		rep = runNative(t, st)
		wantFindings(t, rep, want...)
		var sb strings.Builder
		rep.WriteTable(&sb)
		t.Log("\n" + sb.String())
	})

	t.Run("damaged copies", func(t *testing.T) {
		state0, state1 := stateM.Chunks[0], stateM.Chunks[1]
		txn0, txn1 := txnM.Chunks[0], txnM.Chunks[1]
		for _, tc := range []struct {
			name   string
			damage func(t *testing.T, dir string)
			want   []string
			detail string
		}{
			{"truncated chunk", func(t *testing.T, dir string) { truncate(t, filePath(dir, txn0.Handle), txn0.Size/2) },
				[]string{"partial " + string(txn0.Handle)}, "truncated"},
			{"chunk cut by one byte", func(t *testing.T, dir string) { truncate(t, filePath(dir, state0.Handle), state0.Size-1) },
				[]string{"partial " + string(state0.Handle)}, "truncated"},
			{"zero-length chunk", func(t *testing.T, dir string) { truncate(t, filePath(dir, state1.Handle), 0) },
				[]string{"partial " + string(state1.Handle)}, "zero-length"},
			{"flipped byte", func(t *testing.T, dir string) { flipByte(t, filePath(dir, txn1.Handle)) },
				[]string{"mismatch " + string(txn1.Handle)}, "SHA-256"},
			{"flipped byte in a proof", func(t *testing.T, dir string) { flipByte(t, filePath(dir, state0.Proof.Handle)) },
				[]string{"mismatch " + string(state0.Proof.Handle)}, "SHA-256"},
			{"chunk gone", func(t *testing.T, dir string) { remove(t, filePath(dir, txn1.Handle)) },
				[]string{"missing " + string(txn1.Handle)}, "absent"},
			{"manifest gone", func(t *testing.T, dir string) { remove(t, filePath(dir, fx.txn.Metadata.Manifest)) },
				[]string{"missing " + string(fx.txn.Metadata.Manifest)}, "absent"},
			{"manifest truncated", func(t *testing.T, dir string) { truncate(t, filePath(dir, fx.state.Metadata.Manifest), 100) },
				[]string{"partial " + string(fx.state.Metadata.Manifest)}, "does not decode"},
			{"manifest's first key hash is not the chunk's", func(t *testing.T, dir string) {
				m := stateM
				m.Chunks = append([]native.StateSnapshotChunk(nil), stateM.Chunks...)
				m.Chunks[0].FirstKeyHash = [32]byte{}
				writeManifest(t, dir, fx.state.Metadata.Manifest, &m)
			}, []string{"mismatch " + string(state0.Handle)}, "first/last key"},
			{"manifest's raw size is not the chunk's", func(t *testing.T, dir string) {
				m := txnM
				m.Chunks = append([]native.TransactionChunk(nil), txnM.Chunks...)
				m.Chunks[0].RawSize--
				writeManifest(t, dir, fx.txn.Metadata.Manifest, &m)
			}, []string{"mismatch " + string(txn0.Handle)}, "disagrees"},
			{"manifest's range is not its metadata's", func(t *testing.T, dir string) {
				m := txnM
				m.Chunks = append([]native.TransactionChunk(nil), txnM.Chunks...)
				m.LastVersion++
				m.Chunks[len(m.Chunks)-1].LastVersion++
				writeManifest(t, dir, fx.txn.Metadata.Manifest, &m)
			}, []string{"mismatch " + string(fx.txn.Metadata.Manifest), "mismatch " + string(fx.txn.Metadata.Manifest),
				"mismatch " + string(txnM.Chunks[len(txnM.Chunks)-1].Handle)}, "metadata"},
			{"metadata file truncated", func(t *testing.T, dir string) { truncate(t, filePath(dir, fx.txn.MetadataHandle), 10) },
				[]string{"partial " + string(fx.txn.MetadataHandle)}, "does not decode"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				dir := fx.copyStore(t)
				tc.damage(t, dir)
				rep := runNative(t, openNative(t, dir))
				wantFindings(t, rep, tc.want...)
				found := false
				for _, f := range rep.Findings {
					found = found || strings.Contains(f.Detail, tc.detail)
				}
				if !found {
					var sb strings.Builder
					rep.WriteTable(&sb)
					t.Fatalf("no finding says %q:\n%s", tc.detail, sb.String())
				}
			})
		}
	})
}

func folderSet(t *testing.T, st storage.Store) map[storage.BackupHandle]bool {
	t.Helper()
	infos, err := st.ListBackups(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[storage.BackupHandle]bool{}
	for _, in := range infos {
		out[in.Handle] = true
	}
	return out
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x40
	rewriteFile(t, p, b)
}

func truncate(t *testing.T, p string, n int64) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	rewriteFile(t, p, b[:n])
}

func remove(t *testing.T, p string) {
	t.Helper()
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
}

func rewriteFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.Chmod(p, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

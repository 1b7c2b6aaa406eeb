package gc_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/testmain"
	"github.com/ledgervault/ledgervault/maintenance/gc"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func TestMain(m *testing.M) { testmain.Run(m, "gc-test") }

// backend is a store and the directory it keeps its files in, so tests can age
// folders with Chtimes.
type backend struct {
	name string
	open func(t *testing.T, root string) storage.Store
}

var backends = []backend{
	{"local", func(t *testing.T, root string) storage.Store {
		st, err := local.New(root)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
	{"shell", func(t *testing.T, root string) storage.Store {
		cfg, err := shell.Sample("local", map[string]string{"ROOT": root})
		if err != nil {
			t.Fatal(err)
		}
		st, err := shell.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}},
}

// fixture is a store with helpers to make backups the way the backup package does:
// files in a fresh folder, the manifest, then a metadata line naming the manifest.
type fixture struct {
	t    *testing.T
	ctx  context.Context
	root string
	st   storage.Store
	n    int
}

func newFixture(t *testing.T, b backend) *fixture {
	root := t.TempDir()
	st := b.open(t, root)
	t.Cleanup(func() { st.Close() })
	return &fixture{t: t, ctx: context.Background(), root: root, st: st}
}

func (f *fixture) write(b storage.BackupHandle, name string, data []byte) storage.FileHandle {
	f.t.Helper()
	w, err := f.st.Create(f.ctx, b, name)
	if err != nil {
		f.t.Fatal(err)
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		f.t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		f.t.Fatal(err)
	}
	return w.Handle()
}

// folder writes a backup folder with a chunk and a manifest but no metadata (what an
// interrupted backup leaves) and returns the folder and its manifest handle.
func (f *fixture) folder(size int) (storage.BackupHandle, storage.FileHandle) {
	f.t.Helper()
	f.n++
	b, err := f.st.CreateBackup(f.ctx, fmt.Sprintf("transaction-%d", f.n))
	if err != nil {
		f.t.Fatal(err)
	}
	f.write(b, "chunk-0", bytes.Repeat([]byte{byte(f.n)}, size))
	return b, f.write(b, "manifest.json", []byte(`{"not":"checked by gc"}`))
}

// line returns a metadata line for a transaction backup whose manifest is mf.
func line(t testing.TB, first uint64, mf storage.FileHandle) []byte {
	t.Helper()
	m := native.Metadata{Format: native.FormatVersion, Type: native.TypeTransaction, FirstVersion: first, LastVersion: first + 9, Manifest: mf}
	b, err := m.EncodeLine()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backup writes a complete backup: folder, then its metadata file.
func (f *fixture) backup(size int) storage.BackupHandle {
	f.t.Helper()
	b, mf := f.folder(size)
	f.saveMeta(fmt.Sprintf("transaction_%d.meta", f.n), line(f.t, uint64(f.n)*10, mf))
	return b
}

func (f *fixture) saveMeta(name string, data []byte) {
	f.t.Helper()
	if _, err := f.st.SaveMetadata(f.ctx, name, data); err != nil {
		f.t.Fatal(err)
	}
}

// age sets the modification time of a folder and everything in it to d ago.
func (f *fixture) age(b storage.BackupHandle, d time.Duration) {
	f.t.Helper()
	when := time.Now().Add(-d)
	dir := filepath.Join(f.root, string(b))
	ents, err := os.ReadDir(dir)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, e := range ents {
		if err := os.Chtimes(filepath.Join(dir, e.Name()), when, when); err != nil {
			f.t.Fatal(err)
		}
	}
	if err := os.Chtimes(dir, when, when); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fixture) exists(b storage.BackupHandle) bool {
	_, err := os.Stat(filepath.Join(f.root, string(b)))
	return err == nil
}

func itemAction(rep *gc.Report, b storage.BackupHandle) gc.Action {
	for _, it := range rep.Items {
		if it.Backup == b {
			return it.Action
		}
	}
	return ""
}

func TestReferencedKeptUnreferencedOldRemovedYoungKept(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, be)
			ref := f.backup(1000)
			f.age(ref, 3*time.Hour)
			old, _ := f.folder(5000)
			f.age(old, 2*time.Hour)
			young, _ := f.folder(700)
			// A stale temporary file from a killed upload inside the referenced folder,
			// and a fresh one that a running upload may still be writing.
			stale := filepath.Join(f.root, string(ref), ".tmp-chunk-1-abc")
			fresh := filepath.Join(f.root, string(young), ".tmp-chunk-1-def")
			for _, p := range []string{stale, fresh} {
				if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			then := time.Now().Add(-2 * time.Hour)
			if err := os.Chtimes(stale, then, then); err != nil {
				t.Fatal(err)
			}
			f.age(young, 0)

			rep, err := gc.Run(f.ctx, f.st, gc.Options{Grace: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
			if !f.exists(ref) || !f.exists(young) || f.exists(old) {
				t.Fatalf("after gc: referenced %v young %v old %v (want true true false)", f.exists(ref), f.exists(young), f.exists(old))
			}
			if rep.BackupsRemoved != 1 || rep.BytesRemoved < 5000 || rep.KeptYoung != 1 || rep.Referenced != 1 || rep.Folders != 3 || rep.MetadataFiles != 1 {
				t.Fatalf("report %+v", rep)
			}
			if itemAction(rep, old) != gc.Removed || itemAction(rep, young) != gc.KeptYoung || itemAction(rep, ref) != "" {
				t.Fatalf("items %+v", rep.Items)
			}
			if rep.StaleUploadsAborted != 1 {
				t.Fatalf("stale uploads aborted %d, want 1", rep.StaleUploadsAborted)
			}
			if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
				t.Fatalf("stale temp file: %v", err)
			}
			if _, err := os.Stat(fresh); err != nil {
				t.Fatalf("fresh temp file removed: %v", err)
			}
			// The metadata file is untouched and a second run finds nothing to do.
			rep, err = gc.Run(f.ctx, f.st, gc.Options{Grace: time.Hour})
			if err != nil || rep.BackupsRemoved != 0 || rep.MetadataFiles != 1 {
				t.Fatalf("second run: %v %+v", err, rep)
			}
		})
	}
}

func TestDryRunDeletesNothing(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, be)
			f.backup(10)
			old, _ := f.folder(3000)
			f.age(old, 2*time.Hour)
			stale := filepath.Join(f.root, string(old), ".tmp-x-1")
			if err := os.WriteFile(stale, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			f.age(old, 2*time.Hour)
			rep, err := gc.Run(f.ctx, f.st, gc.Options{Grace: time.Hour, DryRun: true})
			if err != nil {
				t.Fatal(err)
			}
			if !f.exists(old) {
				t.Fatal("dry run deleted a folder")
			}
			if _, err := os.Stat(stale); err != nil {
				t.Fatalf("dry run removed a temp file: %v", err)
			}
			if !rep.DryRun || rep.BackupsRemoved != 1 || rep.BytesRemoved < 3000 || itemAction(rep, old) != gc.WouldRemove || rep.StaleUploadsAborted != 0 {
				t.Fatalf("report %+v", rep)
			}
			var tb bytes.Buffer
			if err := rep.WriteTable(&tb); err != nil {
				t.Fatal(err)
			}
			for _, s := range []string{string(old), "would_remove", "would remove (dry run): 1 unreferenced", "not checked in a dry run"} {
				if !strings.Contains(tb.String(), s) {
					t.Errorf("table lacks %q:\n%s", s, tb.String())
				}
			}
			var jb bytes.Buffer
			if err := rep.WriteJSON(&jb); err != nil {
				t.Fatal(err)
			}
			var back map[string]any
			if err := json.Unmarshal(jb.Bytes(), &back); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"backups_removed", "bytes_removed", "stale_uploads_aborted", "items"} {
				if _, ok := back[k]; !ok {
					t.Errorf("JSON lacks %q: %s", k, jb.String())
				}
			}
		})
	}
}

func TestMalformedMetadataDeletesNothing(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, be)
			f.backup(10)
			old, _ := f.folder(10)
			f.age(old, 2*time.Hour)
			f.saveMeta("transaction_bad.meta", []byte(`{"format":1,"type":"transaction","manifest":"../etc/passwd"}`+"\n"))
			rep, err := gc.Run(f.ctx, f.st, gc.Options{Grace: time.Hour})
			if err == nil || !strings.Contains(err.Error(), "transaction_bad.meta") || !strings.Contains(err.Error(), "nothing deleted") {
				t.Fatalf("err %v", err)
			}
			if !f.exists(old) || rep.BackupsRemoved != 0 {
				t.Fatalf("deleted on partial knowledge: %+v", rep)
			}
		})
	}
}

func TestNonMetadataNamesIgnored(t *testing.T) {
	f := newFixture(t, backends[0])
	ref := f.backup(10)
	f.age(ref, 2*time.Hour)
	// A lease file is not JSON lines; GC must not trip over it.
	f.saveMeta("coordinator.lease", []byte("owner=x expires=y"))
	rep, err := gc.Run(f.ctx, f.st, gc.Options{Grace: time.Hour})
	if err != nil || rep.MetadataFiles != 1 || !f.exists(ref) {
		t.Fatalf("%v %+v", err, rep)
	}
}

func TestNoMetadataRefuses(t *testing.T) {
	f := newFixture(t, backends[0])
	old, _ := f.folder(10)
	f.age(old, 2*time.Hour)
	_, err := gc.Run(f.ctx, f.st, gc.Options{Grace: time.Hour})
	if !errors.Is(err, gc.ErrNoMetadata) || !strings.Contains(err.Error(), "no metadata") || !f.exists(old) {
		t.Fatalf("err %v exists %v", err, f.exists(old))
	}
	rep, err := gc.Run(f.ctx, f.st, gc.Options{Grace: time.Hour, AllowNoMetadata: true})
	if err != nil || rep.BackupsRemoved != 1 || f.exists(old) {
		t.Fatalf("allowed: %v %+v", err, rep)
	}
}

// afterFirst returns st wrapped so that hook runs once, right after the first call
// of op (a listing) returns, which places a concurrent writer's action exactly
// between GC's steps.
func afterFirst(st storage.Store, op storagetest.Op, hook func()) *storagetest.FaultStore {
	return storagetest.NewFaultStore(st, storagetest.Nth(op, 1, storagetest.Fault{
		After: func(*storagetest.Outcome) { hook() },
	}))
}

func TestMetadataCommittedDuringRunKeepsFolder(t *testing.T) {
	t.Parallel()
	for _, be := range backends {
		t.Run(be.name, func(t *testing.T) {
			t.Parallel()
			f := newFixture(t, be)
			f.backup(10)
			// A backup whose folder is old (a slow snapshot) and whose metadata the
			// coordinator commits after GC listed metadata and folders.
			late, mf := f.folder(10)
			f.age(late, 2*time.Hour)
			garbage, _ := f.folder(10)
			f.age(garbage, 2*time.Hour)
			hs := afterFirst(f.st, storagetest.OpListBackups, func() {
				f.saveMeta("transaction_late.meta", line(t, 500, mf))
			})
			rep, err := gc.Run(f.ctx, hs, gc.Options{Grace: time.Hour, BatchSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			if !f.exists(late) || f.exists(garbage) {
				t.Fatalf("late exists %v garbage exists %v", f.exists(late), f.exists(garbage))
			}
			if itemAction(rep, late) != gc.KeptReferenced || rep.KeptReferenced != 1 || rep.BackupsRemoved != 1 || rep.MetadataFiles != 2 {
				t.Fatalf("report %+v", rep)
			}
		})
	}
}

func TestMetadataCompactedDuringReadIsFollowed(t *testing.T) {
	f := newFixture(t, backends[0])
	ref, mf := f.folder(10)
	f.age(ref, 2*time.Hour)
	f.saveMeta("transaction_1.meta", line(t, 10, mf))
	// Between listing and reading, a compaction replaces the file by a compacted one
	// holding its line (written first, original removed after).
	hs := afterFirst(f.st, storagetest.OpListMetadata, func() {
		f.saveMeta("compacted_20260101T000000Z-00-0.meta", line(t, 10, mf))
		if err := f.st.DeleteMetadata(f.ctx, "metadata/transaction_1.meta"); err != nil {
			t.Error(err)
		}
	})
	rep, err := gc.Run(f.ctx, hs, gc.Options{Grace: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if !f.exists(ref) || rep.Referenced != 1 || rep.MetadataFiles != 1 {
		t.Fatalf("exists %v report %+v", f.exists(ref), rep)
	}
}

func TestNegativeGrace(t *testing.T) {
	f := newFixture(t, backends[0])
	if _, err := gc.Run(f.ctx, f.st, gc.Options{Grace: -time.Second}); err == nil {
		t.Fatal("negative grace accepted")
	}
}

// FuzzMetadataNeverDeletesOnBadInput checks that whatever bytes a metadata file
// holds, GC either understands them or deletes nothing, and never panics.
func FuzzMetadataNeverDeletesOnBadInput(f *testing.F) {
	f.Add([]byte(`{"format":1,"type":"transaction","first_version":0,"last_version":9,"manifest":"x/manifest.json"}` + "\n"))
	f.Add([]byte("{nope\n"))
	f.Add([]byte(`{"format":1,"type":"state_snapshot","manifest":"/abs"}`))
	f.Add([]byte(""))
	f.Add(bytes.Repeat([]byte("\n"), 1000))
	f.Fuzz(func(t *testing.T, data []byte) {
		fx := newFixture(t, backends[0])
		fx.backup(1)
		old, _ := fx.folder(1)
		fx.age(old, 2*time.Hour)
		fx.saveMeta("fuzz.meta", data)
		_, decodeErr := native.DecodeMetadataFile("fuzz.meta", data)
		_, err := gc.Run(fx.ctx, fx.st, gc.Options{Grace: time.Hour})
		if decodeErr != nil && (err == nil || fx.exists(old) == false) {
			t.Fatalf("undecodable metadata: gc err %v, folder exists %v", err, fx.exists(old))
		}
		if decodeErr == nil && err != nil {
			t.Fatalf("decodable metadata: gc err %v", err)
		}
	})
}

func TestUnknownAgeKept(t *testing.T) {
	f := newFixture(t, backends[0])
	f.backup(1)
	b, _ := f.folder(1)
	// The store lists only b, with the ModTime info says, to check how GC treats
	// ages the backend reports.
	info := storage.BackupInfo{Handle: b}
	st := storagetest.NewFaultStore(f.st, storagetest.Every(storagetest.OpListBackups, storagetest.Fault{
		After: func(o *storagetest.Outcome) { o.Backups = []storage.BackupInfo{info} },
	}))
	rep, err := gc.Run(f.ctx, st, gc.Options{Grace: time.Hour})
	if err != nil || !f.exists(b) || itemAction(rep, b) != gc.KeptYoung {
		t.Fatalf("%v exists %v %+v", err, f.exists(b), rep)
	}
	info.ModTime = time.Now().Add(-2 * time.Hour)
	rep, err = gc.Run(f.ctx, st, gc.Options{Grace: time.Hour})
	if err != nil || f.exists(b) || itemAction(rep, b) != gc.Removed {
		t.Fatalf("%v exists %v %+v", err, f.exists(b), rep)
	}
}

func TestZeroGrace(t *testing.T) {
	f := newFixture(t, backends[0])
	f.backup(10)
	young, _ := f.folder(10) // written just now
	// A zero Grace alone takes the default: the young folder stays.
	rep, err := gc.Run(f.ctx, f.st, gc.Options{})
	if err != nil || rep.BackupsRemoved != 0 || !f.exists(young) || rep.GraceSeconds != int64(gc.DefaultGrace/time.Second) {
		t.Fatalf("default grace: %v %+v", err, rep)
	}
	// NoGrace removes it at once.
	rep, err = gc.Run(f.ctx, f.st, gc.Options{NoGrace: true})
	if err != nil || rep.BackupsRemoved != 1 || f.exists(young) {
		t.Fatalf("no grace: %v %+v", err, rep)
	}
}

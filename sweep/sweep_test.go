package sweep_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/internal/testmain"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/sweep"
)

func TestMain(m *testing.M) { testmain.Run(m, "sweep-test") }

// Through a command adapter: list_backups finds the folders, delete_backup removes
// them.
func TestThroughCommandAdapter(t *testing.T) {
	root := copy77(t)
	cfg, err := shell.Sample("local", map[string]string{"ROOT": root})
	if err != nil {
		t.Fatal(err)
	}
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	res, err := sweep.BackupCLI(context.Background(), st, sweep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 2 || res.Removed[0].Handle != "epoch_ending_77-.0965" || res.Removed[1].Handle != "state_ver_41315058.6168" ||
		len(res.Referenced) != 1 || res.Referenced[0].Handle != "epoch_ending_77-.1d01/epoch_ending.manifest" {
		t.Fatalf("%+v", res)
	}
	for _, p := range []string{"epoch_ending_77-.0965", "state_ver_41315058.6168"} {
		if exists(filepath.Join(root, p)) {
			t.Fatalf("%s still there", p)
		}
	}
	if !exists(filepath.Join(root, "transaction_41315058-.39de/41315058-.chunk")) {
		t.Fatal("a referenced folder was removed")
	}

	// The operator's six-key config cannot list folders: gc refuses.
	cfg.Commands.ListBackups = ""
	st, err = shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sweep.BackupCLI(context.Background(), st, sweep.Options{}); err == nil || !strings.Contains(err.Error(), "configure list_backups") {
		t.Fatalf("%v", err)
	}
}

func copy77(t *testing.T) string {
	t.Helper()
	src, err := corpora.Diem("77")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := corpora.CopyTree(src, root); err != nil {
		t.Fatal(err)
	}
	return root
}

func exists(p string) bool { _, err := os.Stat(p); return err == nil }

// hookStore runs a hook before the n-th metadata listing.
type hookStore struct {
	storage.Store
	calls atomic.Int32
	n     int32
	hook  func()
}

func (h *hookStore) ListMetadata(ctx context.Context) ([]storage.FileHandle, error) {
	if h.calls.Add(1) == h.n {
		h.hook()
	}
	return h.Store.ListMetadata(ctx)
}

// A backup whose metadata is committed while gc runs is kept: metadata is read again
// before each batch.
func TestMetadataReReadBeforeEachBatch(t *testing.T) {
	root := copy77(t)
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	// Listings: 1 the first metadata read, 2 the audit, 3 before batch 1, 4 before batch 2.
	hs := &hookStore{Store: st, n: 4, hook: func() {
		os.WriteFile(filepath.Join(root, "metadata/state_snapshot_ver_41315058.meta"),
			[]byte(`{"StateSnapshotBackup":{"version":41315058,"manifest":"state_ver_41315058.6168/state.manifest"}}`+"\n"), 0o644)
	}}
	res, err := sweep.BackupCLI(context.Background(), hs, sweep.Options{BatchSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0].Handle != "epoch_ending_77-.0965" || len(res.Kept) != 1 ||
		res.Kept[0].Handle != "state_ver_41315058.6168" || res.Kept[0].Reason != "metadata written meanwhile references it" {
		t.Fatalf("%+v", res)
	}
	if exists(filepath.Join(root, "epoch_ending_77-.0965")) || !exists(filepath.Join(root, "state_ver_41315058.6168/0-.chunk")) {
		t.Fatal("wrong folders removed")
	}
}

func TestGraceKeepsRecentFolders(t *testing.T) {
	root := copy77(t)
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Now().Add(-2 * time.Hour)
	for _, p := range []string{"epoch_ending_77-.0965", "epoch_ending_77-.0965/77-.chunk", "epoch_ending_77-.0965/epoch_ending.manifest"} {
		os.Chtimes(filepath.Join(root, p), old, old)
	}
	now := time.Now()
	for _, p := range []string{"state_ver_41315058.6168", "state_ver_41315058.6168/0-.chunk"} {
		os.Chtimes(filepath.Join(root, p), now, now)
	}
	res, err := sweep.BackupCLI(context.Background(), st, sweep.Options{Grace: time.Hour, DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 1 || res.Removed[0].Handle != "epoch_ending_77-.0965" || len(res.Kept) != 1 || res.Kept[0].Handle != "state_ver_41315058.6168" {
		t.Fatalf("%+v", res)
	}
	if !exists(filepath.Join(root, "epoch_ending_77-.0965")) {
		t.Fatal("dry run removed a folder")
	}
}

func TestUndecodableMetadataStops(t *testing.T) {
	root := copy77(t)
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "metadata/x.meta"), []byte("{\"Bogus\":1}\n"), 0o644)
	_, err = sweep.BackupCLI(context.Background(), st, sweep.Options{})
	if !errors.Is(err, sweep.ErrUndecodableMetadata) || !exists(filepath.Join(root, "epoch_ending_77-.0965")) {
		t.Fatalf("%v", err)
	}
}

func copy104(t *testing.T) string {
	t.Helper()
	src, err := corpora.Diem("104")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := corpora.CopyTree(src, root); err != nil {
		t.Fatal(err)
	}
	return root
}

// A leftover file in a referenced folder: removed through file://. A command adapter
// cannot list files (until it has a listing command), so there it is not even seen.
func TestUnreferencedFileInReferencedFolder(t *testing.T) {
	const leftover = "transaction_51738547-.2551/51738547-.chunk.retry"
	root := copy104(t)
	os.WriteFile(filepath.Join(root, leftover), []byte("x"), 0o644)
	st, _ := local.New(root)
	res, err := sweep.BackupCLI(context.Background(), st, sweep.Options{DryRun: true})
	if err != nil || len(res.Removed) != 1 || !exists(filepath.Join(root, leftover)) {
		t.Fatalf("dry run: %+v %v", res, err)
	}
	res, err = sweep.BackupCLI(context.Background(), st, sweep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if exists(filepath.Join(root, leftover)) || res.FilesRemoved != 1 || res.BackupsRemoved != 0 || res.Removed[0].Handle != leftover {
		t.Fatalf("%+v", res)
	}
	// Nothing referenced went with it: a second sweep finds nothing at all.
	res, err = sweep.BackupCLI(context.Background(), st, sweep.Options{})
	if err != nil || len(res.Removed)+len(res.Kept)+len(res.Referenced) != 0 {
		t.Fatalf("second sweep %+v %v", res, err)
	}

	os.WriteFile(filepath.Join(root, leftover), []byte("x"), 0o644)
	cfg, err := shell.Sample("local", map[string]string{"ROOT": root})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Commands.DeleteFile = `rm -- "$ROOT/$FILE_HANDLE"`
	// Without list_files the adapter cannot see files inside a folder: it keeps them.
	noList := cfg
	noList.Commands.ListFiles = ""
	ast, _ := shell.New(noList)
	res, err = sweep.BackupCLI(context.Background(), ast, sweep.Options{})
	if err != nil || len(res.Removed) != 0 || !exists(filepath.Join(root, leftover)) {
		t.Fatalf("adapter without list_files: %+v %v", res, err)
	}
	// With it (the sample has it), the leftover goes, as through file://.
	ast, _ = shell.New(cfg)
	res, err = sweep.BackupCLI(context.Background(), ast, sweep.Options{})
	if err != nil || res.FilesRemoved != 1 || exists(filepath.Join(root, leftover)) {
		t.Fatalf("adapter: %+v %v", res, err)
	}
}

// Files of a folder whose manifest is gone are unreferenced, but which of them the
// manifest named is unknown: they are kept.
func TestFilesOfAFolderWithoutManifestAreKept(t *testing.T) {
	root := copy104(t)
	os.Remove(filepath.Join(root, "transaction_51738547-.2551/transaction.manifest"))
	st, _ := local.New(root)
	res, err := sweep.BackupCLI(context.Background(), st, sweep.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 0 || len(res.Kept) != 2 || !strings.Contains(res.Kept[0].Reason, "manifest is missing or does not decode") {
		t.Fatalf("%+v", res)
	}
	if !exists(filepath.Join(root, "transaction_51738547-.2551/51738547-.chunk")) {
		t.Fatal("chunk removed")
	}
}

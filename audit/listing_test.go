package audit_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

// fileInfo has the shape of the storage.FileInfo another change adds.
type fileInfo struct {
	Handle  storage.FileHandle
	Size    int64
	ModTime time.Time
}

// listingStore is a store with a ListFiles method of the coming storage.Store shape.
type listingStore struct {
	storage.Store
	root  string
	err   error
	calls int
}

func (l *listingStore) ListFiles(ctx context.Context, b storage.BackupHandle) ([]fileInfo, error) {
	l.calls++
	if l.err != nil {
		return nil, l.err
	}
	ents, err := os.ReadDir(filepath.Join(l.root, string(b)))
	if err != nil {
		return nil, err
	}
	var out []fileInfo
	for _, e := range ents {
		fi, _ := e.Info()
		out = append(out, fileInfo{Handle: storage.FileHandle(string(b) + "/" + e.Name()), Size: fi.Size(), ModTime: fi.ModTime()})
	}
	return out, nil
}

func TestListFilesFoundByName(t *testing.T) {
	root := diemCopy(t, "104")
	writeFile(t, filepath.Join(root, "transaction_51738547-.2551/leftover"), []byte("x"))
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ls := &listingStore{Store: st, root: root}
	if audit.Lister(ls) == nil {
		t.Fatal("ListFiles not found")
	}
	rep := run(t, ls)
	checkFindings(t, rep, []want{{audit.Unreferenced, "transaction_51738547-.2551/leftover", "transaction_51738547-.2551", "no manifest references this file, 1 B"}})
	if ls.calls != 3 || len(rep.Notes) != 0 {
		t.Fatalf("%d calls, notes %q", ls.calls, rep.Notes)
	}

	// A backend that has the method but cannot list: folders only, said so.
	ls = &listingStore{Store: st, root: root, err: storage.Permanent(os.ErrInvalid)}
	rep = run(t, ls)
	checkFindings(t, rep, nil)
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "lists folders but not files") {
		t.Fatalf("notes %q", rep.Notes)
	}
}

func TestLocalStoreIsWalked(t *testing.T) {
	root, err := corpora.Diem("14")
	if err != nil {
		t.Fatal(err)
	}
	if audit.Lister(openLocal(t, root)) == nil {
		t.Fatal("a local store lists files")
	}
}

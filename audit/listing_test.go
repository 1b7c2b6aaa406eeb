package audit_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

// listingStore counts the ListFiles calls of a store, or fails them with err.
type listingStore struct {
	storage.Store
	err   error
	calls int
}

func (l *listingStore) ListFiles(ctx context.Context, b storage.BackupHandle) ([]storage.FileInfo, error) {
	l.calls++
	if l.err != nil {
		return nil, l.err
	}
	return l.Store.ListFiles(ctx, b)
}

func TestListFilesUsed(t *testing.T) {
	root := diemCopy(t, "104")
	writeFile(t, filepath.Join(root, "transaction_51738547-.2551/leftover"), []byte("x"))
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	ls := &listingStore{Store: st}
	rep := run(t, ls)
	checkFindings(t, rep, []want{{audit.Unreferenced, "transaction_51738547-.2551/leftover", "transaction_51738547-.2551", "no manifest references this file, 1 B"}})
	if ls.calls != 3 || len(rep.Notes) != 0 {
		t.Fatalf("%d calls, notes %q", ls.calls, rep.Notes)
	}

	// A backend that cannot list files: folders only, said so.
	ls = &listingStore{Store: st, err: fmt.Errorf("list_files is not configured: %w", storage.ErrNotSupported)}
	rep = run(t, ls)
	checkFindings(t, rep, nil)
	if len(rep.Notes) != 1 || !strings.Contains(rep.Notes[0], "lists folders but not files") {
		t.Fatalf("notes %q", rep.Notes)
	}
}

package storagetest

import (
	"bytes"
	"errors"
	"io"
	"path"
	"testing"

	"github.com/ledgervault/ledgervault/storage"
)

// The cases below check the read-back rule for create-only writes whose outcome is
// ambiguous (storage.ConfirmMetadata, storage.ConfirmFile) end to end on the
// backend: its store is wrapped in a FaultStore that commits and then fails,
// fails and commits later, or runs a call twice.

// ambiguousCases are the read-back cases of the suite.
func (s *suite) ambiguousCases() []testCase {
	return []testCase{
		{"AmbiguousMetadataCommitThenFail", s.metadataCommitThenFail},
		{"AmbiguousMetadataDuplicate", s.metadataDuplicate},
		{"AmbiguousMetadataFailThenCommit", s.metadataFailThenCommit},
		{"AmbiguousCommitThenFail", s.commitThenFail},
		{"AmbiguousCommitDuplicate", s.commitDuplicate},
	}
}

// checkOneMetadata checks that exactly one metadata file called name is listed and
// that it holds data.
func checkOneMetadata(t *testing.T, st storage.Store, name string, data []byte) {
	t.Helper()
	hs, err := st.ListMetadata(t.Context())
	if err != nil {
		t.Fatalf("ListMetadata: %v", err)
	}
	var found []storage.FileHandle
	for _, h := range hs {
		if path.Base(string(h)) == name {
			found = append(found, h)
		}
	}
	if len(found) != 1 {
		t.Fatalf("metadata %s listed %d times: %v", name, len(found), hs)
	}
	r, err := st.Open(t.Context(), found[0])
	if err != nil {
		t.Fatalf("Open(%s): %v", found[0], err)
	}
	defer r.Close()
	got, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("metadata %s holds %q (%v), want %q", found[0], got, err, data)
	}
}

// confirmOurs checks that ConfirmMetadata takes a SaveMetadata that failed with werr
// for ours when data is what is there, and for a conflict with other bytes.
func confirmOurs(t *testing.T, st storage.Store, name string, data []byte, werr error) {
	t.Helper()
	h, err := storage.ConfirmMetadata(t.Context(), st, name, data, werr)
	if err != nil {
		t.Fatalf("ConfirmMetadata of our own committed %s: %v", name, err)
	}
	if err := storage.ValidateHandle(string(h)); err != nil || path.Base(string(h)) != name {
		t.Fatalf("ConfirmMetadata handle %q: %v", h, err)
	}
	other := append(bytes.Clone(data), 'x')
	if _, err := storage.ConfirmMetadata(t.Context(), st, name, other, werr); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("ConfirmMetadata with other bytes: %v, want ErrAlreadyExists", err)
	}
	checkOneMetadata(t, st, name, data)
}

// metadataCommitThenFail: SaveMetadata commits, then reports an error.
func (s *suite) metadataCommitThenFail(t *testing.T, st storage.Store) {
	fs := NewFaultStore(st, Nth(OpSaveMetadata, 1, Fault{Mode: FailAfter}))
	name, data := "ambiguous-1.meta", []byte(`{"line":1}`+"\n")
	_, err := fs.SaveMetadata(t.Context(), name, data)
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("SaveMetadata under FailAfter: %v", err)
	}
	confirmOurs(t, fs, name, data, err)
}

// metadataDuplicate: the client's retry of its own committed attempt gets
// ErrAlreadyExists.
func (s *suite) metadataDuplicate(t *testing.T, st storage.Store) {
	fs := NewFaultStore(st, Nth(OpSaveMetadata, 1, Fault{Mode: Duplicate}))
	name, data := "ambiguous-2.meta", []byte(`{"line":2}`+"\n")
	_, err := fs.SaveMetadata(t.Context(), name, data)
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("duplicated SaveMetadata: %v, want ErrAlreadyExists", err)
	}
	confirmOurs(t, fs, name, data, err)
}

// metadataFailThenCommit: SaveMetadata fails and lands later; the read-back first
// finds nothing (the original error stands), the retry meets the late commit and
// the read-back takes it for ours.
func (s *suite) metadataFailThenCommit(t *testing.T, st storage.Store) {
	fs := NewFaultStore(st, Nth(OpSaveMetadata, 1, Fault{Mode: FailThenCommit}))
	defer fs.Settle()
	name, data := "ambiguous-3.meta", []byte(`{"line":3}`+"\n")
	_, err := fs.SaveMetadata(t.Context(), name, data)
	if !errors.Is(err, ErrInjected) {
		t.Fatalf("SaveMetadata under FailThenCommit: %v", err)
	}
	if _, cerr := storage.ConfirmMetadata(t.Context(), fs, name, data, err); !errors.Is(cerr, ErrInjected) {
		t.Fatalf("ConfirmMetadata before the late commit: %v, want the original error", cerr)
	}
	_, err = fs.SaveMetadata(t.Context(), name, data) // the retry: the first attempt lands before it
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("retried SaveMetadata after the late commit: %v, want ErrAlreadyExists", err)
	}
	confirmOurs(t, fs, name, data, err)
}

// commitOurs writes c to name in a new folder of fs, expects Commit to fail with an
// error matching want, and checks that ConfirmFile takes the file for ours (and for
// a conflict with other bytes), that Abort then leaves it and that it reads back.
func commitOurs(t *testing.T, fs *FaultStore, want error) {
	t.Helper()
	ctx := t.Context()
	b := newBackup(t, fs, "ambiguous")
	c := newContent(7, 100<<10)
	w, err := fs.Create(ctx, b, "chunk-0.zst")
	if err != nil {
		t.Fatalf("Create: %v", err)
	}
	defer w.Abort()
	if _, err := io.Copy(w, c.reader()); err != nil {
		t.Fatalf("write: %v", err)
	}
	werr := w.Commit()
	if !errors.Is(werr, want) {
		t.Fatalf("Commit: %v, want %v", werr, want)
	}
	if err := storage.ConfirmFile(ctx, fs, w.Handle(), c.size, c.sum(t), werr); err != nil {
		t.Fatalf("ConfirmFile of our own committed file: %v", err)
	}
	other := c.sum(t)
	other[0] ^= 1
	if err := storage.ConfirmFile(ctx, fs, w.Handle(), c.size, other, werr); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("ConfirmFile with another hash: %v, want ErrAlreadyExists", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after the ambiguous commit: %v", err)
	}
	checkContent(t, fs, w.Handle(), c)
}

// commitThenFail: Commit commits, then reports an error.
func (s *suite) commitThenFail(t *testing.T, st storage.Store) {
	commitOurs(t, NewFaultStore(st, Nth(OpCommit, 1, Fault{Mode: FailAfter})), ErrInjected)
}

// commitDuplicate: Commit is run twice; the second create-only attempt is refused.
func (s *suite) commitDuplicate(t *testing.T, st storage.Store) {
	commitOurs(t, NewFaultStore(st, Nth(OpCommit, 1, Fault{Mode: Duplicate})), storage.ErrAlreadyExists)
}

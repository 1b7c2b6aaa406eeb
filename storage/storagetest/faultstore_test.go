package storagetest_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func newLocal(t *testing.T) *local.Store {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// A FaultStore without rules is the store it wraps: it passes the whole suite.
func TestFaultStoreConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Store {
		return storagetest.NewFaultStore(newLocal(t))
	}, storagetest.Options{StaleLeftovers: true, LargeSize: 1 << 20})
}

func readAll(t *testing.T, st storage.Store, h storage.FileHandle) ([]byte, error) {
	t.Helper()
	r, err := st.Open(t.Context(), h)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return io.ReadAll(r)
}

func mustRead(t *testing.T, st storage.Store, h storage.FileHandle, want string) {
	t.Helper()
	got, err := readAll(t, st, h)
	if err != nil || string(got) != want {
		t.Fatalf("read %s = %q, %v; want %q", h, got, err, want)
	}
}

func mustAbsent(t *testing.T, st storage.Store, h storage.FileHandle) {
	t.Helper()
	if got, err := readAll(t, st, h); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("read %s = %q, %v; want ErrNotFound", h, got, err)
	}
}

// write creates, writes and commits name in b through st and returns the handle
// and the Commit error.
func write(t *testing.T, st storage.Store, b storage.BackupHandle, name, data string) (storage.FileHandle, error) {
	t.Helper()
	w, err := st.Create(t.Context(), b, name)
	if err != nil {
		t.Fatalf("Create %s: %v", name, err)
	}
	defer w.Abort()
	if _, err := io.WriteString(w, data); err != nil {
		t.Fatalf("Write %s: %v", name, err)
	}
	return w.Handle(), w.Commit()
}

// createOnlyFaults are the modes of a create-only write's first attempt: the error
// the caller gets (errIs), whether the file is visible right after (visible), and
// what a retry of the same name gets (retry; nil: it succeeds).
var createOnlyFaults = []struct {
	mode    storagetest.Mode
	visible bool
	retry   error
	errIs   error
}{
	{storagetest.FailBefore, false, nil, storagetest.ErrInjected},
	{storagetest.FailAfter, true, storage.ErrAlreadyExists, storagetest.ErrInjected},
	{storagetest.FailThenCommit, false, storage.ErrAlreadyExists, storagetest.ErrInjected},
	{storagetest.Duplicate, true, storage.ErrAlreadyExists, storage.ErrAlreadyExists},
}

func TestFaultStoreMetadata(t *testing.T) {
	for _, tc := range createOnlyFaults {
		t.Run(tc.mode.String(), func(t *testing.T) {
			base := newLocal(t)
			f := storagetest.NewFaultStore(base, storagetest.Nth(storagetest.OpSaveMetadata, 1, storagetest.Fault{Mode: tc.mode}))
			_, err := f.SaveMetadata(t.Context(), "lease_1", []byte("ours"))
			if !errors.Is(err, tc.errIs) {
				t.Fatalf("first SaveMetadata: %v, want %v", err, tc.errIs)
			}
			if tc.visible {
				mustRead(t, f, "metadata/lease_1", "ours")
			} else {
				mustAbsent(t, f, "metadata/lease_1")
			}
			_, err = f.SaveMetadata(t.Context(), "lease_1", []byte("retry"))
			if tc.retry == nil && err != nil || tc.retry != nil && !errors.Is(err, tc.retry) {
				t.Fatalf("retried SaveMetadata: %v, want %v", err, tc.retry)
			}
			want := "ours"
			if tc.retry == nil {
				want = "retry"
			}
			mustRead(t, base, "metadata/lease_1", want)
			if n := f.Count(storagetest.OpSaveMetadata); n != 2 {
				t.Fatalf("Count(SaveMetadata) = %d, want 2 (a duplicate is not counted twice)", n)
			}
		})
	}
}

func TestFaultStoreCommit(t *testing.T) {
	for _, tc := range createOnlyFaults {
		t.Run(tc.mode.String(), func(t *testing.T) {
			base := newLocal(t)
			f := storagetest.NewFaultStore(base, storagetest.Nth(storagetest.OpCommit, 1, storagetest.Fault{Mode: tc.mode}))
			b, err := f.CreateBackup(t.Context(), "b")
			if err != nil {
				t.Fatal(err)
			}
			h, err := write(t, f, b, "chunk-0", "first")
			if !errors.Is(err, tc.errIs) {
				t.Fatalf("first Commit: %v, want %v", err, tc.errIs)
			}
			files, err := f.ListFiles(t.Context(), b)
			if err != nil || len(files) != map[bool]int{false: 0, true: 1}[tc.visible] {
				t.Fatalf("ListFiles after the first commit = %v, %v; visible %v", files, err, tc.visible)
			}
			_, err = write(t, f, b, "chunk-0", "second")
			if tc.retry == nil && err != nil || tc.retry != nil && !errors.Is(err, tc.retry) {
				t.Fatalf("retried commit: %v, want %v", err, tc.retry)
			}
			want := "first"
			if tc.retry == nil {
				want = "second"
			}
			mustRead(t, base, h, want)
			if err := f.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A commit that fails now and lands later: the writer's Abort does not undo it,
// and Settle (or Close) lands it when no later Commit does.
func TestFaultStoreFailThenCommitSettles(t *testing.T) {
	base := newLocal(t)
	f := storagetest.NewFaultStore(base,
		storagetest.Nth(storagetest.OpCommit, 1, storagetest.Fault{Mode: storagetest.FailThenCommit}),
		storagetest.Nth(storagetest.OpDeleteBackup, 1, storagetest.Fault{Mode: storagetest.FailThenCommit, LandBefore: storagetest.OpListBackups}))
	b, err := f.CreateBackup(t.Context(), "b")
	if err != nil {
		t.Fatal(err)
	}
	h, err := write(t, f, b, "chunk-0", "late")
	if !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("Commit: %v", err)
	}
	mustAbsent(t, f, h)
	f.Settle()
	mustRead(t, f, h, "late")

	if err := f.DeleteBackup(t.Context(), b); !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("DeleteBackup: %v", err)
	}
	mustRead(t, f, h, "late") // not deleted yet
	infos, err := f.ListBackups(t.Context())
	if err != nil || len(infos) != 0 {
		t.Fatalf("ListBackups after the late delete landed = %v, %v; want none", infos, err)
	}
}

func TestFaultStoreDuplicateCreateBackup(t *testing.T) {
	base := newLocal(t)
	f := storagetest.NewFaultStore(base, storagetest.Every(storagetest.OpCreateBackup, storagetest.Fault{Mode: storagetest.Duplicate}))
	b, err := f.CreateBackup(t.Context(), "snap")
	if err != nil {
		t.Fatal(err)
	}
	infos, err := base.ListBackups(t.Context())
	if err != nil || len(infos) != 2 || (infos[0].Handle != b && infos[1].Handle != b) {
		t.Fatalf("ListBackups = %v, %v; want the returned folder %s and a leftover", infos, err, b)
	}
}

func TestFaultStoreCut(t *testing.T) {
	base := newLocal(t)
	f := storagetest.NewFaultStore(base,
		storagetest.Nth(storagetest.OpWrite, 2, storagetest.Fault{Mode: storagetest.Cut, Keep: 3}),
		storagetest.Nth(storagetest.OpOpen, 2, storagetest.Fault{Mode: storagetest.Cut, Keep: 4}))
	b, _ := f.CreateBackup(t.Context(), "b")
	w, err := f.Create(t.Context(), b, "f")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := w.Write([]byte("hello ")); n != 6 || err != nil {
		t.Fatalf("first Write = %d, %v", n, err)
	}
	if n, err := w.Write([]byte("world")); n != 3 || !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("cut Write = %d, %v; want 3, ErrInjected", n, err)
	}
	// A producer that ignores the error and commits gets the cut stream: the cut is
	// in the data path, not a pretend.
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	mustRead(t, f, w.Handle(), "hello wor") // the first Open
	got, err := readAll(t, f, w.Handle())
	if string(got) != "hell" || !errors.Is(err, storagetest.ErrInjected) {
		t.Fatalf("cut read = %q, %v; want %q, ErrInjected", got, err, "hell")
	}
}

func TestFaultStoreBlockAndHooks(t *testing.T) {
	base := newLocal(t)
	release := make(chan struct{})
	var before, after int
	f := storagetest.NewFaultStore(base, func(c storagetest.Call) storagetest.Fault {
		switch c.Op {
		case storagetest.OpListMetadata:
			return storagetest.Fault{Block: release, Before: func() { before++ }, After: func(o *storagetest.Outcome) {
				after++
				o.Handles = append(o.Handles, "metadata/extra")
			}}
		case storagetest.OpListBackups:
			return storagetest.Fault{Block: make(chan struct{})} // never released
		}
		return storagetest.Fault{}
	})
	done := make(chan []storage.FileHandle)
	go func() {
		hs, _ := f.ListMetadata(context.Background())
		done <- hs
	}()
	select {
	case <-done:
		t.Fatal("a blocked call returned")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	if hs := <-done; len(hs) != 1 || hs[0] != "metadata/extra" || before != 1 || after != 1 {
		t.Fatalf("ListMetadata = %v; hooks ran %d, %d times", hs, before, after)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := f.ListBackups(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("blocked call with a cancelled context: %v", err)
	}
	calls := f.Calls()
	if len(calls) != 2 || calls[0].Op != storagetest.OpListMetadata || calls[1].Op != storagetest.OpListBackups || calls[1].N != 1 {
		t.Fatalf("Calls = %+v", calls)
	}
}

func TestFaultStoreErrAndCounts(t *testing.T) {
	base := newLocal(t)
	boom := storage.Permanent(errors.New("permission denied"))
	f := storagetest.NewFaultStore(base)
	f.AddRule(func(c storagetest.Call) storagetest.Fault {
		if c.Op == storagetest.OpCreate && c.Name == "txn-1" {
			return storagetest.Fault{Mode: storagetest.FailBefore, Err: boom}
		}
		return storagetest.Fault{}
	})
	b, _ := f.CreateBackup(t.Context(), "b")
	if _, err := f.Create(t.Context(), b, "txn-1"); !storage.IsPermanent(err) {
		t.Fatalf("Create: %v, want the rule's permanent error", err)
	}
	if _, err := write(t, f, b, "txn-2", "x"); err != nil {
		t.Fatal(err)
	}
	if f.Count(storagetest.OpCreate) != 2 || f.Count(storagetest.OpWrite) != 1 || f.Count(storagetest.OpCommit) != 1 {
		t.Fatalf("counts: create %d write %d commit %d", f.Count(storagetest.OpCreate), f.Count(storagetest.OpWrite), f.Count(storagetest.OpCommit))
	}
	var names []string
	for _, c := range f.Calls() {
		if c.Op == storagetest.OpCreate {
			names = append(names, c.Name)
		}
	}
	if !bytes.Equal([]byte(names[0]+names[1]), []byte("txn-1txn-2")) {
		t.Fatalf("Create calls %v", names)
	}
	if f.Unwrap() != base {
		t.Fatal("Unwrap")
	}
}

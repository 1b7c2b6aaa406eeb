package storage_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

func newLocal(t *testing.T) storage.Store {
	t.Helper()
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func TestConfirmMetadata(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	werr := errors.New("timeout after upload")
	if _, err := st.SaveMetadata(ctx, "a.meta", []byte("ours\n")); err != nil {
		t.Fatal(err)
	}
	h, err := storage.ConfirmMetadata(ctx, st, "a.meta", []byte("ours\n"), werr)
	if err != nil || h == "" {
		t.Fatalf("same bytes: %q, %v", h, err)
	}
	if _, err := storage.ConfirmMetadata(ctx, st, "a.meta", []byte("theirs\n"), werr); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("other bytes: %v", err)
	}
	if _, err := storage.ConfirmMetadata(ctx, st, "a.meta", []byte("ours\nand more\n"), werr); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("a prefix of ours: %v", err)
	}
	if _, err := storage.ConfirmMetadata(ctx, st, "b.meta", []byte("ours\n"), werr); err != werr {
		t.Fatalf("absent: %v", err)
	}
}

func TestConfirmFile(t *testing.T) {
	ctx := context.Background()
	st := newLocal(t)
	b, err := st.CreateBackup(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	w, err := st.Create(ctx, b, "f")
	if err != nil {
		t.Fatal(err)
	}
	data := []byte("chunk bytes")
	w.Write(data)
	if err := w.Commit(); err != nil {
		t.Fatal(err)
	}
	werr := errors.New("commit reported failure")
	if err := storage.ConfirmFile(ctx, st, w.Handle(), int64(len(data)), sha256.Sum256(data), werr); err != nil {
		t.Fatalf("same bytes: %v", err)
	}
	other := []byte("chunk bytez")
	if err := storage.ConfirmFile(ctx, st, w.Handle(), int64(len(other)), sha256.Sum256(other), werr); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("other bytes: %v", err)
	}
	if err := storage.ConfirmFile(ctx, st, storage.FileHandle(string(b)+"/g"), 1, [32]byte{}, werr); err != werr {
		t.Fatalf("absent: %v", err)
	}
	if err := storage.ConfirmFile(ctx, st, "../etc/passwd", 1, [32]byte{}, werr); err == nil || errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("bad handle: %v", err)
	}
}

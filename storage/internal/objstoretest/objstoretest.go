// Package objstoretest is the second conformance suite, for the object-store backends
// (S3, GCS, Azure Blob) only: beside what storage/storagetest checks for every
// backend, it checks what objects, multipart/block uploads and folder markers add:
// round trips at part boundaries, create-only commit races, no open upload after
// abort, cancel or a failed commit, and folder and metadata listings with markers.
// The emulators it runs against are started by storage/internal/emulator.
package objstoretest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

// Harness describes an object-store backend under test for Run.
type Harness struct {
	// New returns a fresh, empty store; the harness closes it.
	New func(t *testing.T) storage.Store
	// PartSize is the store's part (or chunk) size, so tests can write multi-part files.
	PartSize int
	// OpenUploads, if not nil, reports how many incomplete uploads (open multipart
	// uploads, uncommitted blobs) the emulator holds, where observable.
	OpenUploads func(ctx context.Context) (int, error)
}

// Run runs the object-store specific checks shared by the S3, GCS and Azure
// backends: multi-part round trips, create-only races, nothing visible and no open
// upload after abort, cancel or a failed commit, and the folder and metadata
// operations.
func Run(t *testing.T, h Harness) {
	t.Run("RoundTripSizes", func(t *testing.T) { roundTripSizes(t, h) })
	t.Run("AbortLeavesNothing", func(t *testing.T) { abortLeavesNothing(t, h) })
	t.Run("CancelMidWrite", func(t *testing.T) { cancelMidWrite(t, h) })
	t.Run("CreateOnlyRace", func(t *testing.T) { createOnlyRace(t, h) })
	t.Run("FoldersAndMetadata", func(t *testing.T) { foldersAndMetadata(t, h) })
}

// newFolder returns a fresh store with one new backup folder.
func newFolder(t *testing.T, h Harness, name string) (storage.Store, storage.BackupHandle) {
	st := newStore(t, h)
	b, err := st.CreateBackup(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return st, b
}

func newStore(t *testing.T, h Harness) storage.Store {
	st := h.New(t)
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return st
}

// Payload returns n deterministic pseudo-random bytes.
func Payload(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	for i := n &^ 7; i < n; i++ {
		b[i] = byte(r.Uint32())
	}
	return b
}

// ReadAll opens h and returns its content.
func ReadAll(t testing.TB, st storage.Store, h storage.FileHandle) []byte {
	t.Helper()
	rc, err := st.Open(context.Background(), h)
	if err != nil {
		t.Fatalf("open %s: %v", h, err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatalf("read %s: %v", h, err)
	}
	return b
}

func assertAbsent(t *testing.T, st storage.Store, h storage.FileHandle) {
	t.Helper()
	rc, err := st.Open(context.Background(), h)
	if err == nil {
		rc.Close()
		t.Fatalf("%s is visible, want absent", h)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("open %s: %v, want ErrNotFound", h, err)
	}
}

func assertNoUploads(t *testing.T, h Harness, _ storage.Store) {
	t.Helper()
	if h.OpenUploads == nil {
		return
	}
	n, err := h.OpenUploads(context.Background())
	if err != nil {
		t.Fatalf("count open uploads: %v", err)
	}
	if n != 0 {
		t.Fatalf("%d incomplete uploads left open, want 0", n)
	}
}

// writeInPieces writes data in irregular pieces, as a compressor would.
func writeInPieces(w io.Writer, data []byte) error {
	for i, step := 0, 1; i < len(data); step = step*7%65521 + 1 {
		n := min(step, len(data)-i)
		if _, err := w.Write(data[i : i+n]); err != nil {
			return err
		}
		i += n
	}
	return nil
}

func roundTripSizes(t *testing.T, h Harness) {
	ctx := context.Background()
	st, b := newFolder(t, h, "sizes")
	p := h.PartSize
	for i, n := range []int{0, 1, p - 1, p, p + 1, 2*p + 12345} {
		data := Payload(n, uint64(i))
		w, err := st.Create(ctx, b, fmt.Sprintf("f%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeInPieces(w, data); err != nil {
			t.Fatalf("write %d bytes: %v", n, err)
		}
		assertAbsent(t, st, w.Handle())
		if err := w.Commit(); err != nil {
			t.Fatalf("commit %d bytes: %v", n, err)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("abort after commit: %v", err)
		}
		if got := ReadAll(t, st, w.Handle()); !bytes.Equal(got, data) {
			t.Fatalf("file of %d bytes read back as %d bytes, content differs", n, len(got))
		}
	}
	assertNoUploads(t, h, st)
}

func abortLeavesNothing(t *testing.T, h Harness) {
	ctx := context.Background()
	st, b := newFolder(t, h, "abort")
	for i, n := range []int{10, 3*h.PartSize + 7} {
		w, err := st.Create(ctx, b, fmt.Sprintf("f%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if err := writeInPieces(w, Payload(n, 1)); err != nil {
			t.Fatal(err)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("abort: %v", err)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("second abort: %v", err)
		}
		if err := w.Commit(); err == nil {
			t.Fatal("commit after abort succeeded")
		}
		assertAbsent(t, st, w.Handle())
	}
	assertNoUploads(t, h, st)
}

func cancelMidWrite(t *testing.T, h Harness) {
	st, b := newFolder(t, h, "cancel")
	// Cancel at several points: before Commit, and while parts are in flight.
	for i, total := range []int{20 << 20, 4*h.PartSize + 3} {
		ctx, cancel := context.WithCancel(context.Background())
		w, err := st.Create(ctx, b, fmt.Sprintf("f%d", i))
		if err != nil {
			t.Fatal(err)
		}
		data := Payload(total, 2)
		half := total / 2
		if err := writeInPieces(w, data[:half]); err != nil {
			t.Fatal(err)
		}
		cancel()
		_ = writeInPieces(w, data[half:]) // may fail: the context is cancelled
		if err := w.Commit(); err == nil {
			t.Fatal("commit after cancel succeeded")
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("abort after failed commit: %v", err)
		}
		assertAbsent(t, st, w.Handle())
	}
	// Cancel without Commit, only Abort: the deferred-Abort pattern.
	ctx, cancel := context.WithCancel(context.Background())
	w, err := st.Create(ctx, b, "deferred")
	if err != nil {
		t.Fatal(err)
	}
	_ = writeInPieces(w, Payload(3*h.PartSize, 3))
	cancel()
	if err := w.Abort(); err != nil {
		t.Fatalf("abort after cancel: %v", err)
	}
	assertAbsent(t, st, w.Handle())
	assertNoUploads(t, h, st)
}

func createOnlyRace(t *testing.T, h Harness) {
	ctx := context.Background()
	st, b := newFolder(t, h, "race")
	for round, size := range []int{100, 2*h.PartSize + 1} {
		name := fmt.Sprintf("f%d", round)
		var writers [2]storage.Writer
		var payloads [2][]byte
		for i := range writers {
			w, err := st.Create(ctx, b, name)
			if err != nil {
				t.Fatal(err)
			}
			writers[i] = w
			payloads[i] = Payload(size, uint64(10*round+i))
			if err := writeInPieces(w, payloads[i]); err != nil {
				t.Fatal(err)
			}
		}
		var errs [2]error
		var wg sync.WaitGroup
		for i, w := range writers {
			wg.Go(func() { errs[i] = w.Commit() })
		}
		wg.Wait()
		winner := slices.IndexFunc(errs[:], func(e error) bool { return e == nil })
		if winner < 0 {
			t.Fatalf("no writer won: %v, %v", errs[0], errs[1])
		}
		loser := 1 - winner
		if !errors.Is(errs[loser], storage.ErrAlreadyExists) {
			t.Fatalf("losing commit: %v, want ErrAlreadyExists", errs[loser])
		}
		for _, w := range writers {
			if err := w.Abort(); err != nil {
				t.Fatalf("abort: %v", err)
			}
		}
		if got := ReadAll(t, st, writers[winner].Handle()); !bytes.Equal(got, payloads[winner]) {
			t.Fatal("file does not hold the winner's bytes")
		}
	}
	// A later writer of an existing name fails and leaves the file intact.
	w, err := st.Create(ctx, b, "f0")
	if err != nil {
		t.Fatal(err)
	}
	before := ReadAll(t, st, w.Handle())
	if _, err := w.Write([]byte("other")); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("overwrite commit: %v, want ErrAlreadyExists", err)
	}
	if got := ReadAll(t, st, w.Handle()); !bytes.Equal(got, before) {
		t.Fatal("existing file changed by a failed create-only write")
	}
	assertNoUploads(t, h, st)
}

func foldersAndMetadata(t *testing.T, h Harness) {
	ctx := context.Background()
	st := newStore(t, h)
	start := time.Now().Add(-time.Minute)
	empty, err := st.CreateBackup(ctx, "empty")
	if err != nil {
		t.Fatal(err)
	}
	full, err := st.CreateBackup(ctx, "full")
	if err != nil {
		t.Fatal(err)
	}
	again, err := st.CreateBackup(ctx, "full")
	if err != nil {
		t.Fatal(err)
	}
	if again == full {
		t.Fatalf("CreateBackup reused %s", full)
	}
	var files []storage.FileHandle
	for i := range 3 {
		w, err := st.Create(ctx, full, fmt.Sprintf("chunk-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(Payload(1000, uint64(i))); err != nil {
			t.Fatal(err)
		}
		if err := w.Commit(); err != nil {
			t.Fatal(err)
		}
		files = append(files, w.Handle())
	}
	m1 := metadataCreateOnly(t, st)
	listsFiles(t, st, empty, full, files)
	listsFolders(t, st, start, empty, full, again)

	if err := st.DeleteBackup(ctx, full); err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		assertAbsent(t, st, f)
	}
	if got, err := st.ListFiles(ctx, full); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ListFiles of a deleted folder = %v, %v; want ErrNotFound", got, err)
	}
	infos, err := st.ListBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(infos) != 2 {
		t.Fatalf("after delete ListBackups = %v, want 2", infos)
	}
	if err := st.DeleteMetadata(ctx, m1); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteMetadata(ctx, m1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("second DeleteMetadata: %v, want ErrNotFound", err)
	}
	assertAbsent(t, st, m1)
	if _, err := st.Open(ctx, "../etc/passwd"); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("Open(../etc/passwd): %v, want ErrInvalidName", err)
	}
	if err := st.DeleteBackup(ctx, "a/../b"); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("DeleteBackup(a/../b): %v, want ErrInvalidName", err)
	}
	if _, err := st.Create(ctx, empty, "../x"); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("Create(../x): %v, want ErrInvalidName", err)
	}
}

// metadataCreateOnly saves two metadata files, checks that a second save of a name
// fails and leaves the first intact and that both are listed; it returns the first.
func metadataCreateOnly(t *testing.T, st storage.Store) storage.FileHandle {
	ctx := context.Background()
	m1, err := st.SaveMetadata(ctx, "epoch_0-1.meta", []byte("one"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, "epoch_0-1.meta", []byte("two")); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("second SaveMetadata: %v, want ErrAlreadyExists", err)
	}
	if got := ReadAll(t, st, m1); string(got) != "one" {
		t.Fatalf("metadata reads %q, want %q", got, "one")
	}
	m2, err := st.SaveMetadata(ctx, "txn_0-9.meta", []byte("two"))
	if err != nil {
		t.Fatal(err)
	}
	metas, err := st.ListMetadata(ctx)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(metas)
	if want := []storage.FileHandle{m1, m2}; !slices.Equal(metas, want) {
		t.Fatalf("ListMetadata = %v, want %v", metas, want)
	}

	return m1
}

// listsFiles checks ListFiles of an empty folder and of one holding files.
func listsFiles(t *testing.T, st storage.Store, empty, full storage.BackupHandle, files []storage.FileHandle) {
	ctx := context.Background()
	// The folder marker is not a file: an empty folder lists no file, a full one
	// exactly its chunks.
	if got, err := st.ListFiles(ctx, empty); err != nil || len(got) != 0 {
		t.Fatalf("ListFiles of the empty folder = %v, %v; want no files", got, err)
	}
	listed, err := st.ListFiles(ctx, full)
	if err != nil {
		t.Fatal(err)
	}
	if len(listed) != len(files) {
		t.Fatalf("ListFiles = %v, want %v", listed, files)
	}
	for i, f := range listed {
		if f.Handle != files[i] || f.Size != 1000 {
			t.Fatalf("ListFiles[%d] = %+v, want %s of 1000 bytes", i, f, files[i])
		}
	}

}

// listsFolders checks that ListBackups lists the three folders with their ages and
// the full one's size.
func listsFolders(t *testing.T, st storage.Store, start time.Time, empty, full, again storage.BackupHandle) {
	ctx := context.Background()
	infos, err := st.ListBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byHandle := map[storage.BackupHandle]storage.BackupInfo{}
	for _, in := range infos {
		byHandle[in.Handle] = in
	}
	if len(infos) != 3 {
		t.Fatalf("ListBackups = %v, want 3 folders", infos)
	}
	for _, hb := range []storage.BackupHandle{empty, full, again} {
		in, ok := byHandle[hb]
		if !ok {
			t.Fatalf("ListBackups misses %s", hb)
		}
		if in.ModTime.Before(start) || in.ModTime.After(time.Now().Add(time.Minute)) {
			t.Fatalf("%s ModTime %v out of range", hb, in.ModTime)
		}
	}
	if sz := byHandle[full].Size; sz < 3000 || sz > 3000+1024 {
		t.Fatalf("full folder size %d, want 3000 bytes of files (+ a small marker)", sz)
	}
}

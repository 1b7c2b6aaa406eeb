// Package storagetest is the conformance suite every storage backend must pass. It
// checks the storage contract (atomic visibility, create-only writes, handle
// validation, listing, deletion, stale-upload sweeps) and, after every case, that no
// goroutine and no child process started by the store is left behind.
package storagetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sync/errgroup"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/storage"
)

// HugeEnv is the environment variable that enables the 1 GiB streaming case.
const HugeEnv = "LEDGERVAULT_TEST_HUGE"

// Options adapts the suite to a backend.
type Options struct {
	// OpenUploads, when set, counts incomplete multipart or block uploads (or temporary
	// files) the backend holds; after every aborted write it must report 0.
	OpenUploads func(ctx context.Context) (int, error)
	// SkipHuge skips the 1 GiB stream even when LEDGERVAULT_TEST_HUGE=1.
	SkipHuge bool
	// LeakIgnores are passed to goleak.VerifyNone after every case, for goroutines the
	// test harness itself keeps (fake servers, HTTP keep-alive connections).
	LeakIgnores []goleak.Option
	// StaleLeftovers says that a writer abandoned without Commit or Abort leaves
	// something AbortStaleUploads can find (a temp file, an open multipart upload).
	StaleLeftovers bool
	// MaxHeapGrowth bounds the heap growth while streaming 64 MiB (and 1 GiB); zero
	// means 40 MiB.
	MaxHeapGrowth uint64
	// LargeSize is the size of the "large" file in the failure cases; zero means
	// 20 MiB + 12345 bytes.
	LargeSize int64
}

// ChildProcesses lists child processes of the test process that are still around,
// including descendants reparented away (see proc.ChildProcesses).
func ChildProcesses() ([]int, error) { return proc.ChildProcesses() }

// Run runs the conformance suite. newStore returns a fresh, empty store for each case;
// the suite closes it at the end of the case.
func Run(t *testing.T, newStore func(t *testing.T) storage.Store, opts Options) {
	if opts.MaxHeapGrowth == 0 {
		opts.MaxHeapGrowth = 40 << 20
	}
	if opts.LargeSize == 0 {
		opts.LargeSize = 20<<20 + 12345
	}
	s := &suite{newStore: newStore, opts: opts}
	for _, c := range s.cases() {
		t.Run(c.name, func(t *testing.T) {
			t.Cleanup(func() { s.verifyClean(t) })
			st := newStore(t)
			t.Cleanup(func() {
				if err := st.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			c.fn(t, st)
		})
	}
}

type testCase struct {
	name string
	fn   func(t *testing.T, st storage.Store)
}

type suite struct {
	newStore func(t *testing.T) storage.Store
	opts     Options
}

func (s *suite) cases() []testCase {
	cs := []testCase{
		{"CommitSmall", func(t *testing.T, st storage.Store) { s.commitRoundTrip(t, st, 1000) }},
		{"CommitEmpty", func(t *testing.T, st storage.Store) { s.commitRoundTrip(t, st, 0) }},
		{"CommitLarge", func(t *testing.T, st storage.Store) { s.commitRoundTrip(t, st, s.opts.LargeSize) }},
		{"AbortAfterCommitIsNoop", s.abortAfterCommit},
		{"CreateOnly", s.createOnly},
		{"Metadata", s.metadata},
		{"UniqueBackupHandles", s.uniqueBackups},
		{"ConcurrentWriters", s.concurrentWriters},
		{"Stream64MiB", func(t *testing.T, st storage.Store) { s.stream(t, st, 64<<20) }},
		{"Huge1GiB", func(t *testing.T, st storage.Store) {
			if os.Getenv(HugeEnv) != "1" || s.opts.SkipHuge {
				t.Skipf("set %s=1 to stream 1 GiB", HugeEnv)
			}
			s.stream(t, st, 1<<30)
		}},
		{"OpenMissing", s.openMissing},
		{"TraversalHandles", s.traversal},
		{"InvalidNames", s.invalidNames},
		{"ListBackups", s.listBackups},
		{"ListFiles", s.listFiles},
		{"ListFilesMissingFolder", s.listFilesMissing},
		{"DeleteBackup", s.deleteBackup},
		{"AbortStaleUploads", s.abortStale},
	}
	for _, size := range []struct {
		name string
		n    int64
	}{{"Small", 100 << 10}, {"Large", s.opts.LargeSize}} {
		n := size.n
		cs = append(cs,
			testCase{"Abort" + size.name, func(t *testing.T, st storage.Store) { s.abort(t, st, n) }},
			testCase{"Cancel" + size.name, func(t *testing.T, st storage.Store) { s.cancel(t, st, n) }},
			testCase{"FailingProducer" + size.name, func(t *testing.T, st storage.Store) { s.failingProducer(t, st, n) }},
			testCase{"Panic" + size.name, func(t *testing.T, st storage.Store) { s.panicking(t, st, n) }},
		)
	}
	return append(cs, s.ambiguousCases()...)
}

// verifyClean checks that no goroutine and no child process outlived the case.
func (s *suite) verifyClean(t *testing.T) {
	t.Helper()
	goleak.VerifyNone(t, s.opts.LeakIgnores...)
	pids, err := ChildProcesses()
	if err != nil {
		t.Errorf("list child processes: %v", err)
		return
	}
	if len(pids) > 0 {
		t.Errorf("child processes left after the case: %s", proc.Describe(pids))
	}
}

// content is a deterministic pseudo-random byte stream of a given size.
type content struct {
	seed uint64
	size int64
}

func newContent(seed uint64, size int64) content { return content{seed: seed, size: size} }

// reader returns the content as a stream.
func (c content) reader() io.Reader {
	var key [32]byte
	key[0] = byte(c.seed)
	key[1] = byte(c.seed >> 8)
	key[2] = byte(c.seed >> 16)
	return io.LimitReader(mrand.NewChaCha8(key), c.size)
}

// sum is the SHA-256 of the content.
func (c content) sum(t *testing.T) [32]byte {
	h := sha256.New()
	if _, err := io.Copy(h, c.reader()); err != nil {
		t.Fatalf("hash content: %v", err)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func newBackup(t *testing.T, st storage.Store, name string) storage.BackupHandle {
	t.Helper()
	b, err := st.CreateBackup(t.Context(), name)
	if err != nil {
		t.Fatalf("CreateBackup(%q): %v", name, err)
	}
	if err := storage.ValidateHandle(string(b)); err != nil {
		t.Fatalf("CreateBackup(%q) returned invalid handle: %v", name, err)
	}
	return b
}

// writeFile writes c under name and commits it.
func writeFile(t *testing.T, st storage.Store, b storage.BackupHandle, name string, c content) storage.FileHandle {
	t.Helper()
	w, err := st.Create(t.Context(), b, name)
	if err != nil {
		t.Fatalf("Create(%q): %v", name, err)
	}
	defer w.Abort()
	if _, err := io.CopyBuffer(w, c.reader(), make([]byte, 256<<10)); err != nil {
		t.Fatalf("write %q: %v", name, err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit %q: %v", name, err)
	}
	if err := storage.ValidateHandle(string(w.Handle())); err != nil {
		t.Fatalf("writer handle: %v", err)
	}
	return w.Handle()
}

// checkContent reads h and compares it with c.
func checkContent(t *testing.T, st storage.Store, h storage.FileHandle, c content) {
	t.Helper()
	r, err := st.Open(t.Context(), h)
	if err != nil {
		t.Fatalf("Open(%q): %v", h, err)
	}
	hs := sha256.New()
	n, err := io.Copy(hs, r)
	if cerr := r.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("read %q: %v", h, err)
	}
	if n != c.size {
		t.Fatalf("read %q: %d bytes, want %d", h, n, c.size)
	}
	var got [32]byte
	hs.Sum(got[:0])
	if got != c.sum(t) {
		t.Fatalf("read %q: content differs from what was written", h)
	}
}

// checkAbsent checks that nothing is visible under h and no upload is left open.
func (s *suite) checkAbsent(t *testing.T, st storage.Store, h storage.FileHandle) {
	t.Helper()
	r, err := st.Open(t.Context(), h)
	if err == nil {
		n, _ := io.Copy(io.Discard, r)
		r.Close()
		t.Fatalf("Open(%q) after a failed write succeeded (%d bytes visible)", h, n)
	}
	if !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open(%q) after a failed write: %v, want ErrNotFound", h, err)
	}
	s.checkNoOpenUploads(t, st)
}

func (s *suite) checkNoOpenUploads(t *testing.T, st storage.Store) {
	t.Helper()
	if s.opts.OpenUploads == nil {
		return
	}
	n, err := s.opts.OpenUploads(t.Context())
	if err != nil {
		t.Fatalf("OpenUploads: %v", err)
	}
	if n != 0 {
		t.Fatalf("OpenUploads = %d after the writer ended, want 0", n)
	}
}

func (s *suite) commitRoundTrip(t *testing.T, st storage.Store, size int64) {
	b := newBackup(t, st, "roundtrip")
	c := newContent(uint64(size), size)
	h := writeFile(t, st, b, "file-1.bin", c)
	checkContent(t, st, h, c)
	s.checkNoOpenUploads(t, st)
}

func (s *suite) abortAfterCommit(t *testing.T, st storage.Store) {
	b := newBackup(t, st, "abortaftercommit")
	c := newContent(7, 4096)
	w, err := st.Create(t.Context(), b, "f")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(w, c.reader()); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	for i := 0; i < 2; i++ {
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort after Commit: %v, want nil", err)
		}
	}
	checkContent(t, st, w.Handle(), c)
}

func (s *suite) abort(t *testing.T, st storage.Store, size int64) {
	b := newBackup(t, st, "abort")
	w, err := st.Create(t.Context(), b, "aborted.bin")
	if err != nil {
		t.Fatal(err)
	}
	h := w.Handle()
	if _, err := io.Copy(w, newContent(1, size).reader()); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("second Abort: %v", err)
	}
	if err := w.Commit(); err == nil {
		t.Fatal("Commit after Abort succeeded")
	}
	s.checkAbsent(t, st, h)
}

func (s *suite) cancel(t *testing.T, st storage.Store, size int64) {
	rng := mrand.New(mrand.NewPCG(uint64(size), uint64(time.Now().UnixNano())))
	offsets := []int64{0, rng.Int64N(size + 1), size}
	for i, off := range offsets {
		b := newBackup(t, st, "cancel")
		name := fmt.Sprintf("cancelled-%d.bin", i)
		ctx, cancel := context.WithCancel(t.Context())
		w, err := st.Create(ctx, b, name)
		if err != nil {
			cancel()
			t.Fatal(err)
		}
		h := w.Handle()
		c := newContent(2, size)
		if _, err := io.CopyN(w, c.reader(), off); err != nil {
			t.Fatalf("write %d bytes before cancel: %v", off, err)
		}
		cancel()
		// Writes after the cancel may fail; the point is that Commit must.
		_, _ = io.Copy(w, io.LimitReader(c.reader(), size-off))
		if err := w.Commit(); err == nil {
			t.Fatalf("Commit after cancel at offset %d of %d succeeded", off, size)
		}
		if err := w.Abort(); err != nil {
			t.Fatalf("Abort after failed Commit: %v", err)
		}
		s.checkAbsent(t, st, h)
	}
}

// errReader yields n bytes of content, then an error.
var errProducer = errors.New("producer failed")

func (s *suite) failingProducer(t *testing.T, st storage.Store, size int64) {
	b := newBackup(t, st, "failing")
	off := size / 2
	var h storage.FileHandle
	err := func() error {
		w, err := st.Create(t.Context(), b, "failing.bin")
		if err != nil {
			return fmt.Errorf("create: %w", err)
		}
		defer w.Abort()
		h = w.Handle()
		r := io.MultiReader(io.LimitReader(newContent(3, size).reader(), off), iotestErr{errProducer})
		if _, err := io.Copy(w, r); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		return w.Commit()
	}()
	if !errors.Is(err, errProducer) {
		t.Fatalf("write with failing producer: %v, want the producer's error", err)
	}
	s.checkAbsent(t, st, h)
}

type iotestErr struct{ err error }

func (e iotestErr) Read([]byte) (int, error) { return 0, e.err }

func (s *suite) panicking(t *testing.T, st storage.Store, size int64) {
	b := newBackup(t, st, "panic")
	var h storage.FileHandle
	var aborted atomic.Bool
	recovered := func() (rec any) {
		defer func() { rec = recover() }()
		w, err := st.Create(t.Context(), b, "panicked.bin")
		if err != nil {
			t.Errorf("Create: %v", err)
			return nil
		}
		defer func() {
			if err := w.Abort(); err != nil {
				t.Errorf("Abort during panic: %v", err)
			}
			aborted.Store(true)
		}()
		h = w.Handle()
		if _, err := io.Copy(w, io.LimitReader(newContent(4, size).reader(), size/2+1)); err != nil {
			t.Errorf("write: %v", err)
		}
		panic("producer panicked")
	}()
	if recovered != "producer panicked" {
		t.Fatalf("recovered %v, want the producer's panic", recovered)
	}
	if !aborted.Load() {
		t.Fatal("deferred Abort did not run")
	}
	s.checkAbsent(t, st, h)
}

func (s *suite) createOnly(t *testing.T, st storage.Store) {
	b := newBackup(t, st, "createonly")
	first := newContent(10, 5000)
	h := writeFile(t, st, b, "same.bin", first)
	w, err := st.Create(t.Context(), b, "same.bin")
	if err != nil {
		if !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("second Create: %v, want nil or ErrAlreadyExists", err)
		}
	} else {
		defer w.Abort()
		if _, err := io.Copy(w, newContent(11, 7000).reader()); err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("second write: %v", err)
		}
		if err := w.Commit(); !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("second Commit of the same name: %v, want ErrAlreadyExists", err)
		}
	}
	checkContent(t, st, h, first)
}

func (s *suite) metadata(t *testing.T, st storage.Store) {
	ctx := t.Context()
	list, err := st.ListMetadata(ctx)
	if err != nil {
		t.Fatalf("ListMetadata on an empty store: %v", err)
	}
	if len(list) != 0 {
		t.Fatalf("ListMetadata on an empty store: %v", list)
	}
	want := map[storage.FileHandle][]byte{}
	for i := 0; i < 5; i++ {
		data := []byte(fmt.Sprintf(`{"kind":"test","i":%d}`+"\n", i))
		h, err := st.SaveMetadata(ctx, fmt.Sprintf("meta-%d.json", i), data)
		if err != nil {
			t.Fatalf("SaveMetadata: %v", err)
		}
		if err := storage.ValidateHandle(string(h)); err != nil {
			t.Fatalf("SaveMetadata handle: %v", err)
		}
		want[h] = data
	}
	if _, err := st.SaveMetadata(ctx, "meta-0.json", []byte("other")); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("SaveMetadata of an existing name: %v, want ErrAlreadyExists", err)
	}
	list, err = st.ListMetadata(ctx)
	if err != nil {
		t.Fatalf("ListMetadata: %v", err)
	}
	if len(list) != len(want) {
		t.Fatalf("ListMetadata = %v, want %d handles", list, len(want))
	}
	for _, h := range list {
		data, ok := want[h]
		if !ok {
			t.Fatalf("ListMetadata returned unknown handle %q", h)
		}
		r, err := st.Open(ctx, h)
		if err != nil {
			t.Fatalf("Open(%q): %v", h, err)
		}
		got, err := io.ReadAll(r)
		r.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("metadata %q = %q, %v; want %q", h, got, err, data)
		}
	}
	var victim storage.FileHandle
	for h := range want {
		victim = h
		break
	}
	if err := st.DeleteMetadata(ctx, victim); err != nil {
		t.Fatalf("DeleteMetadata: %v", err)
	}
	if _, err := st.Open(ctx, victim); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Open after DeleteMetadata: %v, want ErrNotFound", err)
	}
	list, err = st.ListMetadata(ctx)
	if err != nil {
		t.Fatalf("ListMetadata: %v", err)
	}
	if len(list) != len(want)-1 {
		t.Fatalf("ListMetadata after delete = %v, want %d handles", list, len(want)-1)
	}
	for _, h := range list {
		if h == victim {
			t.Fatalf("deleted metadata %q still listed", h)
		}
	}
}

func (s *suite) uniqueBackups(t *testing.T, st storage.Store) {
	seen := map[storage.BackupHandle]bool{}
	for i := 0; i < 60; i++ {
		b := newBackup(t, st, "same-name")
		if seen[b] {
			t.Fatalf("CreateBackup returned %q twice", b)
		}
		seen[b] = true
	}
}

func (s *suite) concurrentWriters(t *testing.T, st storage.Store) {
	b := newBackup(t, st, "concurrent")
	const writers = 12
	handles := make([]storage.FileHandle, writers)
	g, ctx := errgroup.WithContext(t.Context())
	for i := 0; i < writers; i++ {
		g.Go(func() error {
			c := newContent(uint64(100+i), int64(256<<10+i*1000))
			w, err := st.Create(ctx, b, fmt.Sprintf("part-%02d", i))
			if err != nil {
				return fmt.Errorf("create %d: %w", i, err)
			}
			defer w.Abort()
			if _, err := io.Copy(w, c.reader()); err != nil {
				return fmt.Errorf("write %d: %w", i, err)
			}
			if err := w.Commit(); err != nil {
				return fmt.Errorf("commit %d: %w", i, err)
			}
			handles[i] = w.Handle()
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	for i, h := range handles {
		checkContent(t, st, h, newContent(uint64(100+i), int64(256<<10+i*1000)))
	}
}

// stream writes size bytes and checks that the heap stays bounded meanwhile.
func (s *suite) stream(t *testing.T, st storage.Store, size int64) {
	b := newBackup(t, st, "stream")
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				var ms runtime.MemStats
				runtime.ReadMemStats(&ms)
				if ms.HeapAlloc > peak.Load() {
					peak.Store(ms.HeapAlloc)
				}
			}
		}
	}()
	c := newContent(99, size)
	h := writeFile(t, st, b, "stream.bin", c)
	close(stop)
	wg.Wait()
	growth := int64(peak.Load()) - int64(base.HeapAlloc)
	t.Logf("streamed %d MiB: peak heap %.1f MiB above a baseline of %.1f MiB",
		size>>20, float64(growth)/(1<<20), float64(base.HeapAlloc)/(1<<20))
	if growth > int64(s.opts.MaxHeapGrowth) {
		t.Fatalf("peak heap grew by %d bytes while streaming %d bytes, limit %d", growth, size, s.opts.MaxHeapGrowth)
	}
	checkContent(t, st, h, c)
}

func (s *suite) openMissing(t *testing.T, st storage.Store) {
	b := newBackup(t, st, "missing")
	for _, h := range []storage.FileHandle{
		storage.FileHandle(string(b) + "/no-such-file"),
		"metadata/no-such-metadata",
		"no-such-backup-xyz/file",
	} {
		if r, err := st.Open(t.Context(), h); !errors.Is(err, storage.ErrNotFound) {
			if err == nil {
				r.Close()
			}
			t.Fatalf("Open(%q): %v, want ErrNotFound", h, err)
		}
	}
}

func (s *suite) traversal(t *testing.T, st storage.Store) {
	for _, h := range []storage.FileHandle{"../x", "/etc/passwd", "a//b", "a/./b", "a/../../b", "", "a\\b", "a/b/", "a\nb"} {
		r, err := st.Open(t.Context(), h)
		if err == nil {
			r.Close()
		}
		if !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("Open(%q): %v, want ErrInvalidName", h, err)
		}
	}
}

func (s *suite) invalidNames(t *testing.T, st storage.Store) {
	ctx := t.Context()
	b := newBackup(t, st, "names")
	for _, name := range []string{"", "../x", "a/b", "-flag", ".hidden", "a b", "$(id)", "a;b", "x\n"} {
		if _, err := st.CreateBackup(ctx, name); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("CreateBackup(%q): %v, want ErrInvalidName", name, err)
		}
		w, err := st.Create(ctx, b, name)
		if err == nil {
			w.Abort()
		}
		if !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Create(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := st.SaveMetadata(ctx, name, []byte("x")); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("SaveMetadata(%q): %v, want ErrInvalidName", name, err)
		}
	}
	for _, bad := range []storage.BackupHandle{"../x", "/abs", "a//b"} {
		w, err := st.Create(ctx, bad, "f")
		if err == nil {
			w.Abort()
		}
		if !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("Create in backup %q: %v, want ErrInvalidName", bad, err)
		}
	}
}

func (s *suite) listBackups(t *testing.T, st storage.Store) {
	before := time.Now().Add(-2 * time.Minute)
	a := newBackup(t, st, "list-a")
	bb := newBackup(t, st, "list-b")
	writeFile(t, st, a, "f", newContent(5, 3000))
	after := time.Now().Add(2 * time.Minute)
	infos, err := st.ListBackups(t.Context())
	if err != nil {
		t.Fatalf("ListBackups: %v", err)
	}
	found := map[storage.BackupHandle]storage.BackupInfo{}
	for _, in := range infos {
		found[in.Handle] = in
	}
	for _, h := range []storage.BackupHandle{a, bb} {
		in, ok := found[h]
		if !ok {
			t.Fatalf("ListBackups = %v, missing %q", infos, h)
		}
		if in.ModTime.Before(before) || in.ModTime.After(after) {
			t.Fatalf("ListBackups %q ModTime %v, want about now", h, in.ModTime)
		}
	}
	if len(infos) != 2 {
		t.Fatalf("ListBackups = %v, want exactly the 2 created folders", infos)
	}
	if sz := found[a].Size; sz != 0 && sz < 3000 {
		t.Fatalf("ListBackups size of %q = %d, want 0 (unknown) or >= 3000", a, sz)
	}
}

func (s *suite) deleteBackup(t *testing.T, st storage.Store) {
	a := newBackup(t, st, "del-a")
	keep := newBackup(t, st, "del-keep")
	h1 := writeFile(t, st, a, "f1", newContent(6, 1000))
	h2 := writeFile(t, st, a, "f2", newContent(7, 2000))
	hk := writeFile(t, st, keep, "f1", newContent(8, 1000))
	if err := st.DeleteBackup(t.Context(), a); err != nil {
		t.Fatalf("DeleteBackup: %v", err)
	}
	for _, h := range []storage.FileHandle{h1, h2} {
		if _, err := st.Open(t.Context(), h); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("Open(%q) after DeleteBackup: %v, want ErrNotFound", h, err)
		}
	}
	checkContent(t, st, hk, newContent(8, 1000))
	infos, err := st.ListBackups(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range infos {
		if in.Handle == a {
			t.Fatalf("deleted backup %q still listed", a)
		}
	}
	if err := st.DeleteBackup(t.Context(), "../etc"); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("DeleteBackup(../etc): %v, want ErrInvalidName", err)
	}
}

func (s *suite) abortStale(t *testing.T, st storage.Store) {
	ctx := t.Context()
	b := newBackup(t, st, "stale")
	// A writer that is neither committed nor aborted stands for one whose process was
	// killed. Write enough that multipart backends have started an upload.
	w, err := st.Create(ctx, b, "stale.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := io.Copy(w, newContent(12, s.opts.LargeSize).reader()); err != nil {
		t.Fatalf("write: %v", err)
	}
	// A killed writer has nothing in flight; one still uploading a part could recreate
	// what the sweep removes (an Azure block staged after the sweep).
	if sw, ok := w.(interface{ Settle() error }); ok {
		if err := sw.Settle(); err != nil {
			t.Fatalf("Settle: %v", err)
		}
	}
	// A long threshold must keep the running upload.
	n, err := st.AbortStaleUploads(ctx, time.Hour)
	if err != nil {
		t.Fatalf("AbortStaleUploads(1h): %v", err)
	}
	if n != 0 {
		t.Fatalf("AbortStaleUploads(1h) removed %d fresh uploads, want 0", n)
	}
	n, err = st.AbortStaleUploads(ctx, 0)
	if err != nil {
		t.Fatalf("AbortStaleUploads(0): %v", err)
	}
	if s.opts.StaleLeftovers && n < 1 {
		t.Fatalf("AbortStaleUploads(0) = %d, want the abandoned upload removed", n)
	}
	s.checkNoOpenUploads(t, st)
	if err := w.Commit(); err == nil {
		t.Logf("Commit after the sweep succeeded; the sweep removed %d uploads", n)
		if s.opts.StaleLeftovers {
			t.Fatal("Commit of a swept upload succeeded")
		}
		return
	}
	if err := w.Abort(); err != nil {
		t.Fatalf("Abort after the sweep: %v", err)
	}
	s.checkAbsent(t, st, w.Handle())
	// A committed file is never a stale upload.
	h := writeFile(t, st, b, "committed.bin", newContent(13, 1000))
	if n, err := st.AbortStaleUploads(ctx, 0); err != nil || n != 0 {
		t.Fatalf("AbortStaleUploads(0) with only committed files = %d, %v; want 0, nil", n, err)
	}
	checkContent(t, st, h, newContent(13, 1000))
}

// checkListing lists backup b and checks that it holds exactly want (by handle),
// with their sizes, modification times within [from, to] (to the second), and that
// every listed handle opens to the committed content.
func checkListing(t *testing.T, st storage.Store, b storage.BackupHandle, want map[storage.FileHandle]content, from, to time.Time) {
	t.Helper()
	files, err := st.ListFiles(t.Context(), b)
	if err != nil {
		t.Fatalf("ListFiles(%q): %v", b, err)
	}
	seen := map[storage.FileHandle]bool{}
	for i, f := range files {
		if i > 0 && files[i-1].Handle >= f.Handle {
			t.Fatalf("ListFiles(%q) not sorted by handle or with duplicates: %v", b, files)
		}
		c, ok := want[f.Handle]
		if !ok {
			t.Fatalf("ListFiles(%q) = %v: lists %q, which is not a committed file of the folder", b, files, f.Handle)
		}
		seen[f.Handle] = true
		if f.Size != c.size {
			t.Fatalf("ListFiles(%q): %q size %d, want %d", b, f.Handle, f.Size, c.size)
		}
		if f.ModTime.Before(from.Truncate(time.Second)) || f.ModTime.After(to) {
			t.Fatalf("ListFiles(%q): %q ModTime %v, want within %v..%v", b, f.Handle, f.ModTime, from, to)
		}
		checkContent(t, st, f.Handle, c)
	}
	for h := range want {
		if !seen[h] {
			t.Fatalf("ListFiles(%q) = %v, missing committed file %q", b, files, h)
		}
	}
}

// listFiles checks that ListFiles reports exactly the committed files of one folder:
// not an aborted writer's, not an in-flight writer's (until it commits), not another
// folder's and not metadata.
func (s *suite) listFiles(t *testing.T, st storage.Store) {
	ctx := t.Context()
	from := time.Now().Add(-2 * time.Minute)
	to := func() time.Time { return time.Now().Add(2 * time.Minute) }
	a := newBackup(t, st, "files-a")
	other := newBackup(t, st, "files-other")
	empty := newBackup(t, st, "files-empty")
	checkListing(t, st, empty, nil, from, to())

	want := map[storage.FileHandle]content{}
	for i, size := range []int64{3000, 0, 100<<10 + 7} {
		c := newContent(uint64(200+i), size)
		want[writeFile(t, st, a, fmt.Sprintf("chunk-%d.bin", i), c)] = c
	}
	ho := writeFile(t, st, other, "chunk-0.bin", newContent(210, 500))
	if _, err := st.SaveMetadata(ctx, "files-a.meta", []byte("meta\n")); err != nil {
		t.Fatalf("SaveMetadata: %v", err)
	}

	// An aborted writer.
	aw, err := st.Create(ctx, a, "aborted.bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(aw, newContent(211, 100<<10).reader()); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := aw.Abort(); err != nil {
		t.Fatalf("Abort: %v", err)
	}
	// A writer still in flight: all its bytes written (enough that multipart backends
	// uploaded parts), not committed yet.
	inflight := newContent(212, s.opts.LargeSize)
	w, err := st.Create(ctx, a, "inflight.bin")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Abort()
	if _, err := io.Copy(w, inflight.reader()); err != nil {
		t.Fatalf("write: %v", err)
	}
	if sw, ok := w.(interface{ Settle() error }); ok {
		if err := sw.Settle(); err != nil { // its parts are uploaded, only the commit is missing
			t.Fatalf("Settle: %v", err)
		}
	}
	checkListing(t, st, a, want, from, to())
	checkListing(t, st, other, map[storage.FileHandle]content{ho: newContent(210, 500)}, from, to())

	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	want[w.Handle()] = inflight
	checkListing(t, st, a, want, from, to())
	checkListing(t, st, empty, nil, from, to())
}

// listFilesMissing checks ListFiles of folders that do not exist (never created,
// deleted) and of invalid handles.
func (s *suite) listFilesMissing(t *testing.T, st storage.Store) {
	ctx := t.Context()
	if _, err := st.ListFiles(ctx, "no-such-backup-xyz"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ListFiles of a folder never created: %v, want ErrNotFound", err)
	}
	b := newBackup(t, st, "files-deleted")
	writeFile(t, st, b, "f", newContent(220, 1000))
	if err := st.DeleteBackup(ctx, b); err != nil {
		t.Fatalf("DeleteBackup: %v", err)
	}
	if files, err := st.ListFiles(ctx, b); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ListFiles of a deleted folder = %v, %v; want ErrNotFound", files, err)
	}
	for _, bad := range []storage.BackupHandle{"../x", "/abs", "a//b", ""} {
		if _, err := st.ListFiles(ctx, bad); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("ListFiles(%q): %v, want ErrInvalidName", bad, err)
		}
	}
}

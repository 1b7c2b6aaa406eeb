package objstore

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/storage"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// recorder is an UploadFunc that keeps copies of the parts.
type recorder struct {
	mu       sync.Mutex
	parts    map[int][]byte
	inFlight atomic.Int32
	peak     atomic.Int32
	delay    time.Duration
	failAt   int
}

func (r *recorder) upload(ctx context.Context, num int, data []byte) (string, error) {
	n := r.inFlight.Add(1)
	defer r.inFlight.Add(-1)
	for {
		p := r.peak.Load()
		if n <= p || r.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-time.After(r.delay):
	case <-ctx.Done():
		return "", ctx.Err()
	}
	if num == r.failAt {
		return "", errors.New("injected failure")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.parts == nil {
		r.parts = map[int][]byte{}
	}
	r.parts[num] = bytes.Clone(data)
	return fmt.Sprintf("id-%d", num), nil
}

func TestPartsOrderAndBound(t *testing.T) {
	r := &recorder{delay: 5 * time.Millisecond}
	started := 0
	p := NewParts(context.Background(), 1000, 2, func(context.Context) error { started++; return nil }, r.upload)
	data := bytes.Repeat([]byte("0123456789abcdefghij"), 1000) // 20000 bytes: 20 parts
	data = append(data, 'z')                                   // and a short last one
	for i := 0; i < len(data); i += 333 {
		if _, err := p.Write(data[i:min(i+333, len(data))]); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	ids, err := p.Wait()
	if err != nil {
		t.Fatal(err)
	}
	p.Stop(time.Second)
	if started != 1 {
		t.Fatalf("start ran %d times, want 1", started)
	}
	if len(ids) != 21 {
		t.Fatalf("%d parts, want 21", len(ids))
	}
	var got []byte
	for i, id := range ids {
		if id != fmt.Sprintf("id-%d", i+1) {
			t.Fatalf("ids[%d] = %q", i, id)
		}
		got = append(got, r.parts[i+1]...)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("reassembled parts differ from the input")
	}
	if pk := r.peak.Load(); pk > 2 {
		t.Fatalf("%d uploads in flight, limit 2", pk)
	}
}

func TestPartsErrorStopsWriting(t *testing.T) {
	r := &recorder{failAt: 2}
	p := NewParts(context.Background(), 100, 1, nil, r.upload)
	defer p.Stop(time.Second)
	var err error
	for range 100 {
		if _, err = p.Write(make([]byte, 100)); err != nil {
			break
		}
	}
	if err == nil {
		_, err = p.Wait()
	}
	if err == nil || !strings.Contains(err.Error(), "injected failure") {
		t.Fatalf("error %v, want the injected failure", err)
	}
}

func TestPartsCancelledParentStopsDispatch(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := &recorder{delay: 20 * time.Millisecond}
	p := NewParts(ctx, 100, 1, nil, r.upload)
	if _, err := p.Write(make([]byte, 150)); err != nil { // one part in flight
		t.Fatal(err)
	}
	cancel()
	if _, err := p.Write(make([]byte, 100)); !errors.Is(err, context.Canceled) {
		t.Fatalf("write after cancel: %v, want context.Canceled", err)
	}
	// The part in flight is not cancelled with the caller's context: it finishes,
	// so clean-up after it cannot race with a late request.
	p.Stop(time.Second)
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.parts) != 1 {
		t.Fatalf("%d parts finished, want the one in flight", len(r.parts))
	}
}

func TestPartsStopCancelsAfterGrace(t *testing.T) {
	r := &recorder{delay: time.Hour}
	p := NewParts(context.Background(), 10, 2, nil, r.upload)
	if _, err := p.Write(make([]byte, 25)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	p.Stop(10 * time.Millisecond)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Stop took %v", d)
	}
	if r.inFlight.Load() != 0 {
		t.Fatal("uploads still running after Stop")
	}
}

// TestPartsMemoryBounded streams 256 MiB through 8 MiB parts with 2 in flight to a
// discarding upload and checks the heap never holds much more than 3 parts.
func TestPartsMemoryBounded(t *testing.T) {
	const part = 8 << 20
	discard := func(ctx context.Context, num int, data []byte) (string, error) {
		time.Sleep(time.Millisecond)
		return "x", nil
	}
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	p := NewParts(context.Background(), part, 2, nil, discard)
	block := make([]byte, 1<<20)
	var peak uint64
	for i := range 256 {
		if _, err := p.Write(block); err != nil {
			t.Fatal(err)
		}
		if i%16 == 0 {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	if _, err := p.Wait(); err != nil {
		t.Fatal(err)
	}
	p.Stop(time.Second)
	growth := int64(peak) - int64(base.HeapAlloc)
	t.Logf("peak heap growth %.1f MiB for 256 MiB in 8 MiB parts", float64(growth)/(1<<20))
	if growth > 4*part+(4<<20) {
		t.Fatalf("heap grew by %d bytes, want at most about 3 parts of %d", growth, part)
	}
}

func TestLayout(t *testing.T) {
	l, err := NewLayout("/a/b/")
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewBackupHandle("epoch", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(string(h), "epoch-20260102T030405Z-") || len(h) != len("epoch-20260102T030405Z-")+16 {
		t.Fatalf("handle %q", h)
	}
	f, err := FileHandle(h, "chunk-0")
	if err != nil {
		t.Fatal(err)
	}
	key := l.Key(string(f))
	if key != "a/b/"+string(h)+"/chunk-0" {
		t.Fatalf("key %q", key)
	}
	b, file, ok := l.BackupOfKey(key)
	if !ok || b != h || file != "chunk-0" {
		t.Fatalf("BackupOfKey(%q) = %q, %q, %v", key, b, file, ok)
	}
	for _, bad := range []string{"a/b/metadata/x", "a/b/x", "other/x/y", "a/b/../y", "a/b/x/y/z", "a/b//y"} {
		if _, _, ok := l.BackupOfKey(bad); ok {
			t.Errorf("BackupOfKey(%q) accepted", bad)
		}
	}
	for _, bad := range []string{"a/../b", "a//b", "."} {
		if _, err := NewLayout(bad); err == nil {
			t.Errorf("NewLayout(%q) accepted", bad)
		}
	}
	for _, bad := range []storage.BackupHandle{"metadata", "a/b", "..", ""} {
		if err := CheckBackup(bad); !errors.Is(err, storage.ErrInvalidName) {
			t.Errorf("CheckBackup(%q) = %v", bad, err)
		}
	}
	if err := CheckMetadata("metadata/x.meta"); err != nil {
		t.Error(err)
	}
	if err := CheckMetadata("metadata/../x"); err == nil {
		t.Error("CheckMetadata accepted a traversal")
	}
}

// FuzzBackupOfKey checks that keys listed from storage never yield a handle that
// fails validation or escapes the prefix.
func FuzzBackupOfKey(f *testing.F) {
	for _, s := range []string{"p/b-1/chunk", "p/metadata/x", "p/../x/y", "p/b/.ledgervault-backup", "p/b\\c/d", "p/b/c/d", "p/\x00/x", ""} {
		f.Add(s)
	}
	l, err := NewLayout("p")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, key string) {
		b, file, ok := l.BackupOfKey(key)
		if !ok {
			return
		}
		if err := CheckBackup(b); err != nil {
			t.Fatalf("accepted backup %q: %v", b, err)
		}
		if err := storage.ValidateHandle(string(b) + "/" + file); err != nil {
			t.Fatalf("accepted file %q/%q: %v", b, file, err)
		}
		if l.Key(string(b)+"/"+file) != key {
			t.Fatalf("key %q does not round-trip", key)
		}
	})
}

// completer is an Upload that records what Complete was given.
type completer struct{ completed []string }

func (c *completer) PutIfAbsent(context.Context, []byte) error { return errors.New("unexpected put") }
func (c *completer) Complete(_ context.Context, ids []string) error {
	c.completed = ids
	return nil
}
func (c *completer) Discard(context.Context, bool) error { return nil }

// TestWriterSettleWaitsForParts checks that Settle returns only once the dispatched
// parts have been uploaded, keeps the undispatched bytes, and that the writer then
// commits every byte in order.
func TestWriterSettleWaitsForParts(t *testing.T) {
	r := &recorder{delay: 50 * time.Millisecond}
	c := &completer{}
	w := NewWriter(context.Background(), "b/f", NewParts(context.Background(), 10, 2, nil, r.upload), c)
	data := []byte("0123456789abcdefghijABCDEFGHIJxyz")
	if _, err := w.Write(data[:25]); err != nil {
		t.Fatal(err)
	}
	if err := w.Settle(); err != nil {
		t.Fatalf("Settle: %v", err)
	}
	if n := r.inFlight.Load(); n != 0 {
		t.Fatalf("%d uploads in flight after Settle", n)
	}
	r.mu.Lock()
	got := len(r.parts)
	r.mu.Unlock()
	if got != 2 {
		t.Fatalf("%d parts uploaded after Settle, want the 2 full ones", got)
	}
	if _, err := w.Write(data[25:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Commit(); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	if want := []string{"id-1", "id-2", "id-3", "id-4"}; fmt.Sprint(c.completed) != fmt.Sprint(want) {
		t.Fatalf("completed parts %v, want %v", c.completed, want)
	}
	var all []byte
	for i := 1; i <= 4; i++ {
		all = append(all, r.parts[i]...)
	}
	if !bytes.Equal(all, data) {
		t.Fatalf("uploaded %q, want %q", all, data)
	}
	if err := w.Settle(); err != nil {
		t.Fatalf("Settle after Commit: %v", err)
	}
}

func TestFiles(t *testing.T) {
	l, err := NewLayout("p/q")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.NewFiles("a/b"); !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("NewFiles(a/b): %v", err)
	}
	f, err := l.NewFiles("b-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.List(); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("nothing listed: %v, want ErrNotFound", err)
	}
	now := time.Unix(1700000000, 0)
	for _, k := range []string{"p/q/b-1/.ledgervault-backup", "p/q/b-1/z", "p/q/b-1/a", "p/q/b-10/x", "p/q/b-1/sub/x",
		"p/q/b-1/.tmp-x", "p/q/metadata/m", "other/b-1/y", "p/q/b-1/.."} {
		f.Add(k, int64(len(k)), now)
	}
	got, err := f.List()
	if err != nil {
		t.Fatal(err)
	}
	want := []storage.FileInfo{{Handle: "b-1/a", Size: 9, ModTime: now}, {Handle: "b-1/z", Size: 9, ModTime: now}}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("List = %v, want %v", got, want)
	}
	// The marker alone: an empty folder, not a missing one.
	f, _ = l.NewFiles("b-2")
	f.Add("p/q/b-2/.ledgervault-backup", 10, now)
	if got, err := f.List(); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("marker only: %#v, %v; want an empty list", got, err)
	}
}

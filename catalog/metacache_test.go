package catalog_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newStore returns a local store and a FaultStore over it, which counts Opens.
func newStore(t *testing.T) (*storagetest.FaultStore, *local.Store) {
	t.Helper()
	l, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return storagetest.NewFaultStore(l), l
}

func line(t *testing.T, m native.Metadata) []byte {
	t.Helper()
	m.Format = native.FormatVersion
	if m.Manifest == "" {
		m.Manifest = "f/native.json"
	}
	b, err := m.EncodeLine()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func save(t *testing.T, st storage.Store, name string, b []byte) storage.FileHandle {
	t.Helper()
	h, err := st.SaveMetadata(context.Background(), name, b)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func txn(first, last uint64) native.Metadata {
	return native.Metadata{Type: native.TypeTransaction, FirstVersion: first, LastVersion: last}
}

func cacheFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestLoadWithoutCache(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	save(t, st, "b.meta", append(line(t, txn(100, 199)), line(t, txn(200, 299))...))
	save(t, st, "a.meta", line(t, txn(0, 99)))
	save(t, st, "x.lease", []byte("not metadata {"))
	es, err := catalog.LoadEntries(ctx, st, "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range es {
		got = append(got, fmt.Sprintf("%s:%d-%d", e.File, e.FirstVersion, e.LastVersion))
	}
	want := "metadata/a.meta:0-99 metadata/b.meta:100-199 metadata/b.meta:200-299"
	if strings.Join(got, " ") != want {
		t.Fatalf("entries %v, want %s", got, want)
	}
	if n := st.Count(storagetest.OpOpen); n != 2 {
		t.Fatalf("%d opens, want 2 (the lease is not read)", n)
	}
}

func TestCacheHitsDoNotTouchStorage(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	dir := filepath.Join(t.TempDir(), "cache")
	const n = 40
	for i := range n {
		save(t, st, fmt.Sprintf("m%03d.meta", i), line(t, txn(uint64(i)*10, uint64(i)*10+9)))
	}
	// Opens in progress at once.
	var mu sync.Mutex
	var inFlight, maxFlight int
	st.AddRule(storagetest.Every(storagetest.OpOpen, storagetest.Fault{
		Before: func() {
			mu.Lock()
			inFlight++
			maxFlight = max(maxFlight, inFlight)
			mu.Unlock()
		},
		After: func(*storagetest.Outcome) {
			mu.Lock()
			inFlight--
			mu.Unlock()
		},
	}))
	first, err := catalog.LoadEntries(ctx, st, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Count(storagetest.OpOpen); got != n {
		t.Fatalf("first load: %d opens, want %d", got, n)
	}
	if maxFlight > catalog.Concurrency || maxFlight < 1 {
		t.Fatalf("%d downloads at once, want 1..%d", maxFlight, catalog.Concurrency)
	}
	if files := cacheFiles(t, dir); len(files) != n {
		t.Fatalf("cache holds %d files, want %d: %v", len(files), n, files)
	}
	second, err := catalog.LoadEntries(ctx, st, dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Count(storagetest.OpOpen); got != n {
		t.Fatalf("second load opened %d files, want none", got-n)
	}
	if fmt.Sprint(first) != fmt.Sprint(second) {
		t.Fatalf("cached entries differ:\n%v\n%v", first, second)
	}
	// A new file is downloaded, the rest stay cached.
	save(t, st, "new.meta", line(t, txn(1000, 1009)))
	if _, err := catalog.LoadEntries(ctx, st, dir); err != nil {
		t.Fatal(err)
	}
	if got := st.Count(storagetest.OpOpen); got != n+1 {
		t.Fatalf("third load opened %d files, want 1", got-n)
	}
}

func TestRemovedFilesDropped(t *testing.T) {
	ctx := context.Background()
	st, l := newStore(t)
	dir := t.TempDir()
	a := save(t, st, "a.meta", line(t, txn(0, 9)))
	save(t, st, "b.meta", line(t, txn(10, 19)))
	if _, err := catalog.LoadEntries(ctx, st, dir); err != nil {
		t.Fatal(err)
	}
	// Unrelated files in the directory are left alone.
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteMetadata(ctx, a); err != nil {
		t.Fatal(err)
	}
	es, err := catalog.LoadEntries(ctx, st, dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].FirstVersion != 10 {
		t.Fatalf("entries %+v", es)
	}
	if files := cacheFiles(t, dir); len(files) != 2 {
		t.Fatalf("cache files %v, want b's copy and README", files)
	}
}

func TestCorruptCacheRepaired(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	dir := t.TempDir()
	save(t, st, "a.meta", line(t, txn(0, 9)))
	if _, err := catalog.LoadEntries(ctx, st, dir); err != nil {
		t.Fatal(err)
	}
	files := cacheFiles(t, dir)
	if len(files) != 1 {
		t.Fatalf("cache files %v", files)
	}
	p := filepath.Join(dir, files[0])
	good, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	// Each corruption is a miss: the copy is replaced by a fresh download.
	corruptions := map[string][]byte{
		"empty":            {},
		"garbage":          []byte("{nope"),
		"truncated":        good[:len(good)-5],
		"flipped body":     append(append([]byte{}, good[:len(good)-3]...), '7', '}', '\n'),
		"other handle":     []byte(strings.Replace(string(good), "metadata%2Fa.meta", "metadata%2Fb.meta", 1)),
		"valid but forged": forge(t, good, line(t, txn(0, 99999))),
	}
	for name, bad := range corruptions {
		t.Run(name, func(t *testing.T) {
			if err := os.WriteFile(p, bad, 0o644); err != nil {
				t.Fatal(err)
			}
			before := st.Count(storagetest.OpOpen)
			es, err := catalog.LoadEntries(ctx, st, dir)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 || es[0].LastVersion != 9 {
				t.Fatalf("entries %+v", es)
			}
			if st.Count(storagetest.OpOpen) != before+1 {
				t.Fatalf("corrupt copy not downloaded again")
			}
			if b, err := os.ReadFile(p); err != nil || string(b) != string(good) {
				t.Fatalf("cache copy not repaired: %q %v", b, err)
			}
		})
	}
}

// forge replaces the body of a cache file keeping its header (checksum now wrong).
func forge(t *testing.T, cacheFile, body []byte) []byte {
	t.Helper()
	i := strings.IndexByte(string(cacheFile), '\n')
	return append(append([]byte{}, cacheFile[:i+1]...), body...)
}

func TestMalformedMetadataNamed(t *testing.T) {
	ctx := context.Background()
	cases := map[string][]byte{
		"broken JSON":   []byte("{nope\n"),
		"unknown type":  []byte(`{"format":1,"type":"mystery","manifest":"f/m.json"}` + "\n"),
		"empty":         {},
		"bad handle":    []byte(`{"format":1,"type":"transaction","first_version":1,"last_version":2,"manifest":"../m.json"}` + "\n"),
		"unknown field": []byte(`{"format":1,"type":"transaction","first_version":1,"last_version":2,"manifest":"f/m.json","x":1}` + "\n"),
	}
	for name, b := range cases {
		t.Run(name, func(t *testing.T) {
			for _, dir := range []string{"", t.TempDir()} {
				st, _ := newStore(t)
				save(t, st, "good.meta", line(t, txn(0, 9)))
				save(t, st, "bad.meta", b)
				_, err := catalog.LoadEntries(ctx, st, dir)
				if err == nil || !strings.Contains(err.Error(), "metadata/bad.meta") {
					t.Fatalf("cache %q: error %v does not name the file", dir, err)
				}
				if dir != "" {
					for _, f := range cacheFiles(t, dir) {
						if c, _ := os.ReadFile(filepath.Join(dir, f)); strings.Contains(string(c), "bad.meta") {
							t.Fatalf("malformed file cached")
						}
					}
				}
			}
		})
	}
}

func TestOversizedMetadataRejected(t *testing.T) {
	st, _ := newStore(t)
	big := make([]byte, native.MaxMetadataSize+1)
	for i := range big {
		big[i] = ' '
	}
	save(t, st, "big.meta", big)
	_, err := catalog.LoadEntries(context.Background(), st, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "big.meta") || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized file: %v", err)
	}
}

func TestInvalidHandleRejected(t *testing.T) {
	st, _ := newStore(t)
	save(t, st, "a.meta", line(t, txn(0, 9)))
	// The listing returns extra handles beside the real ones.
	var extra []storage.FileHandle
	st.AddRule(storagetest.Every(storagetest.OpListMetadata, storagetest.Fault{After: func(o *storagetest.Outcome) {
		o.Handles = append(o.Handles, extra...)
	}}))
	extra = []storage.FileHandle{"../escape.meta"}
	_, err := catalog.LoadEntries(context.Background(), st, t.TempDir())
	if !errors.Is(err, storage.ErrInvalidName) {
		t.Fatalf("handle with ..: %v", err)
	}
	extra = []storage.FileHandle{"metadata/missing.meta"}
	_, err = catalog.LoadEntries(context.Background(), st, t.TempDir())
	if !errors.Is(err, storage.ErrNotFound) || !strings.Contains(err.Error(), "missing.meta") {
		t.Fatalf("missing file: %v", err)
	}
}

func TestCancelled(t *testing.T) {
	st, _ := newStore(t)
	for i := range 30 {
		save(t, st, fmt.Sprintf("m%02d.meta", i), line(t, txn(uint64(i)*10, uint64(i)*10+9)))
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := catalog.LoadEntries(ctx, st, t.TempDir()); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled load: %v", err)
	}
}

func TestConcurrentLoadsShareCache(t *testing.T) {
	ctx := context.Background()
	st, _ := newStore(t)
	dir := t.TempDir()
	for i := range 20 {
		save(t, st, fmt.Sprintf("m%02d.meta", i), line(t, txn(uint64(i)*10, uint64(i)*10+9)))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			es, err := catalog.LoadEntries(ctx, st, dir)
			if err == nil && len(es) != 20 {
				err = fmt.Errorf("%d entries", len(es))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if files := cacheFiles(t, dir); len(files) != 20 {
		t.Fatalf("cache files %v", files)
	}
}

func TestCacheDirUnusable(t *testing.T) {
	st, _ := newStore(t)
	save(t, st, "a.meta", line(t, txn(0, 9)))
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.LoadEntries(context.Background(), st, file); err == nil || !strings.Contains(err.Error(), file) {
		t.Fatalf("cache dir is a file: %v", err)
	}
}

func TestStaleTempFilesRemoved(t *testing.T) {
	st, _ := newStore(t)
	save(t, st, "a.meta", line(t, txn(0, 9)))
	dir := t.TempDir()
	if _, err := catalog.LoadEntries(context.Background(), st, dir); err != nil {
		t.Fatal(err)
	}
	name := cacheFiles(t, dir)[0]
	old, young := filepath.Join(dir, "."+name+"123"), filepath.Join(dir, "."+name+"456")
	for _, p := range []string{old, young} {
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	long := time.Now().Add(-2 * time.Hour)
	if err := os.Chtimes(old, long, long); err != nil {
		t.Fatal(err)
	}
	if _, err := catalog.LoadEntries(context.Background(), st, dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(old); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("old temp file kept: %v", err)
	}
	if _, err := os.Stat(young); err != nil {
		t.Errorf("young temp file (maybe another writer's) removed: %v", err)
	}
}

func TestFirstErrorCancelsDownloads(t *testing.T) {
	_, l := newStore(t)
	for i := range 20 {
		save(t, l, fmt.Sprintf("m%02d.meta", i), line(t, txn(uint64(i)*10, uint64(i)*10+9)))
	}
	// Opens of m05 fail, the others block until cancelled.
	st := storagetest.NewFaultStore(l, func(c storagetest.Call) storagetest.Fault {
		switch {
		case c.Op == storagetest.OpOpen && c.Handle == "metadata/m05.meta":
			return storagetest.Fault{Mode: storagetest.FailBefore, Err: errors.New("boom")}
		case c.Op == storagetest.OpOpen:
			return storagetest.Fault{Block: make(chan struct{})}
		}
		return storagetest.Fault{}
	})
	_, err := catalog.LoadEntries(context.Background(), st, t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "boom") || !strings.Contains(err.Error(), "m05.meta") {
		t.Fatalf("load: %v", err)
	}
}

// vanishing returns a store that lists a file that is gone when read, for the first
// times listings, as when compaction deletes a small metadata file between listing
// and reading.
func vanishing(st storage.Store, times int64) *storagetest.FaultStore {
	return storagetest.NewFaultStore(st, func(c storagetest.Call) storagetest.Fault {
		if c.Op != storagetest.OpListMetadata || c.N > times {
			return storagetest.Fault{}
		}
		return storagetest.Fault{After: func(o *storagetest.Outcome) {
			o.Handles = append(o.Handles, "metadata/compacted-away.meta")
		}}
	})
}

func TestListedThenDeletedFileListsAgain(t *testing.T) {
	ctx := context.Background()
	_, l := newStore(t)
	save(t, l, "a.meta", line(t, native.Metadata{Type: native.TypeStateSnapshot, Version: 7}))
	vs := vanishing(l, 2)
	es, err := catalog.LoadEntries(ctx, vs, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 1 || es[0].Version != 7 || vs.Count(storagetest.OpListMetadata) != 3 {
		t.Fatalf("entries %+v after %d listings", es, vs.Count(storagetest.OpListMetadata))
	}
	// A file that keeps vanishing is an error after MaxRelists listings, not a loop.
	vs = vanishing(l, 1<<30)
	if _, err := catalog.LoadEntries(ctx, vs, ""); !errors.Is(err, storage.ErrNotFound) || vs.Count(storagetest.OpListMetadata) != catalog.MaxRelists+1 {
		t.Fatalf("err %v after %d listings", err, vs.Count(storagetest.OpListMetadata))
	}
}

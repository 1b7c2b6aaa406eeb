package compact_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"path"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/testmain"
	"github.com/ledgervault/ledgervault/maintenance/compact"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/shell"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func TestMain(m *testing.M) { testmain.Run(m, "compact-test") }

func newLocal(t *testing.T) storage.Store {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

func newShell(t *testing.T) storage.Store {
	st, err := shell.NewSample("local", map[string]string{"ROOT": t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// meta returns the metadata line of backup i: a transaction, epoch-ending or state
// snapshot backup, as the backup package writes them.
func meta(i int) native.Metadata {
	m := native.Metadata{Format: native.FormatVersion, Manifest: storage.FileHandle(fmt.Sprintf("b%d-0123abcd/manifest.json", i)), Size: int64(1000 + i)}
	switch i % 3 {
	case 0:
		m.Type, m.FirstVersion, m.LastVersion = native.TypeTransaction, uint64(i*100), uint64(i*100+99)
	case 1:
		m.Type, m.FirstEpoch, m.LastEpoch, m.FirstVersion, m.LastVersion = native.TypeEpochEnding, uint64(i), uint64(i), uint64(i*100), uint64(i*100)
	default:
		m.Type, m.Version, m.Epoch = native.TypeStateSnapshot, uint64(i*100), uint64(i)
	}
	return m
}

func encode(t testing.TB, ms ...native.Metadata) []byte {
	t.Helper()
	var b []byte
	for _, m := range ms {
		line, err := m.EncodeLine()
		if err != nil {
			t.Fatal(err)
		}
		b = append(b, line...)
	}
	return b
}

func save(t testing.TB, st storage.Store, name string, data []byte) {
	t.Helper()
	if _, err := st.SaveMetadata(context.Background(), name, data); err != nil {
		t.Fatal(err)
	}
}

// saveBackups writes one small metadata file per backup in [from, to).
func saveBackups(t testing.TB, st storage.Store, from, to int) {
	for i := from; i < to; i++ {
		save(t, st, fmt.Sprintf("backup_%d.meta", i), encode(t, meta(i)))
	}
}

// files lists the metadata file names, sorted.
func files(t testing.TB, st storage.Store) []string {
	t.Helper()
	hs, err := st.ListMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		out = append(out, path.Base(string(h)))
	}
	sort.Strings(out)
	return out
}

func read(t testing.TB, st storage.Store, name string) []byte {
	t.Helper()
	r, err := st.Open(context.Background(), storage.FileHandle("metadata/"+name))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// backups returns what metadata makes discoverable, without the file each came from.
func backups(t testing.TB, st storage.Store) []catalog.Backup {
	t.Helper()
	inv, err := catalog.Load(context.Background(), st)
	if err != nil {
		t.Fatal(err)
	}
	out := append([]catalog.Backup(nil), inv.Backups...)
	for i := range out {
		out[i].MetadataFile = ""
	}
	return out
}

// clock is a settable Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func compacted(names []string) []string {
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, native.CompactedPrefix) {
			out = append(out, n)
		}
	}
	return out
}

// cycle runs the whole protocol on st: compaction into one file, deletion deferred
// until the delete delay has passed, idempotence, and the same backups visible at
// every step.
func cycle(t *testing.T, st storage.Store, n int) {
	ctx := context.Background()
	saveBackups(t, st, 0, n)
	want := backups(t, st)
	if len(want) != n {
		t.Fatalf("%d backups before compaction, want %d", len(want), n)
	}
	originals := files(t, st)
	clk := &clock{t: time.Now()}
	o := compact.Options{DeleteDelay: time.Hour, Now: clk.Now}

	rep, err := compact.Run(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Written) != 1 || rep.WrittenLines != n || len(rep.Deleted) != 0 || rep.Uncompacted != n || rep.MetadataFiles != n {
		t.Fatalf("first run %+v", rep)
	}
	names := files(t, st)
	if len(names) != n+1 || len(compacted(names)) != 1 {
		t.Fatalf("after first run: %v", names)
	}
	// Every original line is in the compacted file, byte for byte.
	c := read(t, st, compacted(names)[0])
	for _, name := range originals {
		for _, line := range bytes.SplitAfter(read(t, st, name), []byte("\n")) {
			if len(line) > 0 && !bytes.Contains(c, line) {
				t.Fatalf("line %q of %s missing from the compacted file", line, name)
			}
		}
	}
	if got := bytes.Count(c, []byte("\n")); got != n {
		t.Fatalf("compacted file has %d lines, want %d", got, n)
	}
	if got := backups(t, st); !reflect.DeepEqual(got, want) {
		t.Fatalf("backups changed:\n%v\n%v", got, want)
	}

	// Again at once, and just before the delay: nothing written, nothing deleted.
	for _, d := range []time.Duration{0, 59 * time.Minute} {
		clk.Add(d)
		rep, err = compact.Run(ctx, st, o)
		if err != nil {
			t.Fatal(err)
		}
		if len(rep.Written) != 0 || len(rep.Deleted) != 0 || rep.Pending != n || rep.Uncompacted != 1 {
			t.Fatalf("run before the delay: %+v", rep)
		}
		if got := files(t, st); !reflect.DeepEqual(got, names) {
			t.Fatalf("files changed before the delay: %v", got)
		}
	}
	// After the delay the originals go; the compacted file stays.
	clk.Add(2 * time.Minute)
	rep, err = compact.Run(ctx, st, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != n || len(rep.Written) != 0 || len(rep.Keepers) != 1 {
		t.Fatalf("run after the delay: %+v", rep)
	}
	if got := files(t, st); !reflect.DeepEqual(got, compacted(names)) {
		t.Fatalf("after deletion: %v", got)
	}
	if got := backups(t, st); !reflect.DeepEqual(got, want) {
		t.Fatalf("backups changed by deletion:\n%v\n%v", got, want)
	}
	// Idempotent from here on.
	clk.Add(24 * time.Hour)
	rep, err = compact.Run(ctx, st, o)
	if err != nil || len(rep.Deleted) != 0 || len(rep.Written) != 0 {
		t.Fatalf("steady state: %v %+v", err, rep)
	}
}

func TestManySmallFilesIntoOne(t *testing.T) {
	t.Parallel()
	cycle(t, newLocal(t), 40)
}

func TestShellBackend(t *testing.T) {
	t.Parallel()
	cycle(t, newShell(t), 5)
}

// afterListing returns st wrapped so that hook runs right after its at-th
// ListMetadata call returns: a concurrent coordinator's write lands between the
// run's listing and its later steps.
func afterListing(st storage.Store, at int64, hook func()) *storagetest.FaultStore {
	return storagetest.NewFaultStore(st, storagetest.Nth(storagetest.OpListMetadata, at, storagetest.Fault{
		After: func(*storagetest.Outcome) { hook() },
	}))
}

func TestConcurrentWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newLocal(t)
	saveBackups(t, st, 0, 10)
	clk := &clock{t: time.Now()}
	o := compact.Options{DeleteDelay: time.Hour, Now: clk.Now}
	// A coordinator commits backup 10 after the run listed metadata.
	hs := afterListing(st, 1, func() { saveBackups(t, st, 10, 11) })
	rep, err := compact.Run(ctx, hs, o)
	if err != nil || rep.WrittenLines != 10 || len(rep.Written) != 1 {
		t.Fatalf("%v %+v", err, rep)
	}
	want := backups(t, st)
	if len(want) != 11 {
		t.Fatalf("%d backups", len(want))
	}
	// After the delay, another commit lands between the deletion plan and its
	// listing check; it is not covered and stays.
	clk.Add(2 * time.Hour)
	hs = afterListing(st, 2, func() { saveBackups(t, st, 11, 12) })
	rep, err = compact.Run(ctx, hs, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Deleted) != 10 {
		t.Fatalf("deleted %v", rep.Deleted)
	}
	for _, d := range rep.Deleted {
		if strings.Contains(string(d), "backup_10.") || strings.Contains(string(d), "backup_11.") {
			t.Fatalf("deleted %s, which no compacted file covered", d)
		}
	}
	// The run compacted backup_10 with the first compacted file.
	if len(rep.Written) != 1 || rep.WrittenLines != 11 {
		t.Fatalf("second run %+v", rep)
	}
	want = backups(t, st)
	if len(want) != 12 {
		t.Fatalf("%d backups, want 12", len(want))
	}
	// Later runs converge on one compacted file holding all 12 lines.
	for i := 0; i < 3; i++ {
		clk.Add(2 * time.Hour)
		if _, err := compact.Run(ctx, st, o); err != nil {
			t.Fatal(err)
		}
		if got := backups(t, st); !reflect.DeepEqual(got, want) {
			t.Fatalf("round %d: backups changed:\n%v\n%v", i, got, want)
		}
	}
	names := files(t, st)
	if len(names) != 1 || len(compacted(names)) != 1 || bytes.Count(read(t, st, names[0]), []byte("\n")) != 12 {
		t.Fatalf("final files %v", names)
	}
}

func TestCompactedFilesAreCompacted(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newLocal(t)
	clk := &clock{t: time.Now()}
	o := compact.Options{DeleteDelay: time.Hour, MinFiles: 3, Now: clk.Now}
	saveBackups(t, st, 0, 5)
	if _, err := compact.Run(ctx, st, o); err != nil {
		t.Fatal(err)
	}
	// Two new files: with the compacted one that is 3 units.
	saveBackups(t, st, 5, 7)
	clk.Add(time.Minute)
	rep, err := compact.Run(ctx, st, o)
	if err != nil || len(rep.Written) != 1 || rep.WrittenLines != 7 || rep.Uncompacted != 3 {
		t.Fatalf("%v %+v", err, rep)
	}
	// One more new file: 2 units (the newest compacted file and it) < MinFiles.
	saveBackups(t, st, 7, 8)
	clk.Add(time.Minute)
	rep, err = compact.Run(ctx, st, o)
	if err != nil || len(rep.Written) != 0 || rep.Uncompacted != 2 || rep.Pending != 8 {
		t.Fatalf("%v %+v", err, rep)
	}
	// After the delay the newest compacted file (7 lines) is the keeper; everything
	// it covers goes, including the older compacted file.
	clk.Add(2 * time.Hour)
	rep, err = compact.Run(ctx, st, o)
	if err != nil || len(rep.Keepers) != 1 || len(rep.Deleted) != 8 {
		t.Fatalf("%v %+v", err, rep)
	}
	names := files(t, st)
	if len(names) != 2 || len(compacted(names)) != 1 || names[0] != "backup_7.meta" {
		t.Fatalf("files %v", names)
	}
	if len(backups(t, st)) != 8 {
		t.Fatal("lost a backup")
	}
}

func TestIdenticalCompactedFilesKeepOne(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newLocal(t)
	data := encode(t, meta(1), meta(2), meta(3))
	created := time.Now().Add(-3 * time.Hour).UTC().Format("20060102T150405Z")
	a := native.CompactedPrefix + created + "-00000000000000aa-0.meta"
	b := native.CompactedPrefix + created + "-00000000000000bb-0.meta"
	save(t, st, a, data)
	save(t, st, b, data)
	save(t, st, "backup_2.meta", encode(t, meta(2)))
	rep, err := compact.Run(ctx, st, compact.Options{DeleteDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	names := files(t, st)
	if !reflect.DeepEqual(names, []string{a}) || len(rep.Deleted) != 2 || len(rep.Written) != 0 {
		t.Fatalf("files %v report %+v", names, rep)
	}
	if len(backups(t, st)) != 3 {
		t.Fatal("lost a backup")
	}
}

func TestPartialCompactedFileKeepsUncoveredFiles(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newLocal(t)
	// A run died after writing part 0 holding backups 0 and 1 of 0-2.
	created := time.Now().Add(-3 * time.Hour).UTC().Format("20060102T150405Z")
	part0 := native.CompactedPrefix + created + "-00000000000000cc-0.meta"
	save(t, st, part0, encode(t, meta(0), meta(1)))
	save(t, st, "backup_01.meta", encode(t, meta(0), meta(1)))
	save(t, st, "backup_12.meta", encode(t, meta(1), meta(2)))
	rep, err := compact.Run(ctx, st, compact.Options{DeleteDelay: time.Hour, MinFiles: 10})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rep.Deleted, []storage.FileHandle{"metadata/backup_01.meta"}) {
		t.Fatalf("deleted %v", rep.Deleted)
	}
	if len(backups(t, st)) != 3 {
		t.Fatal("lost a backup")
	}
}

func TestMalformedMetadataChangesNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newLocal(t)
	saveBackups(t, st, 0, 4)
	save(t, st, "broken.meta", []byte("{\"format\":1,\n"))
	save(t, st, "coordinator.lease", []byte("not metadata, ignored"))
	before := files(t, st)
	_, err := compact.Run(ctx, st, compact.Options{})
	if err == nil || !strings.Contains(err.Error(), "broken.meta") {
		t.Fatalf("err %v", err)
	}
	if got := files(t, st); !reflect.DeepEqual(got, before) {
		t.Fatalf("files changed: %v", got)
	}
}

func TestLeaseFilesIgnored(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := newLocal(t)
	saveBackups(t, st, 0, 3)
	save(t, st, "coordinator.lease", []byte("owner"))
	rep, err := compact.Run(ctx, st, compact.Options{})
	if err != nil || rep.MetadataFiles != 3 || rep.WrittenLines != 3 {
		t.Fatalf("%v %+v", err, rep)
	}
}

func TestOptionsValidated(t *testing.T) {
	if _, err := compact.Run(context.Background(), newLocal(t), compact.Options{DeleteDelay: -1}); err == nil {
		t.Fatal("negative delay accepted")
	}
}

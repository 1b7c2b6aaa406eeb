package faultinject

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/internal/testmain"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/shell"
)

func TestMain(m *testing.M) { testmain.Run(m, "faultinject") }

// shellStore returns a shell store over the local sample rooted in a temporary
// directory, its commands wrapped, with faults off.
func shellStore(t *testing.T, seed uint64) (*shell.Store, *Shell, string) {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "store")
	cfg, err := shell.Sample("local", map[string]string{"ROOT": root})
	if err != nil {
		t.Fatal(err)
	}
	fi, err := NewShell(filepath.Join(dir, "faults"), seed)
	if err != nil {
		t.Fatal(err)
	}
	wrapped, err := fi.Wrap(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The wrapped config goes through YAML as the campaign's does.
	p := filepath.Join(dir, "commands.yaml")
	if err := WriteConfig(p, wrapped); err != nil {
		t.Fatal(err)
	}
	st, err := shell.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st, fi, root
}

func put(ctx context.Context, st storage.Store, b storage.BackupHandle, name string, data []byte) (storage.FileHandle, error) {
	w, err := st.Create(ctx, b, name)
	if err != nil {
		return "", err
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return "", err
	}
	return w.Handle(), w.Commit()
}

func tempFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(root, func(p string, e os.DirEntry, err error) error {
		if err == nil && !e.IsDir() && strings.HasPrefix(e.Name(), ".tmp-") {
			out = append(out, p)
		}
		return nil
	})
	return out
}

// TestShellKinds forces each kind of fault in turn (rate 1, one kind enabled) and
// checks what the store saw, what storage holds and that it was counted.
func TestShellKinds(t *testing.T) {
	ctx := context.Background()
	st, fi, root := shellStore(t, 1)
	b, err := st.CreateBackup(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), 1<<12) // 64 KiB, more than a cut keeps
	if _, err := put(ctx, st, b, "whole.chunk", data); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, "m1.meta", []byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, "m2.meta", []byte("two\n")); err != nil {
		t.Fatal(err)
	}
	force := func(k Kind) {
		t.Helper()
		if err := fi.SetKinds(k); err != nil {
			t.Fatal(err)
		}
		if err := fi.SetRate(1); err != nil {
			t.Fatal(err)
		}
	}

	force(Refuse)
	if _, err := st.CreateBackup(ctx, "refused"); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Errorf("refused create_backup: %v", err)
	}
	if ents, _ := os.ReadDir(root); len(ents) != 2 { // b and metadata
		t.Errorf("refused create_backup left %d entries in the root", len(ents))
	}

	force(Cut)
	if _, err := put(ctx, st, b, "cut.chunk", data); err == nil {
		t.Error("cut upload committed")
	}
	if _, err := os.Stat(filepath.Join(root, string(b), "cut.chunk")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cut upload visible under its final name: %v", err)
	}
	if tmp := tempFiles(t, root); len(tmp) != 1 {
		t.Errorf("cut upload left temp files %v, want one", tmp)
	}

	force(CommitThenFail)
	if _, err := st.SaveMetadata(ctx, "m3.meta", []byte("three\n")); err == nil {
		t.Error("commit_then_fail save_metadata_line reported success")
	}
	if got, err := os.ReadFile(filepath.Join(root, "metadata", "m3.meta")); err != nil || string(got) != "three\n" {
		t.Errorf("commit_then_fail: the metadata file is %q, %v; want it committed", got, err)
	}

	force(HalfRead)
	r, err := st.Open(ctx, storage.FileHandle(string(b)+"/whole.chunk"))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err == nil || len(got) != len(data)/2 || !bytes.Equal(got, data[:len(got)]) {
		t.Errorf("half read: %d of %d bytes, error %v; want the first half, then an error", len(got), len(data), err)
	}

	force(ListFail)
	if hs, err := st.ListMetadata(ctx); err == nil {
		t.Errorf("failed listing returned %v and no error", hs)
	}

	if err := fi.SetRate(0); err != nil {
		t.Fatal(err)
	}
	if hs, err := st.ListMetadata(ctx); err != nil || len(hs) != 3 {
		t.Errorf("faults off: listing %v, %v; want 3 files", hs, err)
	}
	c, err := fi.Counts()
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range Kinds {
		if c.Injected[k] != 1 {
			t.Errorf("%s injected %d times, want 1 (counts %v)", k, c.Injected[k], c.Injected)
		}
	}
	if c.InjectedByOp["create_for_write"][Cut] != 1 || c.InjectedByOp["open_for_read"][HalfRead] != 1 {
		t.Errorf("faults by command: %v", c.InjectedByOp)
	}
	// create_backup twice, create_for_write twice, save_metadata_line three times,
	// one read, two listings.
	want := map[string]int{"create_backup": 2, "create_for_write": 2, "save_metadata_line": 3, "open_for_read": 1, "list_metadata_files": 2}
	for op, n := range want {
		if c.Calls[op] != n {
			t.Errorf("%s called %d times, counted %d", op, n, c.Calls[op])
		}
	}
}

// TestShellRateDeterministic runs the same calls twice with one seed and once with
// another: the same seed injects the same faults; about the rate are injected.
func TestShellRateDeterministic(t *testing.T) {
	run := func(seed uint64) Counts {
		ctx := context.Background()
		st, fi, _ := shellStore(t, seed)
		if err := fi.SetRate(0.3); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 60; i++ {
			st.ListMetadata(ctx)
		}
		c, err := fi.Counts()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b, other := run(42), run(42), run(43)
	if a.Calls["list_metadata_files"] != 60 {
		t.Fatalf("counted %d calls, want 60", a.Calls["list_metadata_files"])
	}
	if a.TotalInjected() != b.TotalInjected() || a.Injected[Refuse] != b.Injected[Refuse] || a.Injected[ListFail] != b.Injected[ListFail] {
		t.Errorf("same seed, different faults: %v and %v", a.Injected, b.Injected)
	}
	// 60 calls at 30%: 18 expected; a binomial count outside [5, 35] has odds below 1e-5.
	for _, c := range []Counts{a, other} {
		if n := c.TotalInjected(); n < 5 || n > 35 {
			t.Errorf("%d faults in 60 calls at rate 0.3", n)
		}
		if c.Injected[Cut] != 0 || c.Injected[HalfRead] != 0 {
			t.Errorf("listing got kinds it cannot have: %v", c.Injected)
		}
	}
}

// TestShellCutKillsPipeline checks that a cut upload leaves no process behind.
func TestShellCutKillsPipeline(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, fi, root := shellStore(t, 7)
	b, err := st.CreateBackup(ctx, "b")
	if err != nil {
		t.Fatal(err)
	}
	fi.SetKinds(Cut)
	fi.SetRate(1)
	for i := 0; i < 3; i++ {
		if _, err := put(ctx, st, b, "c"+string(rune('0'+i))+".chunk", bytes.Repeat([]byte{'x'}, 10000)); err == nil {
			t.Fatal("cut upload committed")
		}
	}
	if n := len(tempFiles(t, root)); n != 3 {
		t.Errorf("%d temp files after 3 cuts", n)
	}
	// No process of the killed pipelines is alive (they all carry LVFI_DIR).
	if pids, err := proc.ProcessesWithEnv("LVFI_DIR", fi.Dir()); err != nil || len(pids) != 0 {
		t.Errorf("processes of the cut pipelines alive: %v, %v", pids, err)
	}
	// Nothing of the pipelines is left in the FIFO directory either.
	if ents, _ := os.ReadDir(filepath.Join(fi.Dir(), "tmp")); len(ents) != 0 {
		t.Errorf("left in the control directory: %v", ents)
	}
}

func TestParseKind(t *testing.T) {
	for _, k := range Kinds {
		if got, err := ParseKind(string(k)); err != nil || got != k {
			t.Errorf("ParseKind(%q) = %q, %v", k, got, err)
		}
	}
	if _, err := ParseKind("melt"); err == nil {
		t.Error("ParseKind accepted melt")
	}
}

// TestShellFocus fails every lease write (commit then fail) while other writes,
// faults on at rate 0 for them, pass; focused calls are counted apart.
func TestShellFocus(t *testing.T) {
	ctx := context.Background()
	st, fi, root := shellStore(t, 3)
	if err := fi.SetFocus("lease_", 1, CommitThenFail); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, "lease_00000000000000000001.lease", []byte("l\n")); err == nil {
		t.Error("focused lease write reported success")
	}
	if _, err := os.Stat(filepath.Join(root, "metadata", "lease_00000000000000000001.lease")); err != nil {
		t.Errorf("commit then fail: lease file not committed: %v", err)
	}
	if _, err := st.SaveMetadata(ctx, "m1.meta", []byte("one\n")); err != nil {
		t.Errorf("write outside the focus: %v", err)
	}
	c, err := fi.Counts()
	if err != nil {
		t.Fatal(err)
	}
	if c.Calls["save_metadata_line@lease_"] != 1 || c.Calls["save_metadata_line"] != 1 ||
		c.InjectedByOp["save_metadata_line@lease_"][CommitThenFail] != 1 || c.TotalInjected() != 1 {
		t.Errorf("counts: calls %v, injected %v", c.Calls, c.InjectedByOp)
	}
	if err := fi.SetFocus("", 0); err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, "lease_00000000000000000002.lease", []byte("l\n")); err != nil {
		t.Errorf("focus ended, lease write: %v", err)
	}
	if err := fi.SetFocus("a b", 1); err == nil {
		t.Error("SetFocus accepted a pattern with a blank")
	}
}

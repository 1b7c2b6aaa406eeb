// Package backupcli_test runs the ledgervault binary on the real backup-cli stores
// in shared/corpora (and on copies it damages or cleans): audit, list and gc, through
// file:// and through the operator's command-adapter config.
package backupcli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m, "lv-backupcli-test") }

// result is one run of the binary.
type result = testbin.Result

// lv runs the binary with args in dir.
func lv(t *testing.T, dir string, args ...string) result { return testbin.Run(t, dir, args...) }

type finding struct {
	Kind, Handle, Backup, Detail string
}

type report struct {
	Format        string    `json:"format"`
	MetadataFiles int       `json:"metadata_files"`
	Backups       int       `json:"backups"`
	Files         int       `json:"files"`
	Bytes         int64     `json:"bytes"`
	Findings      []finding `json:"findings"`
}

// auditJSON runs audit --json and decodes it strictly (the shape is the contract).
func auditJSON(t *testing.T, dir string, wantCode int, args ...string) report {
	t.Helper()
	r := lv(t, dir, append([]string{"audit", "--json"}, args...)...)
	if r.Code != wantCode {
		t.Fatalf("audit %v: exit %d, want %d\n%s%s", args, r.Code, wantCode, r.Stdout, r.Stderr)
	}
	dec := json.NewDecoder(strings.NewReader(r.Stdout))
	dec.DisallowUnknownFields()
	var rep report
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("audit %v: %v\n%s", args, err, r.Stdout)
	}
	return rep
}

// summary is "kind handle (backup)" per finding, sorted.
func summary(rep report) []string {
	var out []string
	for _, f := range rep.Findings {
		out = append(out, fmt.Sprintf("%s %s (%s)", f.Kind, f.Handle, f.Backup))
	}
	sort.Strings(out)
	return out
}

func equal(a, b []string) bool {
	return strings.Join(a, "\n") == strings.Join(b, "\n")
}

var aptosWant = []string{
	"missing state_epoch_202_ver_129152.5c55/0-.chunk (state_epoch_202_ver_129152.5c55)",
	"missing state_epoch_203_ver_129768.1c41/0-.chunk (state_epoch_203_ver_129768.1c41)",
	"missing state_epoch_206_ver_131685.3de5/0-.chunk (state_epoch_206_ver_131685.3de5)",
	"missing transaction_0-.b220/0-.chunk (transaction_0-.b220)",
}

var diemWant = map[string][]string{
	"14": nil,
	"77": {
		"missing epoch_ending_77-.1d01/epoch_ending.manifest (epoch_ending_77-.1d01)",
		"unreferenced epoch_ending_77-.0965 (epoch_ending_77-.0965)",
		"unreferenced state_ver_41315058.6168 (state_ver_41315058.6168)",
	},
	"89": {
		"partial metadata/transaction_45934438-45934438.meta ()",
		"unreferenced transaction_45934438-.1bbe (transaction_45934438-.1bbe)",
	},
	"104": nil,
	"155": {
		"partial metadata/transaction_66864872-66864872.meta ()",
		"unreferenced epoch_ending_155-.9b58 (epoch_ending_155-.9b58)",
		"unreferenced transaction_66864872-.49d3 (transaction_66864872-.49d3)",
	},
}

func TestAuditAptosThroughAdapterAndFile(t *testing.T) {
	root, cfg, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	// The operator's config, unchanged, run from snapshots/ as it was written for.
	viaAdapter := auditJSON(t, root, 1, "--command-config", cfg)
	viaFile := auditJSON(t, t.TempDir(), 1, "--storage", "file://"+root)
	for via, rep := range map[string]report{"adapter": viaAdapter, "file": viaFile} {
		if got := summary(rep); !equal(got, aptosWant) {
			t.Fatalf("%s: findings %q, want %q", via, got, aptosWant)
		}
		if rep.Format != "backupcli" || rep.MetadataFiles != 218 || rep.Backups != 217 || rep.Files != 440 {
			t.Fatalf("%s: %+v", via, rep)
		}
	}
	// The table says what it could not check.
	r := lv(t, root, "audit", "--command-config", cfg)
	if r.Code != 1 || !strings.Contains(r.Stdout, "note: unreferenced files and folders were not checked") {
		t.Fatalf("audit table: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func TestAuditDiemStores(t *testing.T) {
	for _, name := range corpora.DiemStores {
		root, err := corpora.Diem(name)
		if err != nil {
			t.Fatal(err)
		}
		code := 0
		if len(diemWant[name]) > 0 {
			code = 1
		}
		rep := auditJSON(t, t.TempDir(), code, "--storage", "file://"+root)
		if got := summary(rep); !equal(got, diemWant[name]) {
			t.Fatalf("%s: findings %q, want %q", name, got, diemWant[name])
		}
		if rep.Findings == nil {
			t.Fatalf("%s: findings must be [] when empty", name)
		}
	}
}

type listing struct {
	Backups []struct {
		Type         string `json:"type"`
		First        uint64 `json:"first"`
		Last         uint64 `json:"last"`
		Epoch        uint64 `json:"epoch"`
		Size         int64  `json:"size"`
		Manifest     string `json:"manifest"`
		MetadataFile string `json:"metadata_file"`
	} `json:"backups"`
	Gaps []struct {
		Type        string
		First, Last uint64
	} `json:"gaps"`
	Duplicates int `json:"duplicates"`
}

func listJSON(t *testing.T, dir string, args ...string) listing {
	t.Helper()
	r := lv(t, dir, append([]string{"list", "--json"}, args...)...)
	if r.Code != 0 {
		t.Fatalf("list %v: exit %d\n%s%s", args, r.Code, r.Stdout, r.Stderr)
	}
	var l listing
	if err := json.Unmarshal([]byte(r.Stdout), &l); err != nil {
		t.Fatalf("list %v: %v\n%s", args, err, r.Stdout)
	}
	return l
}

func TestListAptos(t *testing.T) {
	root, cfg, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	for via, l := range map[string]listing{"adapter": listJSON(t, root, "--command-config", cfg), "file": listJSON(t, t.TempDir(), "--storage", "file://"+root)} {
		count := map[string]int{}
		for _, b := range l.Backups {
			count[b.Type]++
		}
		if count["epoch_ending"] != 210 || count["transaction"] != 4 || count["state_snapshot"] != 3 || len(l.Gaps) != 0 || l.Duplicates != 0 {
			t.Fatalf("%s: %v, gaps %v, duplicates %d", via, count, l.Gaps, l.Duplicates)
		}
		last := l.Backups[len(l.Backups)-1]
		if last.Type != "transaction" || last.First != 40001 || last.Last != 60000 || last.Manifest != "transaction_40001-.81b8/transaction.manifest" || last.MetadataFile != "metadata/transaction_40001-60000.meta" {
			t.Fatalf("%s: last backup %+v", via, last)
		}
		snap := l.Backups[210]
		if snap.Type != "state_snapshot" || snap.First != 129152 || snap.Epoch != 202 {
			t.Fatalf("%s: first snapshot %+v", via, snap)
		}
		if via == "file" && last.Size != fileSize(t, filepath.Join(root, "transaction_40001-.81b8")) {
			t.Fatalf("file: size %d", last.Size)
		}
	}
	r := lv(t, root, "list", "--command-config", cfg)
	if r.Code != 0 || !strings.Contains(r.Stdout, "transaction     versions 40001-60000") || !strings.Contains(r.Stdout, "state_snapshot  version 131685 (epoch 206)") {
		t.Fatalf("list table: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

func fileSize(t *testing.T, dir string) int64 {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

func TestListDiem(t *testing.T) {
	root, err := corpora.Diem("155")
	if err != nil {
		t.Fatal(err)
	}
	l := listJSON(t, t.TempDir(), "--storage", "file://"+root)
	if len(l.Backups) != 2 || l.Backups[0].Type != "epoch_ending" || l.Backups[0].First != 155 || l.Backups[0].Manifest != "epoch_ending_155-.c82d/epoch_ending.manifest" ||
		l.Backups[1].Type != "state_snapshot" || l.Backups[1].First != 66864872 || l.Backups[1].Epoch != 0 {
		t.Fatalf("%+v", l)
	}
	// Epochs 0-154 and versions: no transaction backup at all, so no transaction gap.
	if len(l.Gaps) != 1 || l.Gaps[0].Type != "epoch_ending" || l.Gaps[0].First != 0 || l.Gaps[0].Last != 154 {
		t.Fatalf("gaps %+v", l.Gaps)
	}
}

func TestGCDiem77(t *testing.T) {
	src, err := corpora.Diem("77")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := corpora.CopyTree(src, root); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root)

	// The plan first: nothing removed.
	r := lv(t, root, "gc", "--dry-run", "--grace", "0s", "--storage", "file://"+root)
	if r.Code != 0 || !strings.Contains(r.Stdout, "would remove           epoch_ending_77-.0965") || !strings.Contains(r.Stdout, "would remove           state_ver_41315058.6168") {
		t.Fatalf("dry run: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := tree(t, root); !equal(got, before) {
		t.Fatalf("dry run changed the store: %q", got)
	}

	r = lv(t, root, "gc", "--json", "--grace", "0s", "--storage", "file://"+root)
	if r.Code != 0 {
		t.Fatalf("gc: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	var res struct {
		Removed []struct{ Handle string } `json:"removed"`
		Kept    []struct{ Handle string } `json:"kept"`
		Ref     []finding                 `json:"referenced_findings"`
	}
	if err := json.Unmarshal([]byte(r.Stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res.Removed) != 2 || res.Removed[0].Handle != "epoch_ending_77-.0965" || res.Removed[1].Handle != "state_ver_41315058.6168" || len(res.Kept) != 0 ||
		len(res.Ref) != 1 || res.Ref[0].Kind != "missing" {
		t.Fatalf("gc result %s", r.Stdout)
	}
	var want []string
	for _, p := range before {
		if !strings.HasPrefix(p, "epoch_ending_77-.0965") && !strings.HasPrefix(p, "state_ver_41315058.6168") {
			want = append(want, p)
		}
	}
	if got := tree(t, root); !equal(got, want) {
		t.Fatalf("after gc: %q\nwant %q", got, want)
	}
	rep := auditJSON(t, root, 1, "--storage", "file://"+root)
	if got := summary(rep); !equal(got, []string{"missing epoch_ending_77-.1d01/epoch_ending.manifest (epoch_ending_77-.1d01)"}) {
		t.Fatalf("audit after gc: %q", got)
	}
}

// An undecodable metadata file stops gc before it deletes anything.
func TestGCStopsOnUndecodableMetadata(t *testing.T) {
	src, err := corpora.Diem("77")
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := corpora.CopyTree(src, root); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "metadata/transaction_41315058-41315058.meta"), []byte(`{"TransactionBackup":{"first_version":41315058,`), 0o644); err != nil {
		t.Fatal(err)
	}
	before := tree(t, root)
	r := lv(t, root, "gc", "--grace", "0s", "--storage", "file://"+root)
	if r.Code == 0 || !strings.Contains(r.Stderr, "does not decode; nothing deleted") {
		t.Fatalf("gc: exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	if got := tree(t, root); !equal(got, before) {
		t.Fatalf("gc changed the store: %q", got)
	}
}

func TestAuditUsage(t *testing.T) {
	root, _, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		flag string
	}{
		{[]string{"--format", "zip", "--storage", "file://" + root}, "--format"},
		{[]string{"--concurrency", "0", "--storage", "file://" + root}, "--concurrency"},
		{[]string{"--concurrency", "x", "--storage", "file://" + root}, "--concurrency"},
		{[]string{"--nope"}, "--nope"},
		{nil, "--storage"},
	} {
		r := lv(t, root, append([]string{"audit"}, c.args...)...)
		if r.Code != 2 || !strings.Contains(r.Stderr, c.flag) {
			t.Fatalf("audit %v: exit %d, stderr %q; want 2 naming %s", c.args, r.Code, r.Stderr, c.flag)
		}
	}
	// A directory that is not a store (no metadata folder) is exit 10, as for every
	// reader (docs/storage.md), not "findings".
	r := lv(t, root, "audit", "--storage", "file://"+t.TempDir())
	if r.Code != 10 || !strings.Contains(r.Stderr, "store does not exist") {
		t.Fatalf("empty store: exit %d\n%s", r.Code, r.Stderr)
	}
}

// tree lists every file and folder under root, relative, sorted.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if rel != "." {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// The operator's six-key config cannot list folders: gc says so and does nothing.
func TestGCThroughSixKeyConfigRefuses(t *testing.T) {
	root, cfg, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	r := lv(t, root, "gc", "--dry-run", "--grace", "0s", "--command-config", cfg)
	if r.Code != 1 || r.Stdout != "" || !strings.Contains(r.Stderr, "configure list_backups") {
		t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
	// A Diem snapshot has no epoch: the table does not invent one.
	d, err := corpora.Diem("155")
	if err != nil {
		t.Fatal(err)
	}
	r = lv(t, root, "list", "--storage", "file://"+d)
	if r.Code != 0 || !strings.Contains(r.Stdout, "state_snapshot  version 66864872  ") || strings.Contains(r.Stdout, "(epoch") {
		t.Fatalf("exit %d\n%s%s", r.Code, r.Stdout, r.Stderr)
	}
}

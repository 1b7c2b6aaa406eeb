package audit_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/shell"
)

// want is an expected finding: kind, handle, backup, and the start of its detail.
type want struct {
	kind         audit.Kind
	handle       string
	backup       string
	detailPrefix string
}

func (w want) String() string {
	return fmt.Sprintf("%s %s (%s) %q...", w.kind, w.handle, w.backup, w.detailPrefix)
}

// checkFindings requires exactly the wanted findings, in the report's order.
func checkFindings(t *testing.T, rep *audit.Report, wants []want) {
	t.Helper()
	ok := len(rep.Findings) == len(wants)
	for i := 0; ok && i < len(wants); i++ {
		f, w := rep.Findings[i], wants[i]
		ok = f.Kind == w.kind && f.Handle == w.handle && f.Backup == w.backup && strings.HasPrefix(f.Detail, w.detailPrefix)
	}
	if !ok {
		var got strings.Builder
		for _, f := range rep.Findings {
			fmt.Fprintf(&got, "\n  %s %s (%s) %s", f.Kind, f.Handle, f.Backup, f.Detail)
		}
		t.Fatalf("findings:%s\nwant %v", got.String(), wants)
	}
}

const (
	unrefFolder = "no metadata references this folder"
	zeroMeta    = "zero-length metadata file"
)

// aptosFindings are the four files the archive never published.
var aptosFindings = []want{
	{audit.Missing, "state_epoch_202_ver_129152.5c55/0-.chunk", "state_epoch_202_ver_129152.5c55", "referenced by state_epoch_202_ver_129152.5c55/state.manifest, absent"},
	{audit.Missing, "state_epoch_203_ver_129768.1c41/0-.chunk", "state_epoch_203_ver_129768.1c41", "referenced by state_epoch_203_ver_129768.1c41/state.manifest, absent"},
	{audit.Missing, "state_epoch_206_ver_131685.3de5/0-.chunk", "state_epoch_206_ver_131685.3de5", "referenced by state_epoch_206_ver_131685.3de5/state.manifest, absent"},
	{audit.Missing, "transaction_0-.b220/0-.chunk", "transaction_0-.b220", "referenced by transaction_0-.b220/transaction.manifest, absent"},
}

// diemFindings are what each diem-0l-v5 store holds as published (corpora README).
var diemFindings = map[string][]want{
	"14": nil,
	"77": {
		{audit.Unreferenced, "epoch_ending_77-.0965", "epoch_ending_77-.0965", unrefFolder},
		{audit.Missing, "epoch_ending_77-.1d01/epoch_ending.manifest", "epoch_ending_77-.1d01", "manifest named by metadata/epoch_ending_77-77.meta is absent"},
		{audit.Unreferenced, "state_ver_41315058.6168", "state_ver_41315058.6168", unrefFolder},
	},
	"89": {
		{audit.Partial, "metadata/transaction_45934438-45934438.meta", "", zeroMeta},
		{audit.Unreferenced, "transaction_45934438-.1bbe", "transaction_45934438-.1bbe", unrefFolder},
	},
	"104": nil,
	"155": {
		{audit.Unreferenced, "epoch_ending_155-.9b58", "epoch_ending_155-.9b58", unrefFolder},
		{audit.Partial, "metadata/transaction_66864872-66864872.meta", "", zeroMeta},
		{audit.Unreferenced, "transaction_66864872-.49d3", "transaction_66864872-.49d3", unrefFolder},
	},
}

// diemCounts are metadata files, backups and referenced files read per store.
var diemCounts = map[string][3]int{
	"14": {2, 2, 5}, "77": {2, 2, 3}, "89": {3, 2, 6}, "104": {3, 3, 9}, "155": {3, 2, 6},
}

func openLocal(t testing.TB, root string) storage.Store {
	t.Helper()
	st, err := local.New(root)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openAptosAdapter opens root through the operator's epoch-archive.yaml, unchanged,
// with its commands running in root as they were written to.
func openAptosAdapter(t testing.TB, root string) storage.Store {
	t.Helper()
	_, cfgPath, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := shell.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	st, err := shell.NewWithOptions(cfg, shell.Options{Dir: root})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// openLocalAdapter opens a plain store through the local sample command config.
func openLocalAdapter(t *testing.T, root string) storage.Store {
	t.Helper()
	cfg, err := shell.Sample("local", map[string]string{"ROOT": root})
	if err != nil {
		t.Fatal(err)
	}
	st, err := shell.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func run(t *testing.T, st storage.Store) *audit.Report {
	t.Helper()
	return runWith(t, st, audit.Options{Concurrency: 4})
}

func runWith(t *testing.T, st storage.Store, o audit.Options) *audit.Report {
	t.Helper()
	rep, err := audit.BackupCLI(context.Background(), st, o)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Format != "backupcli" {
		t.Fatalf("format %q", rep.Format)
	}
	return rep
}

func TestAptosAsPublished(t *testing.T) {
	root, _, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	viaFile := run(t, openLocal(t, root))
	checkFindings(t, viaFile, aptosFindings)
	if !viaFile.UnreferencedChecked || len(viaFile.Notes) != 0 {
		t.Fatalf("file:// store: unreferenced checked %v, notes %q", viaFile.UnreferencedChecked, viaFile.Notes)
	}

	viaAdapter := run(t, openAptosAdapter(t, root))
	checkFindings(t, viaAdapter, aptosFindings)
	if viaAdapter.UnreferencedChecked || len(viaAdapter.Notes) != 1 || !strings.Contains(viaAdapter.Notes[0], "unreferenced files and folders were not checked") {
		t.Fatalf("adapter: unreferenced checked %v, notes %q", viaAdapter.UnreferencedChecked, viaAdapter.Notes)
	}

	// 218 metadata files (identity + 217 backups); 217 manifests, 210 epoch chunks,
	// 3 transaction chunks + 4 proofs, 3 state proofs + 3 chunk proofs.
	for _, rep := range []*audit.Report{viaFile, viaAdapter} {
		if rep.MetadataFiles != 218 || rep.Backups != 217 || rep.Files != 440 {
			t.Fatalf("counts: %d metadata files, %d backups, %d files", rep.MetadataFiles, rep.Backups, rep.Files)
		}
	}
	// Through file:// the gzip layer is the operator's data (read compressed); the
	// adapter's gzip -cd hands over the decompressed bytes.
	if viaFile.Bytes <= 0 || viaAdapter.Bytes <= viaFile.Bytes {
		t.Fatalf("bytes: file:// %d, adapter %d", viaFile.Bytes, viaAdapter.Bytes)
	}
}

func TestDiemAsPublished(t *testing.T) {
	for _, name := range corpora.DiemStores {
		t.Run(name, func(t *testing.T) {
			root, err := corpora.Diem(name)
			if err != nil {
				t.Fatal(err)
			}
			for via, st := range map[string]storage.Store{"file": openLocal(t, root), "adapter": openLocalAdapter(t, root)} {
				rep := run(t, st)
				checkFindings(t, rep, diemFindings[name])
				c := diemCounts[name]
				if rep.MetadataFiles != c[0] || rep.Backups != c[1] || rep.Files != c[2] {
					t.Fatalf("%s: counts %d metadata files, %d backups, %d files; want %v", via, rep.MetadataFiles, rep.Backups, rep.Files, c)
				}
				if !rep.UnreferencedChecked {
					t.Fatalf("%s: unreferenced not checked", via)
				}
			}
		})
	}
}

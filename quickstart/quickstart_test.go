package quickstart_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/quickstart"
	"github.com/ledgervault/ledgervault/storage/local"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestQuickstart runs the whole cycle small: the restore reaches the node's last
// version from a snapshot plus transactions, verify passes, and the roots are equal.
func TestQuickstart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "qs")
	var steps []string
	s, err := quickstart.Run(context.Background(), quickstart.Options{
		Dir: dir, Versions: 3000, EpochLength: 700, InitialAccounts: 3000, TransactionBatch: 1000,
		MaxChunkSize: 64 << 10, Step: func(n string) { steps = append(steps, n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	if !s.RootsEqual || s.Restore.TargetVersion != 2999 || !s.Restore.HasSnapshot || s.Restore.SnapshotVersion != 4*700 {
		t.Fatalf("restore %+v, roots equal %v", s.Restore, s.RootsEqual)
	}
	if !s.Verify.OK || len(s.Verify.Rows) != len(s.Backups) {
		t.Fatalf("verify %+v for %d backups", s.Verify, len(s.Backups))
	}
	types := map[string]int{}
	for _, b := range s.Backups {
		types[b.Type]++
	}
	if types[native.TypeEpochEnding] != 1 || types[native.TypeStateSnapshot] != 1 || types[native.TypeTransaction] != 3 {
		t.Fatalf("backups %+v", s.Backups)
	}
	// A clean quickstart backup: audit of our format reports nothing.
	st, err := local.New(s.BackupDir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	rep, err := audit.Native(context.Background(), st, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 0 || rep.Backups != len(s.Backups) || !rep.UnreferencedChecked {
		var sb strings.Builder
		rep.WriteTable(&sb)
		t.Fatalf("audit of the quickstart backups:\n%s", sb.String())
	}
	if strings.Join(steps, ",") != "init devnet,run node,back up epoch endings,back up a state snapshot,back up transactions,restore,verify,compare roots" {
		t.Fatalf("steps %q", steps)
	}
	// A second run into the same directory refuses rather than mixing runs.
	if _, err := quickstart.Run(context.Background(), quickstart.Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("second run into %s: %v", dir, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "restored")); err != nil {
		t.Fatal(err)
	}
}

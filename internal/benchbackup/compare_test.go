package benchbackup

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/internal/testbin"
)

// TestMain builds ledgervault for the comparison; run as a child with
// BENCHBACKUP_SST_INGEST set, the test binary is the sst-ingest child instead.
func TestMain(m *testing.M) {
	if os.Getenv("BENCHBACKUP_SST_INGEST") != "" {
		os.Exit(ingestChildMain(os.Args[1:]))
	}
	testbin.Main(m, "benchbackup-test-")
}

// ingestChildMain is the sst-ingest subcommand of ledgervault-dev, for the test.
func ingestChildMain(args []string) int {
	fs := flag.NewFlagSet("sst-ingest", flag.ContinueOnError)
	src := fs.String("src", "", "")
	dst := fs.String("dst", "", "")
	pairs := fs.String("pairs", "", "")
	version := fs.Uint64("version", 0, "")
	if len(args) == 0 || args[0] != "sst-ingest" || fs.Parse(args[1:]) != nil {
		fmt.Fprintln(os.Stderr, "usage: sst-ingest ...")
		return 2
	}
	var res IngestResult
	var err error
	if *src != "" {
		res, err = DumpState(context.Background(), *src, *version, *pairs)
	} else {
		res, err = IngestState(context.Background(), *pairs, *version, *dst)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	json.NewEncoder(os.Stdout).Encode(res)
	return 0
}

// TestCompareSmoke runs the whole comparison on a tiny node (restic absent: its rows
// are skipped with a message) and checks the rows and figures it prints.
func TestCompareSmoke(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("BENCHBACKUP_SST_INGEST", "1") // inherited by the children: only the sst-ingest child is this binary
	var out strings.Builder
	res, err := Compare(context.Background(), CompareConfig{
		Binary: testbin.Path, Self: self, Restic: "/nonexistent/restic", Accounts: 3000, Txns: 200, EpochLength: 100, Dir: t.TempDir(),
	}, &out)
	if err != nil {
		t.Fatalf("Compare: %v\n%s", err, out.String())
	}
	t.Log("\n" + out.String())
	for _, row := range []string{rowLVBackup, rowTar, rowLVRestore, rowIngest, rowLVTxn} {
		if _, ok := res.row(row); !ok && (row != rowTar || len(res.Skipped) == 0) {
			t.Errorf("no row %q", row)
		}
		if !strings.Contains(out.String(), strings.TrimSpace(row)) && row != rowTar {
			t.Errorf("table lacks %q", row)
		}
	}
	if _, ok := res.row(rowResticBackup); ok {
		t.Error("restic rows with no restic")
	}
	if !strings.Contains(out.String(), "restic rows skipped") {
		t.Error("no message about the skipped restic rows")
	}
	lvr, _ := res.row(rowLVRestore)
	in, _ := res.row(rowIngest)
	// 3000 accounts and the genesis accounts, in the restore and in the ingest alike.
	if lvr.Items < 3000 || lvr.Items != in.Items || res.StateItems != in.Items {
		t.Errorf("restored %d items, ingested %d, state %d", lvr.Items, in.Items, res.StateItems)
	}
	if res.TxnRestored != 200 || res.StoreBytes <= res.LogicalBytes || res.Init.Wall <= 0 || lvr.Usage.CPU <= 0 || lvr.Usage.PeakRSS <= 0 {
		t.Errorf("figures: %+v", res)
	}
}

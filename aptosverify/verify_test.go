package aptosverify_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/txn"
	"github.com/ledgervault/ledgervault/aptosverify"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/corpora"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/storageurl"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// libra7 returns the aptos-libra7 store root and its genesis waypoint.
func libra7(t testing.TB) (string, aptos.Waypoint) {
	t.Helper()
	root, _, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err) // a missing corpus is a broken checkout
	}
	b, err := os.ReadFile(filepath.Join(root, "..", "genesis", "waypoint.txt"))
	if err != nil {
		t.Fatal(err)
	}
	wp, err := aptos.ParseWaypoint(string(b))
	if err != nil {
		t.Fatal(err)
	}
	return root, wp
}

func open(t testing.TB, root string) storage.Store {
	t.Helper()
	st, err := storageurl.Open(context.Background(), "file://"+root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestVerifyInProcess runs Verify on aptos-libra7 through file:// (the gzip layer
// removed by backupcli). Without -race it is the whole store; with -race (slow) a copy
// holding the epoch endings, the state snapshots and the genesis transaction backup,
// whose verdicts are asserted for what they are.
func TestVerifyInProcess(t *testing.T) {
	root, wp := libra7(t)
	wantTxns, wantRows := uint64(60000), 217
	if raceEnabled {
		dst := t.TempDir()
		if err := corpora.CopyTree(root, dst); err != nil {
			t.Fatal(err)
		}
		for _, pat := range []string{"transaction_1-*", "transaction_20001-*", "transaction_40001-*", "metadata/transaction_1-*", "metadata/transaction_20001-*", "metadata/transaction_40001-*"} {
			m, _ := filepath.Glob(filepath.Join(dst, pat))
			for _, p := range m {
				os.RemoveAll(p)
			}
		}
		root, wantTxns, wantRows = dst, 0, 214
	}
	rep, err := aptosverify.Verify(context.Background(), open(t, root), aptosverify.Options{Trusted: wp})
	if err != nil {
		t.Fatal(err)
	}
	if rep.EpochEndings != 210 || rep.Signatures != 209 || rep.StateRootProofs != 3 || rep.Transactions != wantTxns || rep.MissingFiles != 4 || len(rep.Rows) != wantRows {
		t.Fatalf("endings %d signatures %d roots %d transactions %d missing %d rows %d", rep.EpochEndings, rep.Signatures, rep.StateRootProofs, rep.Transactions, rep.MissingFiles, len(rep.Rows))
	}
	if rep.OK || rep.Count(aptosverify.StatusFailed) != 0 || rep.Count(aptosverify.StatusIncomplete) != 4 {
		t.Fatalf("ok %v failed %d incomplete %d", rep.OK, rep.Count(aptosverify.StatusFailed), rep.Count(aptosverify.StatusIncomplete))
	}
	var buf bytes.Buffer
	if err := rep.WriteTable(&buf); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(buf.String(), "NOT fully verified (4 incomplete of") || !strings.Contains(buf.String(), "210 epoch endings (209 signatures)") {
		t.Fatalf("table:\n%s", buf.String())
	}
}

// TestTrustLaterWaypoint: trusting epoch 150's waypoint, earlier endings are skipped
// (not needed, not called verified), the chain starts there and the transactions,
// proven by ledger infos of earlier epochs, cannot be verified: they fail as beyond
// the history's reach, never pass.
func TestTrustLaterWaypoint(t *testing.T) {
	root, _ := libra7(t)
	st := open(t, root)
	v, err := backupcli.Load(context.Background(), st, backupcli.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var wp aptos.Waypoint
	for _, m := range v.Manifests {
		if e := m.Manifest.EpochEnding; e != nil && e.FirstEpoch == 150 {
			wp = aptos.Waypoint{Version: e.Waypoints[0].Version, Value: aptos.HashValue(e.Waypoints[0].Hash)}
		}
	}
	rep, err := aptosverify.Verify(context.Background(), st, aptosverify.Options{Trusted: wp})
	if err != nil {
		t.Fatal(err)
	}
	if rep.EpochEndings != 60 || rep.Signatures != 59 || rep.StateRootProofs != 3 || rep.Count(aptosverify.StatusSkipped) != 150 {
		t.Fatalf("endings %d signatures %d roots %d skipped %d", rep.EpochEndings, rep.Signatures, rep.StateRootProofs, rep.Count(aptosverify.StatusSkipped))
	}
	for _, row := range rep.Rows {
		if row.Status == aptosverify.StatusSkipped && row.Detail == "" {
			t.Fatalf("skipped row without a reason: %+v", row)
		}
		if row.Type == "transaction" && row.Range != "versions 0-0" && (row.Status != aptosverify.StatusFailed || !strings.Contains(row.Error, "history starts at the trusted epoch 150")) {
			t.Fatalf("transactions proven before the trusted epoch: %+v", row)
		}
	}
	if rep.Transactions != 0 {
		t.Fatalf("%d transactions verified before the trusted epoch", rep.Transactions)
	}
}

// TestCancelled: a cancelled verify returns the context's error and leaves no
// goroutine behind (TestMain checks).
func TestCancelled(t *testing.T) {
	root, wp := libra7(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := aptosverify.Verify(ctx, open(t, root), aptosverify.Options{Trusted: wp}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled verify: %v", err)
	}
}

// BenchmarkVerifyLibra7 verifies aptos-libra7 through file:// and, in the same run, only
// decodes the same epoch endings and transaction records read the same way, so the
// cost of the cryptography shows against decoding alone. It reports endings/s,
// signatures/s and transactions/s for both, and the process's peak RSS.
func BenchmarkVerifyLibra7(b *testing.B) {
	root, wp := libra7(b)
	st := open(b, root)
	ctx := context.Background()
	var chain, txns, decEndings, decTxns time.Duration
	var rep *aptosverify.Report
	for b.Loop() {
		var err error
		rep, err = aptosverify.Verify(ctx, st, aptosverify.Options{Trusted: wp})
		if err != nil {
			b.Fatal(err)
		}
		chain += rep.ChainElapsed
		txns += rep.TransactionsElapsed
		e, x := decodeOnly(b, st)
		decEndings += e
		decTxns += x
	}
	n := float64(b.N)
	b.ReportMetric(float64(rep.EpochEndings)*n/chain.Seconds(), "endings/s")
	b.ReportMetric(float64(rep.Signatures)*n/chain.Seconds(), "sigs/s")
	b.ReportMetric(float64(rep.Transactions)*n/txns.Seconds(), "txns/s")
	b.ReportMetric(float64(rep.EpochEndings)*n/decEndings.Seconds(), "decode-endings/s")
	b.ReportMetric(float64(rep.Transactions)*n/decTxns.Seconds(), "decode-txns/s")
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
	}
}

// decodeOnly reads every epoch-ending and transaction chunk of the store as Verify does
// and decodes each record strictly, verifying nothing.
func decodeOnly(b *testing.B, st storage.Store) (endings, txns time.Duration) {
	ctx := context.Background()
	v, err := backupcli.Load(ctx, st, backupcli.LoadOptions{})
	if err != nil {
		b.Fatal(err)
	}
	each := func(h storage.FileHandle, decode func([]byte) error) {
		rc, err := st.Open(ctx, h)
		if errors.Is(err, storage.ErrNotFound) {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
		defer rc.Close()
		r, _, err := backupcli.Decompress(rc, 0)
		if err != nil {
			b.Fatal(err)
		}
		recs := backupcli.NewRecords(r, backupcli.RecordLimits{})
		for recs.Next() {
			if err := decode(recs.Record()); err != nil {
				b.Fatalf("%s: %v", h, err)
			}
		}
		if err := recs.Err(); err != nil && !errors.Is(err, io.EOF) {
			b.Fatal(err)
		}
	}
	start := time.Now()
	for _, m := range v.Manifests {
		if e := m.Manifest.EpochEnding; e != nil {
			for _, c := range e.Chunks {
				each(c.LedgerInfos, func(rec []byte) error { _, err := aptos.DecodeLedgerInfoWithSignatures(rec); return err })
			}
		}
	}
	endings = time.Since(start)
	start = time.Now()
	for _, m := range v.Manifests {
		if x := m.Manifest.Transaction; x != nil {
			for _, c := range x.Chunks {
				each(c.Transactions, func(rec []byte) error { _, err := txn.DecodeRecord(rec); return err })
			}
		}
	}
	return endings, time.Since(start)
}

// TestMissingEpochChunk: with epoch 100's chunk gone, the chain verifies to epoch 99 and
// stops there: epoch 100's row is incomplete naming the file, later endings are not
// checked (never verified), transactions proven by ledger infos of epochs up to 94 still
// verify, and the state snapshots, proven at epochs 202-206, fail as beyond the history.
func TestMissingEpochChunk(t *testing.T) {
	root, wp := libra7(t)
	dst := t.TempDir()
	if err := corpora.CopyTree(root, dst); err != nil {
		t.Fatal(err)
	}
	chunk, err := filepath.Glob(filepath.Join(dst, "epoch_ending_100-.*", "100-.chunk"))
	if err != nil || len(chunk) != 1 {
		t.Fatal(chunk, err)
	}
	if err := os.Remove(chunk[0]); err != nil {
		t.Fatal(err)
	}
	wantTxns := uint64(60000)
	if raceEnabled { // the big transaction backups are slow under -race
		for _, name := range []string{"transaction_1-20000.meta", "transaction_20001-40000.meta", "transaction_40001-60000.meta"} {
			if err := os.Remove(filepath.Join(dst, "metadata", name)); err != nil {
				t.Fatal(err)
			}
		}
		wantTxns = 0
	}
	rep, err := aptosverify.Verify(context.Background(), open(t, dst), aptosverify.Options{Trusted: wp})
	if err != nil {
		t.Fatal(err)
	}
	if rep.EpochEndings != 100 || rep.Signatures != 99 || rep.Transactions != wantTxns || rep.StateRootProofs != 0 {
		t.Fatalf("endings %d signatures %d transactions %d roots %d", rep.EpochEndings, rep.Signatures, rep.Transactions, rep.StateRootProofs)
	}
	rel, _ := filepath.Rel(dst, chunk[0])
	for _, row := range rep.Rows {
		var e int
		if _, err := fmt.Sscanf(row.Range, "epochs %d-", &e); err != nil || row.Type != "epoch_ending" {
			if row.Type == "state_snapshot" && (row.Status != aptosverify.StatusFailed || !strings.Contains(row.Error, "beyond the verified epoch history")) {
				t.Fatalf("snapshot row %+v", row)
			}
			continue
		}
		switch {
		case e < 100 && row.Status != aptosverify.StatusVerified,
			e == 100 && (row.Status != aptosverify.StatusIncomplete || len(row.Missing) != 1 || string(row.Missing[0]) != rel),
			e > 100 && row.Status != aptosverify.StatusNotChecked:
			t.Fatalf("row %+v", row)
		}
	}
}

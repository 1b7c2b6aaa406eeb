package node

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func initNode(t testing.TB, cfg Config, initial uint64) (string, InitResult) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "node")
	res, err := Init(context.Background(), dir, InitOptions{Config: cfg, InitialAccounts: initial})
	if err != nil {
		t.Fatal(err)
	}
	return dir, res
}

func TestInitWritesGenesis(t *testing.T) {
	dir, res := initNode(t, Config{EpochLength: 50, BlockSize: 10}, 0)
	fi, err := os.Stat(filepath.Join(dir, SecretFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("secret mode %v", fi.Mode().Perm())
	}
	wp, err := ReadWaypoint(dir)
	if err != nil || wp != res.Waypoint {
		t.Fatalf("waypoint file %v (%v), Init returned %v", wp, err, res.Waypoint)
	}
	raw, err := os.ReadFile(filepath.Join(dir, GenesisLedgerInfoFile))
	if err != nil {
		t.Fatal(err)
	}
	li, err := ledger.DecodeLedgerInfoWithSignatures(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := wp.Verify(&li.LedgerInfo); err != nil {
		t.Fatalf("genesis ledger info does not match the waypoint: %v", err)
	}
	if li.LedgerInfo.NextValidatorSet == nil || len(li.LedgerInfo.NextValidatorSet.Validators) != 4 {
		t.Fatal("genesis does not carry a 4-validator set")
	}
	b, err := os.ReadFile(filepath.Join(dir, GenesisValidatorsFile))
	if err != nil || !strings.Contains(string(b), "public_key") {
		t.Fatalf("genesis validators file: %s %v", b, err)
	}
	// A second init into the same directory is refused.
	if _, err := Init(context.Background(), dir, InitOptions{}); err == nil {
		t.Fatal("init over an existing node accepted")
	}
	// Run refuses a secret that others can read, and a directory that was never initialised.
	if err := os.Chmod(filepath.Join(dir, SecretFile), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Run(context.Background(), dir, RunOptions{BackupServiceAddress: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("run with a world-readable secret: %v", err)
	}
	if err := Run(context.Background(), t.TempDir(), RunOptions{BackupServiceAddress: "127.0.0.1:0"}); err == nil || !strings.Contains(err.Error(), "node init") {
		t.Fatalf("run in an empty directory: %v", err)
	}
}

func openStore(t testing.TB, dir string) *ledgerdb.DB {
	t.Helper()
	db, err := ledgerdb.Open(context.Background(), filepath.Join(dir, DBDir), ledgerdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestRunCommitsServesAndStops(t *testing.T) {
	dir, res := initNode(t, Config{EpochLength: 50, BlockSize: 10}, 0)
	// Run to a version and exit.
	if err := Run(context.Background(), dir, RunOptions{BackupServiceAddress: "127.0.0.1:0", UntilVersion: 300, ExitWhenDone: true}); err != nil {
		t.Fatal(err)
	}
	db := openStore(t, dir)
	sum, err := db.Summary(context.Background())
	db.Close()
	if err != nil || sum.NextVersion != 301 {
		t.Fatalf("after --until-version 300: next version %d, %v", sum.NextVersion, err)
	}

	// Run on, serving, until cancelled.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	addrs := make(chan [2]string, 1)
	errc := make(chan error, 1)
	go func() {
		errc <- Run(ctx, dir, RunOptions{
			BackupServiceAddress: "127.0.0.1:0", MetricsAddress: "127.0.0.1:0", UntilVersion: 700,
			OnListening: func(bs, m string) { addrs <- [2]string{bs, m} },
		})
	}()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-errc:
		t.Fatal(err)
	}
	c, err := backupservice.New(a[0], backupservice.ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var st proof.DBState
	for deadline := time.Now().Add(30 * time.Second); ; {
		if st, err = c.DBState(ctx); err != nil {
			t.Fatal(err)
		}
		if st.CommittedVersion != nil && *st.CommittedVersion == 700 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node did not reach version 700: %+v", st)
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Stopped at 700, still serving: the latest ledger info verifies from the waypoint.
	les, err := c.EpochEndingLedgerInfos(ctx, 0, st.Epoch)
	if err != nil {
		t.Fatal(err)
	}
	var hist *ledger.EpochHistory
	for les.Next() {
		li, err := les.LedgerInfo()
		if err != nil {
			t.Fatal(err)
		}
		if les.Epoch() == 0 {
			hist, err = ledger.NewEpochHistory(res.Waypoint, &li.LedgerInfo)
		} else {
			err = hist.Append(&li)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := les.Err(); err != nil {
		t.Fatal(err)
	}
	les.Close()
	latest, err := st.LedgerInfo()
	if err != nil {
		t.Fatal(err)
	}
	if err := hist.Verify(&latest); err != nil {
		t.Fatalf("latest ledger info: %v", err)
	}
	// Metrics.
	resp, err := http.Get("http://" + a[1] + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	http.DefaultClient.CloseIdleConnections()
	for _, want := range []string{
		"ledgervault_node_committed_version 700",
		`ledgervault_backup_service_requests_total{code="200",endpoint="db_state"}`,
		`ledgervault_backup_service_records_total{endpoint="epoch_ending_ledger_infos"}`,
		"ledgervault_node_block_commit_seconds_bucket",
		"ledgervault_build_info{", "go_goroutines ", "process_start_time_seconds ",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run after cancel: %v", err)
	}
}

func TestRunRateLimitAndCancel(t *testing.T) {
	dir, _ := initNode(t, Config{EpochLength: 100, BlockSize: 10}, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	if err := Run(ctx, dir, RunOptions{BackupServiceAddress: "127.0.0.1:0", TPS: 200}); err != nil {
		t.Fatal(err)
	}
	db := openStore(t, dir)
	defer db.Close()
	sum, err := db.Summary(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// 200 txn/s for 0.7 s: about 140 versions, never thousands (the unthrottled rate).
	if sum.NextVersion < 20 || sum.NextVersion > 400 {
		t.Fatalf("rate-limited to 200 tps for 0.7s: %d versions", sum.NextVersion)
	}
}

func TestRunReportsListenFailure(t *testing.T) {
	dir, _ := initNode(t, Config{}, 0)
	err := Run(context.Background(), dir, RunOptions{BackupServiceAddress: "127.0.0.1:99999"})
	if err == nil || !strings.Contains(err.Error(), "listen") {
		t.Fatalf("bad address: %v", err)
	}
}

// Package faultcampaign runs the short fault campaign in the default suite: the
// real coordinator binary backs up a node committing 100 txn/s to storage that
// fails 5% of its calls (refuse, cut upload, commit then fail, half read, failed
// listing) for 20 s, over the shell adapter and over S3 (the in-process emulator
// behind a fault proxy), with a 6 s lease. Half of the lease file writes commit and
// then report failure, so that renewals surely meet the ambiguous write in so
// short a run (the pre-fix lease code exited 4, "lease lost", the renewal after
// one). The test asserts that the coordinator never exits by itself, catches up,
// backs up every version of the node, exits 0 on SIGTERM, leaves no process, logs
// no panic, and that gc --grace 0s leaves nothing unreferenced, verify passes and
// a restore's roots equal the node's. The long version is
// "ledgervault-dev bench-faults".
package faultcampaign

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/internal/faultinject"
	"github.com/ledgervault/ledgervault/internal/killcampaign"
	"github.com/ledgervault/ledgervault/internal/proc"
)

func TestMain(m *testing.M) {
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	goleak.VerifyTestMain(m)
}

// binary builds ./cmd/ledgervault into a temporary directory.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ledgervault")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/ledgervault/ledgervault/cmd/ledgervault")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// seed is LEDGERVAULT_FAULT_SEED (to try another) or the fixed seed of the suite.
func seed(t *testing.T) uint64 {
	if s := os.Getenv("LEDGERVAULT_FAULT_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LEDGERVAULT_FAULT_SEED=%q: %v", s, err)
		}
		return v
	}
	return 14
}

// tlog writes slog records to the test log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestFaultCampaign(t *testing.T) {
	bin := binary(t)
	for _, backend := range []killcampaign.Kind{killcampaign.Shell, killcampaign.S3} {
		t.Run(string(backend), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()
			cfg := killcampaign.FaultConfig{
				Binary:         bin,
				Backend:        backend,
				Seed:           seed(t),
				Rate:           0.05,
				LeaseRate:      0.5,
				FaultDuration:  20 * time.Second,
				NodeTail:       5 * time.Second,
				Dir:            t.TempDir(),
				LeaseTTL:       6 * time.Second,
				CatchUpTimeout: 60 * time.Second,
				Logger:         slog.New(slog.NewTextHandler(tlog{t}, nil)),
			}
			t.Logf("seed %d (set LEDGERVAULT_FAULT_SEED to try another)", cfg.Seed)
			res, err := killcampaign.RunFaults(ctx, cfg)
			if res != nil {
				var sb strings.Builder
				res.Write(&sb)
				t.Log("\n" + sb.String())
			}
			if err != nil {
				t.Fatal(err)
			}
			if res.ExitedEarly || res.CoordinatorExit != "exit 0" {
				t.Errorf("coordinator: %s (exited by itself: %v), want exit 0 after SIGTERM", res.CoordinatorExit, res.ExitedEarly)
			}
			// The faults happened, the ambiguous lease write among them.
			leaseOp := map[killcampaign.Kind]string{killcampaign.Shell: "save_metadata_line@lease_", killcampaign.S3: "PutObject@lease_"}[backend]
			if n := res.Counts.InjectedByOp[leaseOp][faultinject.CommitThenFail]; n == 0 {
				t.Errorf("no lease write committed then failed (%s: %v)", leaseOp, res.Counts.InjectedByOp)
			}
			if n := res.Counts.TotalInjected() - res.Counts.InjectedByOp[leaseOp][faultinject.CommitThenFail]; n < 3 {
				t.Errorf("%d faults injected besides the lease writes' (%v), want at least 3", n, res.Counts.InjectedByOp)
			}
			if res.CatchUp <= 0 {
				t.Error("the coordinator did not catch up")
			}
			c := res.Checks
			if c.OrphansSum != 0 || res.PanicLines != 0 || c.PartialFiles != 0 || c.UnreferencedAfter != 0 || !c.VerifyPassed || !c.RootsEqual ||
				c.FinalVersion != c.NodeFinalVersion || c.RestoredVersion != c.NodeFinalVersion {
				t.Errorf("checks failed: orphans %d, panic lines %d, partial files %d, left after gc %d, verify %v, roots equal %v, backed up to %d and restored %d of the node's %d",
					c.OrphansSum, res.PanicLines, c.PartialFiles, c.UnreferencedAfter, c.VerifyPassed, c.RootsEqual, c.FinalVersion, c.RestoredVersion, c.NodeFinalVersion)
			}
			for _, p := range c.Problems {
				t.Error(p)
			}
		})
	}
}

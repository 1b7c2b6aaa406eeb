// Package killcampaign runs the short kill campaign in the default suite: the real
// coordinator binary is SIGKILLed or SIGTERMed 10 times across local, shell and S3
// storage while a node commits, and the test asserts no orphan processes, no visible
// partial files, verify passing, a restore whose roots equal the node's, and at least
// one completed backup per kind. The long version is "ledgervault-dev bench-kills".
package killcampaign

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

// seed is LEDGERVAULT_KILL_SEED (to repeat a run) or the clock.
func seed(t *testing.T) uint64 {
	if s := os.Getenv("LEDGERVAULT_KILL_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("LEDGERVAULT_KILL_SEED=%q: %v", s, err)
		}
		return v
	}
	return uint64(time.Now().UnixNano())
}

// tlog writes slog records to the test log.
type tlog struct{ t *testing.T }

func (w tlog) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestKillCampaign(t *testing.T) {
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Second)
	defer cancel()
	cfg := killcampaign.Config{
		Binary: bin,
		Runs: []killcampaign.KindRun{
			{Kind: killcampaign.Local, Kills: 4},
			{Kind: killcampaign.Shell, Kills: 3},
			{Kind: killcampaign.S3, Kills: 3},
		},
		Seed: seed(t),
		Dir:  t.TempDir(),
		// A smaller state and larger chunks than the bench's defaults keep the
		// shell kind (several processes per file) within the package's time budget.
		TPS:             100,
		InitialAccounts: 1000,
		MaxChunkSize:    8192,
		MaxWait:         2500 * time.Millisecond,
		CatchUpTimeout:  60 * time.Second,
		Logger:          slog.New(slog.NewTextHandler(tlog{t}, nil)),
	}
	t.Logf("seed %d (set LEDGERVAULT_KILL_SEED to repeat)", cfg.Seed)
	table, err := killcampaign.Run(ctx, cfg)
	if table != nil {
		var sb strings.Builder
		table.Write(&sb)
		t.Log("\n" + sb.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	if len(table.Results) != len(cfg.Runs) {
		t.Fatalf("%d results for %d storage kinds", len(table.Results), len(cfg.Runs))
	}
	for i, r := range table.Results {
		want := cfg.Runs[i]
		t.Run(string(r.Kind), func(t *testing.T) {
			if r.Kind != want.Kind || r.Kills != want.Kills || r.SIGKILLs+r.SIGTERMs != r.Kills {
				t.Errorf("ran %d kills (%d SIGKILL, %d SIGTERM) on %s, want %d on %s", r.Kills, r.SIGKILLs, r.SIGTERMs, r.Kind, want.Kills, want.Kind)
			}
			if r.OrphansSum != 0 {
				t.Errorf("%d orphan processes (at most %d after one kill)", r.OrphansSum, r.OrphansMax)
			}
			if r.PartialFiles != 0 {
				t.Errorf("%d visible partial files", r.PartialFiles)
			}
			if !r.VerifyPassed {
				t.Error("verify failed")
			}
			if !r.RootsEqual {
				t.Error("restored roots differ from the node's")
			}
			if r.BackupsCompleted < 1 {
				t.Error("no backup completed")
			}
			if r.UnexpectedExits != 0 {
				t.Errorf("%d unexpected exit statuses: %v", r.UnexpectedExits, r.ExitStatuses)
			}
			// The audit before gc saw the leftovers (and nothing missing, partial or
			// mismatched: those are problems).
			t.Logf("audit before gc: %d unreferenced folders and files; gc removed %d", r.AuditUnreferenced, r.LeftoversRemoved)
			for _, p := range r.Problems {
				t.Error(p)
			}
		})
	}
}

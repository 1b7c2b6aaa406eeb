package killcampaign

import (
	"strings"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/internal/faultinject"
)

const metricsPage = `# HELP ledgervault_coordinator_retries_total Retries by kind.
# TYPE ledgervault_coordinator_retries_total counter
ledgervault_coordinator_retries_total{kind="transaction"} 3
ledgervault_coordinator_retries_total{kind="metadata"} 4
ledgervault_coordinator_retries_total_other{kind="poll"} 99
# HELP ledgervault_coordinator_failures_total Failures by kind and class.
# TYPE ledgervault_coordinator_failures_total counter
ledgervault_coordinator_failures_total{class="transient",kind="transaction"} 5
ledgervault_coordinator_failures_total{class="permanent",kind="transaction"} 7
ledgervault_coordinator_failures_total{kind="poll",class="transient"} 1e+00
`

func TestParseCounters(t *testing.T) {
	fams, err := parseMetrics([]byte(metricsPage))
	if err != nil {
		t.Fatal(err)
	}
	r := counters(fams, "ledgervault_coordinator_retries_total", nil)
	if len(r) != 2 || r["transaction"] != 3 || r["metadata"] != 4 {
		t.Errorf("retries: %v", r)
	}
	f := counters(fams, "ledgervault_coordinator_failures_total", map[string]string{"class": "transient"})
	if len(f) != 2 || f["transaction"] != 5 || f["poll"] != 1 {
		t.Errorf("transient failures: %v", f)
	}
	if got := counters(fams, "absent_total", nil); len(got) != 0 {
		t.Errorf("absent metric: %v", got)
	}
	// A page that is not the exposition format is an error, not a count of zero.
	bad := metricsPage + "ledgervault_coordinator_failures_total{class=\"transient\",kind=\"metadata\"} nope\n"
	if _, err := parseMetrics([]byte(bad)); err == nil {
		t.Error("page with a sample that is not a number parses")
	}
}

func FuzzParseCounters(f *testing.F) {
	f.Add([]byte(metricsPage))
	f.Add([]byte(`x{kind="a",=} 1`))
	f.Fuzz(func(t *testing.T, page []byte) {
		fams, err := parseMetrics(page)
		if err != nil {
			return
		}
		// Every counter comes from one sample of the metric.
		if got := counters(fams, "x", map[string]string{"class": "transient"}); len(got) > len(fams["x"].GetMetric()) {
			t.Errorf("%d counters from %d samples: %v", len(got), len(fams["x"].GetMetric()), got)
		}
	})
}

// TestFaultTable checks that the table names every operation, kind, retry and
// check, and marks the failed ones.
func TestFaultTable(t *testing.T) {
	c := faultinject.Counts{
		Calls:        map[string]int{"create_for_write": 100, "save_metadata_line@lease_": 10},
		Injected:     map[faultinject.Kind]int{faultinject.Cut: 2, faultinject.CommitThenFail: 5},
		InjectedByOp: map[string]map[faultinject.Kind]int{"create_for_write": {faultinject.Cut: 2}, "save_metadata_line@lease_": {faultinject.CommitThenFail: 5}},
	}
	r := &FaultResult{Backend: Shell, Seed: 9, Rate: 0.05, LeaseRate: 0.5, FaultDuration: time.Minute, Counts: c,
		Retries: map[string]float64{"transaction": 3}, Transient: map[string]float64{"transaction": 4},
		FaultsOffVersion: 6000, CatchUp: 2 * time.Second, CoordinatorExit: "exit 0",
		Checks: Result{VerifyPassed: true, RootsEqual: false, NodeFinalVersion: 7999, FinalVersion: 7999, RestoredVersion: 7999}}
	r.Checks.problem("roots differ")
	var sb strings.Builder
	if err := r.Write(&sb); err != nil {
		t.Fatal(err)
	}
	out := sb.String()
	for _, want := range []string{"seed 9", "lease files: 50% commit_then_fail", "create_for_write", "save_metadata_line@lease_",
		"commit_then_fail", "transaction 3", "(total 3)", "backed up 2s later", "PROBLEM: roots differ"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	for check, want := range map[string]string{"every node version backed up": "pass", "restore roots equal the node's": "FAIL"} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			if rest, ok := strings.CutPrefix(l, check); ok {
				found = true
				if !strings.HasPrefix(strings.TrimSpace(rest), want) {
					t.Errorf("check %q: %q, want %s", check, rest, want)
				}
			}
		}
		if !found {
			t.Errorf("table lacks check %q:\n%s", check, out)
		}
	}
	if !r.Failed() {
		t.Error("a result with a problem is not Failed")
	}
}

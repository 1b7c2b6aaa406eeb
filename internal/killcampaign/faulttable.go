package killcampaign

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgervault/ledgervault/internal/faultinject"
)

// retryKinds are the kinds of work the coordinator counts retries of, in the
// order the table prints them (coordinator.Kind*).
var retryKinds = []string{"epoch_ending", "state_snapshot", "transaction", "poll", "metadata"}

// Write prints the fault campaign's table: storage operations and the faults
// injected into them by kind, the coordinator's retries, the catch-up, and the
// result of every check, then the problems found.
func (r *FaultResult) Write(w io.Writer) error {
	lease := ""
	if r.LeaseRate > 0 {
		lease = fmt.Sprintf(" (lease files: %.0f%% commit_then_fail)", r.LeaseRate*100)
	}
	fmt.Fprintf(w, "fault campaign: backend %s, seed %d, rate %.1f%%%s, faults on for %v, total %v\n",
		r.Backend, r.Seed, r.Rate*100, lease, r.FaultDuration, r.Duration.Round(time.Second))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "operation\tcalls\tfaults\t")
	for _, k := range faultinject.Kinds {
		fmt.Fprintf(tw, "%s\t", k)
	}
	fmt.Fprintln(tw)
	for _, op := range r.Counts.Ops() {
		by := r.Counts.InjectedByOp[op]
		n := 0
		for _, v := range by {
			n += v
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t", op, r.Counts.Calls[op], n)
		for _, k := range faultinject.Kinds {
			fmt.Fprintf(tw, "%d\t", by[k])
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "total\t%d\t%d\t", r.Counts.TotalCalls(), r.Counts.TotalInjected())
	for _, k := range faultinject.Kinds {
		fmt.Fprintf(tw, "%d\t", r.Counts.Injected[k])
	}
	fmt.Fprintln(tw)
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "coordinator retries_total by kind: %s\n", kindValues(r.Retries))
	fmt.Fprintf(w, "coordinator failures_total{class=transient} by kind: %s\n", kindValues(r.Transient))
	if r.CatchUp > 0 {
		fmt.Fprintf(w, "catch-up: node at version %d when the faults stopped, backed up %v later\n", r.FaultsOffVersion, r.CatchUp.Round(10*time.Millisecond))
	} else {
		fmt.Fprintf(w, "catch-up: did not happen\n")
	}
	c := &r.Checks
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "check\tresult\t")
	check := func(name string, ok bool, detail string, args ...any) {
		res := "FAIL"
		if ok {
			res = "pass"
		}
		fmt.Fprintf(tw, "%s\t%s %s\t\n", name, res, fmt.Sprintf(detail, args...))
	}
	check("coordinator ran through the faults", !r.ExitedEarly, "")
	check("SIGTERM after catch-up: exit 0", !r.ExitedEarly && r.CoordinatorExit == "exit 0", "(%s)", r.CoordinatorExit)
	check("no orphan processes", c.OrphansSum == 0, "(%d left)", c.OrphansSum)
	check("no panic in logs", r.PanicLines == 0, "(%d lines)", r.PanicLines)
	check("no visible partial file", c.PartialFiles == 0, "(%d)", c.PartialFiles)
	check("gc --grace 0s: no temp files or unreferenced folders left", c.UnreferencedAfter == 0,
		"(before gc: %d temp files/open uploads; gc removed %d; left %d)", r.TempFilesBeforeGC, c.LeftoversRemoved, c.UnreferencedAfter)
	check("every node version backed up", c.FinalVersion == c.NodeFinalVersion && c.FinalVersion > 0,
		"(transactions to %d of %d)", c.FinalVersion, c.NodeFinalVersion)
	check("verify", c.VerifyPassed, "(%d backups)", c.BackupsCompleted)
	check("restore roots equal the node's", c.RootsEqual, "(at version %d; backed up to %d)", c.RestoredVersion, c.FinalVersion)
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, p := range c.Problems {
		fmt.Fprintf(w, "  PROBLEM: %s\n", p)
	}
	return nil
}

// kindValues prints counters by kind: the known kinds in order, then any other,
// then the total.
func kindValues(m map[string]float64) string {
	if m == nil {
		return "not read"
	}
	var parts []string
	total := 0.0
	seen := map[string]bool{}
	for _, k := range retryKinds {
		parts = append(parts, fmt.Sprintf("%s %g", k, m[k]))
		total += m[k]
		seen[k] = true
	}
	var rest []string
	for k := range m {
		if !seen[k] {
			rest = append(rest, k)
		}
	}
	sort.Strings(rest)
	for _, k := range rest {
		parts = append(parts, fmt.Sprintf("%s %g", k, m[k]))
		total += m[k]
	}
	return fmt.Sprintf("%s (total %g)", strings.Join(parts, ", "), total)
}

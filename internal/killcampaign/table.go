package killcampaign

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"
)

// watchCoordinator keeps the coordinator log lines the campaign counts: completed
// backups, which carry the chunks a resumed attempt reused
// (coordinator.go's "backup completed" line).
func watchCoordinator(line []byte) bool {
	return logField(line, "msg") == "backup completed"
}

// collect adds the reused chunks a finished coordinator run logged.
func (k *kindRun) collect(c *child) {
	for _, l := range c.kept() {
		k.res.ChunksReused += reusedChunks([]byte(l))
	}
}

// reusedChunks returns the chunks_reused count of a log line (0 if absent).
func reusedChunks(line []byte) int {
	var m struct {
		ChunksReused int `json:"chunks_reused"`
	}
	if json.Unmarshal(line, &m) != nil {
		return 0
	}
	return max(m.ChunksReused, 0)
}

// Table is the campaign's result: one row per storage kind.
type Table struct {
	// Seed is the seed of the random waits and signals (rerun with it to repeat them).
	Seed    uint64
	Results []Result
}

// Failed reports whether any kind broke an invariant or failed a check.
func (t *Table) Failed() bool {
	for i := range t.Results {
		if len(t.Results[i].Problems) > 0 {
			return true
		}
	}
	return false
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// Write prints the table, then every problem found.
func (t *Table) Write(w io.Writer) error {
	fmt.Fprintf(w, "kill campaign, seed %d\n", t.Seed)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "storage\tkills (KILL/TERM)\trestarts\tbackups\tverify\trestore roots equal\torphans sum/max\tpartial files\tgc removed\tchunks reused\tduration\t")
	for _, r := range t.Results {
		verify := "FAIL"
		if r.VerifyPassed {
			verify = "pass"
		}
		fmt.Fprintf(tw, "%s\t%d (%d/%d)\t%d\t%d\t%s\t%s @%d\t%d/%d\t%d\t%d\t%d\t%s\t\n",
			r.Kind, r.Kills, r.SIGKILLs, r.SIGTERMs, r.Restarts, r.BackupsCompleted, verify,
			yesNo(r.RootsEqual), r.RestoredVersion, r.OrphansSum, r.OrphansMax, r.PartialFiles,
			r.LeftoversRemoved, r.ChunksReused, r.Duration.Round(time.Second))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range t.Results {
		fmt.Fprintf(w, "%s: exit statuses after signals %v; node final version %d; temp files seen at most %d; unexpected exits %d\n",
			r.Kind, r.ExitStatuses, r.NodeFinalVersion, r.TempFilesSeen, r.UnexpectedExits)
		if r.UncheckedFiles > 0 {
			fmt.Fprintf(w, "  %s: up to %d files of a kind the check does not know (not decoded), e.g. %v\n", r.Kind, r.UncheckedFiles, r.UncheckedExamples)
		}
		for _, p := range r.Problems {
			fmt.Fprintf(w, "  PROBLEM %s: %s\n", r.Kind, p)
		}
	}
	return nil
}

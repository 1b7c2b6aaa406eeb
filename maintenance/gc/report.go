package gc

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/ledgervault/ledgervault/internal/bytesize"
)

// WriteTable prints the report for an operator: one row per unreferenced folder,
// then the totals.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if len(r.Items) > 0 {
		fmt.Fprintln(tw, "BACKUP FOLDER\tSIZE\tAGE\tACTION")
		for _, it := range r.Items {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", it.Backup, bytesize.Format(it.Size), it.Age.Round(time.Second), it.Action)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		fmt.Fprintln(w)
	}
	verb := "removed"
	if r.DryRun {
		verb = "would remove (dry run)"
	}
	fmt.Fprintf(w, "%d metadata files; %d backup folders, %d referenced\n", r.MetadataFiles, r.Folders, r.Referenced)
	fmt.Fprintf(w, "%s: %d unreferenced backup folders, %s\n", verb, r.BackupsRemoved, bytesize.Format(r.BytesRemoved))
	fmt.Fprintf(w, "kept within the grace period of %s: %d folders, %s\n", r.Grace, r.KeptYoung, bytesize.Format(r.KeptYoungBytes))
	if r.KeptReferenced > 0 {
		fmt.Fprintf(w, "kept because metadata referencing them appeared during the run: %d folders\n", r.KeptReferenced)
	}
	if r.DryRun {
		_, err := fmt.Fprintln(w, "incomplete uploads: not checked in a dry run")
		return err
	}
	_, err := fmt.Fprintf(w, "incomplete uploads and temporary files aborted: %d\n", r.StaleUploadsAborted)
	return err
}

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

package aptosverify

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

// Status is what a row establishes about its backup.
type Status string

// The statuses of a row (see the package documentation).
const (
	StatusVerified   Status = "verified"
	StatusFailed     Status = "failed"
	StatusIncomplete Status = "incomplete"
	StatusNotChecked Status = "not_checked"
	StatusSkipped    Status = "skipped"
)

// Row is the verdict on one backup (or one gap), in the shape of restore.Row with the
// status spelled out and the missing files listed.
type Row struct {
	Type     string             `json:"type"`
	Range    string             `json:"range"`
	Manifest storage.FileHandle `json:"manifest,omitempty"`
	Files    int                `json:"files"`
	Bytes    int64              `json:"bytes"`
	// OK is true for verified and skipped rows.
	OK     bool   `json:"ok"`
	Status Status `json:"status"`
	// Error says what failed or was not checked.
	Error string `json:"error,omitempty"`
	// Missing lists the files the backup references that are absent.
	Missing []storage.FileHandle `json:"missing,omitempty"`
	// Detail says what was verified (counts, the proven root).
	Detail string `json:"detail,omitempty"`
}

// Report is the result of Verify.
type Report struct {
	Format string `json:"format"`
	// Generation is the ledger infos' generation ("aptos", or "diem-1.x", not checked).
	Generation string `json:"generation,omitempty"`
	// Domain is the hash domain the trusted waypoint selected (such as "DIEM::").
	Domain  string `json:"domain,omitempty"`
	Trusted string `json:"trusted_waypoint"`
	Rows    []Row  `json:"rows"`
	// OK is true when every row is verified (or skipped).
	OK    bool  `json:"ok"`
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// EpochEndings, Signatures and SignerKeys count the verified chain: endings accepted,
	// aggregate BLS signatures verified, validator keys aggregated into them.
	EpochEndings int `json:"epoch_endings"`
	Signatures   int `json:"signatures"`
	SignerKeys   int `json:"signer_keys"`
	// StateRootProofs counts state snapshot root proofs verified.
	StateRootProofs int `json:"state_root_proofs"`
	// StateRecords counts state snapshot records rebuilt into a verified Jellyfish tree.
	StateRecords uint64 `json:"state_records"`
	// Transactions counts transactions verified.
	Transactions uint64 `json:"transactions"`
	// MissingFiles counts the files listed as missing.
	MissingFiles        int           `json:"missing_files"`
	ChainElapsed        time.Duration `json:"chain_elapsed_ns"`
	TransactionsElapsed time.Duration `json:"transactions_elapsed_ns"`
	Elapsed             time.Duration `json:"elapsed_ns"`
}

func (r *Report) finish(elapsed time.Duration) {
	r.OK = true
	for _, row := range r.Rows {
		r.Files += row.Files
		r.Bytes += row.Bytes
		r.MissingFiles += len(row.Missing)
		r.OK = r.OK && row.OK
	}
	r.Elapsed = elapsed
}

// Count returns the number of rows of status s.
func (r *Report) Count(s Status) int {
	n := 0
	for _, row := range r.Rows {
		if row.Status == s {
			n++
		}
	}
	return n
}

// WriteTable prints the report as restore.Report does (one row per backup and a
// summary line), with the status in the result column.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tRANGE\tFILES\tBYTES\tRESULT")
	for _, row := range r.Rows {
		res := string(row.Status)
		switch {
		case row.Status == StatusFailed:
			res = "FAILED: " + row.Error
		case row.Error != "":
			res += ": " + row.Error
		case row.Detail != "":
			res += ": " + row.Detail
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", row.Type, row.Range, row.Files, row.Bytes, res)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var verdict string
	switch {
	case r.OK:
		verdict = "all backups verified"
	default:
		var parts []string
		for _, s := range []Status{StatusFailed, StatusIncomplete, StatusNotChecked} {
			if n := r.Count(s); n > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", n, s))
			}
		}
		verdict = fmt.Sprintf("NOT fully verified (%s of %d rows; %d files missing)", strings.Join(parts, ", "), len(r.Rows), r.MissingFiles)
	}
	_, err := fmt.Fprintf(w, "%s: %d epoch endings (%d signatures), %d state root proofs, %d state records, %d transactions verified from waypoint %s; %d files, %d bytes in %s\n",
		verdict, r.EpochEndings, r.Signatures, r.StateRootProofs, r.StateRecords, r.Transactions, r.Trusted, r.Files, r.Bytes, r.Elapsed.Round(time.Millisecond))
	return err
}

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error { return json.NewEncoder(w).Encode(r) }

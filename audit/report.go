// Package audit checks a backup store end to end without writing to it: metadata,
// manifests, every file they reference, and every file and folder in storage. It
// reports what is wrong as findings of four kinds (see Kind). The report model is
// shared by every format; each format has a walker (Walker); the one for Aptos/Diem
// backup-cli stores is BackupCLI.
package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"
	"time"

	"github.com/ledgervault/ledgervault/internal/bytesize"
	"github.com/ledgervault/ledgervault/storage"
)

// Kind is what is wrong with a file.
type Kind string

// The kinds of findings.
const (
	// Missing: a file that metadata or a manifest references is absent.
	Missing Kind = "missing"
	// Unreferenced: a file or folder that no metadata references (the detail gives
	// its age).
	Unreferenced Kind = "unreferenced"
	// Partial: a file that does not decode completely (a truncated or corrupt gzip
	// stream, records whose framing does not consume the file exactly, an empty or
	// undecodable metadata file or manifest).
	Partial Kind = "partial"
	// Mismatch: what a file holds disagrees with its manifest (record counts against
	// the ranges, state keys out of order or not the manifest's first/last key, a
	// manifest whose ranges do not tile its metadata range).
	Mismatch Kind = "mismatch"
)

// Finding is one thing wrong with one file or folder.
type Finding struct {
	Kind Kind `json:"kind"`
	// Handle is the file (or, for a folder, the folder) concerned.
	Handle string `json:"handle"`
	// Backup is the backup folder it belongs to ("" for metadata files).
	Backup string `json:"backup"`
	// Detail says what is wrong.
	Detail string `json:"detail"`
}

// Report is the result of an audit.
type Report struct {
	// Format is the store's format ("backupcli" or "ledgervault").
	Format string `json:"format"`
	// MetadataFiles counts the metadata files listed.
	MetadataFiles int `json:"metadata_files"`
	// Backups counts the distinct backups metadata describes.
	Backups int `json:"backups"`
	// Files counts the referenced files read (manifests, chunks, proofs).
	Files int `json:"files"`
	// Bytes counts the bytes read from storage for them, as the store returned them
	// (through a command adapter: after its own decompression).
	Bytes int64 `json:"bytes"`
	// Findings are sorted by handle, then kind.
	Findings []Finding `json:"findings"`

	// Notes say what the audit could not check (for example, a store that cannot
	// list its folders leaves unreferenced files unchecked). They are printed in the
	// table and on stderr by the command, not in the JSON, whose shape is fixed.
	Notes []string `json:"-"`
	// UnreferencedChecked says whether storage could be listed for unreferenced
	// folders and files.
	UnreferencedChecked bool `json:"-"`
	// Ages holds the age of each unreferenced handle, for gc.
	Ages map[string]UnreferencedItem `json:"-"`
}

// UnreferencedItem is an unreferenced folder or file with what gc needs to know.
type UnreferencedItem struct {
	// Folder is set for a whole unreferenced folder; File for a single file in a
	// referenced folder.
	Folder storage.BackupHandle
	File   storage.FileHandle
	// ModTime is the newest modification time known; Size the bytes it holds.
	ModTime time.Time
	Size    int64
}

// Options tune an audit; zero fields take the defaults.
type Options struct {
	// Concurrency bounds the files read at once (default 8).
	Concurrency int
	// Now is the clock for ages (default time.Now).
	Now func() time.Time
	// Progress, when set, is called after each file is read with the counts so far.
	Progress func(filesDone, filesTotal int, bytes int64)
	// MaxDecompressed caps what one gzip-wrapped file may decompress to (default
	// backupcli.DefaultMaxDecompressed); MaxRecordSize caps one chunk record (default
	// backupcli.DefaultMaxRecordSize). Memory is bounded by Concurrency times
	// MaxRecordSize plus small buffers.
	MaxDecompressed int64
	MaxRecordSize   int
}

// Walker audits a store of one format.
type Walker func(ctx context.Context, st storage.Store, o Options) (*Report, error)

// Sort orders the findings by handle, then kind.
func (r *Report) Sort() {
	sort.SliceStable(r.Findings, func(i, j int) bool {
		a, b := r.Findings[i], r.Findings[j]
		if a.Handle != b.Handle {
			return a.Handle < b.Handle
		}
		return a.Kind < b.Kind
	})
}

// Count returns how many findings are of kind k.
func (r *Report) Count(k Kind) int {
	n := 0
	for _, f := range r.Findings {
		if f.Kind == k {
			n++
		}
	}
	return n
}

// WriteJSON prints the report as one indented JSON object: format, metadata_files,
// backups, files, bytes, findings [{kind, handle, backup, detail}].
func (r *Report) WriteJSON(w io.Writer) error {
	out := *r
	if out.Findings == nil {
		out.Findings = []Finding{}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

// WriteTable prints the findings as a table, then the totals and notes.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	if len(r.Findings) > 0 {
		fmt.Fprintln(tw, "KIND\tHANDLE\tBACKUP\tDETAIL")
		for _, f := range r.Findings {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Kind, f.Handle, f.Backup, f.Detail)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "%s store: %d metadata files, %d backups, %d files read (%s); %d findings (%d missing, %d unreferenced, %d partial, %d mismatch)\n",
		r.Format, r.MetadataFiles, r.Backups, r.Files, bytesize.Format(r.Bytes), len(r.Findings),
		r.Count(Missing), r.Count(Unreferenced), r.Count(Partial), r.Count(Mismatch))
	for _, n := range r.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

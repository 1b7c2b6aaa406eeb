// Package sweep removes from a backup-cli store what an audit calls unreferenced,
// older than a grace period: backup folders that no metadata line reaches, and files
// no manifest names inside referenced folders (where the store can delete single
// files). It never touches a file that metadata or a manifest references, even a
// partial one: those it reports for the operator to decide.
//
// Safety, as ledgervault's own gc: metadata is read (and every metadata file must
// decode) before anything is planned, and read again before each batch of
// deletions, so that a backup whose metadata a writer commits meanwhile is kept; an
// undecodable metadata file stops the sweep before it deletes anything more.
package sweep

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/bytesize"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

// DefaultBatchSize is how many folders are deleted between metadata re-reads.
const DefaultBatchSize = 16

// Options tune a sweep; zero fields take the defaults.
type Options struct {
	// Grace leaves alone folders modified within it (a backup may be writing them);
	// zero means no grace.
	Grace time.Duration
	// DryRun plans and reports, deleting nothing.
	DryRun bool
	// BatchSize is how many folders are deleted between metadata re-reads.
	BatchSize int
	// Concurrency bounds the files the audit reads at once.
	Concurrency int
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Logger logs each deletion (default: discard).
	Logger *slog.Logger
}

// Item is a folder or file the sweep considered.
type Item struct {
	Handle  string    `json:"handle"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mod_time"`
	// Reason says why it is kept (empty for removed items).
	Reason string `json:"reason,omitempty"`
}

// Result is what a sweep did (or, with DryRun, would do).
type Result struct {
	Format string `json:"format"`
	DryRun bool   `json:"dry_run"`
	// Removed are the folders and files deleted (with DryRun: that would be).
	Removed []Item `json:"removed"`
	// Kept are unreferenced items left in place, with the reason.
	Kept []Item `json:"kept"`
	// Referenced are the audit's findings about referenced files (missing, partial,
	// mismatch): never touched, reported for the operator.
	Referenced []audit.Finding `json:"referenced_findings"`
	// BackupsRemoved, FilesRemoved and BytesRemoved total Removed: whole folders,
	// single files in referenced folders, and their bytes.
	BackupsRemoved int   `json:"backups_removed"`
	FilesRemoved   int   `json:"files_removed"`
	BytesRemoved   int64 `json:"bytes_removed"`
}

// ErrUndecodableMetadata stops a sweep: with a metadata file that does not decode,
// what it references is unknown, so nothing may be deleted.
var ErrUndecodableMetadata = errors.New("a metadata file does not decode; nothing deleted")

// BackupCLI sweeps a backup-cli store. It returns the result so far also with an
// error.
func BackupCLI(ctx context.Context, st storage.Store, o Options) (*Result, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	res := &Result{Format: string(backupcli.FormatBackupCLI), DryRun: o.DryRun, Removed: []Item{}, Kept: []Item{}, Referenced: []audit.Finding{}}

	// Metadata first: every file must decode.
	if _, err := referenced(ctx, st, o.Concurrency); err != nil {
		return res, err
	}
	deleter := fileDeleter(st)
	rep, err := audit.BackupCLI(ctx, st, audit.Options{Concurrency: o.Concurrency, Now: o.Now})
	if err != nil {
		return res, err
	}
	if !rep.UnreferencedChecked {
		return res, fmt.Errorf("sweep: %s; configure list_backups (and delete_backup) to collect garbage", strings.Join(rep.Notes, "; "))
	}
	cutoff := o.Now().Add(-o.Grace)
	var candidates []Item
	for _, f := range rep.Findings {
		if f.Kind != audit.Unreferenced {
			res.Referenced = append(res.Referenced, f)
			continue
		}
		it := rep.Ages[f.Handle]
		item := Item{Handle: f.Handle, Size: it.Size, ModTime: it.ModTime}
		switch {
		case it.Folder == "" && deleter == nil:
			item.Reason = "a file inside a folder that metadata references, and the store cannot delete single files (configure delete_file)"
			res.Kept = append(res.Kept, item)
		case it.ModTime.After(cutoff):
			item.Reason = fmt.Sprintf("modified within the grace period (%s)", o.Grace)
			res.Kept = append(res.Kept, item)
		default:
			candidates = append(candidates, item)
		}
	}
	sort.Slice(candidates, func(i, j int) bool { return candidates[i].Handle < candidates[j].Handle })

	for start := 0; start < len(candidates); start += o.BatchSize {
		batch := candidates[start:min(start+o.BatchSize, len(candidates))]
		// Read metadata again: a writer may have committed a backup meanwhile.
		r, err := referenced(ctx, st, o.Concurrency)
		if err != nil {
			return res, err
		}
		for _, item := range batch {
			isFile := rep.Ages[item.Handle].Folder == ""
			folder := backupcli.FolderOf(storage.FileHandle(item.Handle))
			switch {
			case !isFile && r.folders[storage.BackupHandle(item.Handle)], isFile && r.files[storage.FileHandle(item.Handle)]:
				item.Reason = "metadata written meanwhile references it"
				res.Kept = append(res.Kept, item)
				continue
			case isFile && r.uncertain[folder]:
				item.Reason = "its folder's manifest is missing or does not decode: which files it references is unknown"
				res.Kept = append(res.Kept, item)
				continue
			}
			if !o.DryRun {
				var err error
				if isFile {
					err = deleter.DeleteFile(ctx, storage.FileHandle(item.Handle))
				} else {
					err = st.DeleteBackup(ctx, storage.BackupHandle(item.Handle))
				}
				if err != nil {
					if errors.Is(err, storage.ErrNotFound) {
						continue // gone meanwhile
					}
					return res, fmt.Errorf("delete %s: %w", item.Handle, err)
				}
				log.Info("removed unreferenced item", "handle", item.Handle, "size", item.Size)
			}
			res.Removed = append(res.Removed, item)
			if isFile {
				res.FilesRemoved++
			} else {
				res.BackupsRemoved++
			}
			res.BytesRemoved += item.Size
		}
	}
	return res, nil
}

// refs is what metadata references.
type refs struct {
	folders map[storage.BackupHandle]bool
	files   map[storage.FileHandle]bool
	// uncertain are folders holding a manifest that is missing or does not decode:
	// which of their files it references is unknown.
	uncertain map[storage.BackupHandle]bool
}

// referenced reads every metadata file and every manifest it names and returns what
// they reference. A metadata file that does not decode stops it
// (ErrUndecodableMetadata); an empty one references nothing, as backup-cli reads it.
func referenced(ctx context.Context, st storage.Store, conc int) (*refs, error) {
	v, err := backupcli.Load(ctx, st, backupcli.LoadOptions{Concurrency: conc})
	if err != nil {
		return nil, err
	}
	for _, f := range v.Files {
		if f.Err != nil && !errors.Is(f.Err, storage.ErrNotFound) {
			return nil, fmt.Errorf("%w: %v", ErrUndecodableMetadata, f.Err)
		}
	}
	r := &refs{folders: map[storage.BackupHandle]bool{}, files: map[storage.FileHandle]bool{}, uncertain: map[storage.BackupHandle]bool{}}
	for _, m := range v.Manifests {
		r.folders[backupcli.FolderOf(m.Handle)] = true
		r.files[m.Handle] = true
		if m.Manifest == nil {
			r.uncertain[backupcli.FolderOf(m.Handle)] = true
			continue
		}
		// Files of a manifest live in its folder in backup-cli, but a manifest may name
		// others: protect every folder it names.
		for _, h := range m.Manifest.Files() {
			r.folders[backupcli.FolderOf(h)] = true
			r.files[h] = true
		}
	}
	return r, nil
}

// FileDeleter is a store that can delete one file of a backup folder (the command
// adapter with delete_file).
type FileDeleter interface {
	DeleteFile(ctx context.Context, h storage.FileHandle) error
}

// fileDeleter returns st's way of deleting single files, or nil: the store's own
// DeleteFile, or for a local store a removal under its root.
func fileDeleter(st storage.Store) FileDeleter {
	if fd, ok := st.(FileDeleter); ok {
		return fd
	}
	if ls, ok := st.(*local.Store); ok {
		return localDeleter{root: ls.Root()}
	}
	return nil
}

type localDeleter struct{ root string }

func (l localDeleter) DeleteFile(ctx context.Context, h storage.FileHandle) error {
	segs := strings.Split(string(h), "/")
	if err := storage.ValidateHandle(string(h)); err != nil || len(segs) != 2 || segs[0] == "metadata" ||
		strings.HasPrefix(segs[0], ".") || strings.HasPrefix(segs[1], ".") {
		return fmt.Errorf("delete file %q: %w", h, storage.ErrInvalidName)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := filepath.Join(l.root, segs[0])
	if err := os.Remove(filepath.Join(dir, segs[1])); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("delete file %s: %w", h, storage.ErrNotFound)
		}
		return fmt.Errorf("delete file %s: %w", h, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("delete file %s: sync folder: %w", h, err)
	}
	defer d.Close()
	return d.Sync()
}

// WriteTable prints the plan or what was removed, then what was kept and the
// referenced findings.
func (r *Result) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	verb := "removed"
	if r.DryRun {
		verb = "would remove"
	}
	fmt.Fprintln(tw, "ACTION\tHANDLE\tSIZE\tMODIFIED\tREASON")
	for _, it := range r.Removed {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t\n", verb, it.Handle, bytesize.Format(it.Size), it.ModTime.UTC().Format(time.RFC3339))
	}
	for _, it := range r.Kept {
		fmt.Fprintf(tw, "kept\t%s\t%s\t%s\t%s\n", it.Handle, bytesize.Format(it.Size), it.ModTime.UTC().Format(time.RFC3339), it.Reason)
	}
	for _, f := range r.Referenced {
		fmt.Fprintf(tw, "not touched (%s)\t%s\t\t\t%s\n", f.Kind, f.Handle, f.Detail)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	_, err := fmt.Fprintf(w, "%s %d unreferenced folders and %d files (%s); kept %d; %d findings about referenced files left for the operator\n",
		verb, r.BackupsRemoved, r.FilesRemoved, bytesize.Format(r.BytesRemoved), len(r.Kept), len(r.Referenced))
	return err
}

// WriteJSON prints the result as one indented JSON object.
func (r *Result) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// Package gc removes what interrupted backups leave in storage: backup folders that
// no metadata file references and that nobody has written for a grace period, and
// incomplete uploads (temporary files, multipart and block uploads) older than it.
//
// GC never deletes on partial knowledge: it reads every metadata file first and
// refuses to delete anything if one fails to read or decode. Right before each batch
// of deletions it lists metadata again and keeps any folder a new file references,
// which closes the race with a coordinator that commits a backup's metadata while GC
// runs. The grace period covers the other race: a backup still being written has
// files younger than the grace period (see docs/maintenance.md).
package gc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

// DefaultGrace is the grace period used when Options.Grace is zero.
const DefaultGrace = time.Hour

// DefaultBatchSize is how many folders are deleted per fresh look at metadata.
const DefaultBatchSize = 16

// Options configure a GC run.
type Options struct {
	// Grace is how long a folder must have gone unwritten, and an incomplete upload
	// must have existed, before it is removed. Zero means DefaultGrace unless
	// NoGrace is set.
	Grace time.Duration
	// NoGrace makes a zero Grace mean no grace period at all: every unreferenced
	// folder and incomplete upload is removed, however young. Only safe when no
	// backup can be running against the store.
	NoGrace bool
	// DryRun reports what would be removed and removes nothing. Incomplete uploads
	// are not counted in a dry run: the storage contract can only abort them.
	DryRun bool
	// AllowNoMetadata lets GC delete folders when storage holds no metadata file at
	// all. Without it such a run refuses: an empty metadata listing more often means
	// a wrong prefix or path than a store whose every backup is garbage.
	AllowNoMetadata bool
	// BatchSize is how many folders are deleted between fresh metadata listings.
	// Zero means DefaultBatchSize.
	BatchSize int
	// Logger receives one line per removed folder; nil discards.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now. Folder ages are Now minus
	// the folder's ModTime. (The incomplete-upload sweep uses the store's clock.)
	Now func() time.Time
}

// ErrNoMetadata is the refusal of a run without Options.AllowNoMetadata on a store
// that holds old backup folders and no metadata file at all.
var ErrNoMetadata = errors.New("no metadata file")

// Action says what GC did with a backup folder.
type Action string

// Actions reported for folders.
const (
	// Removed: the folder was unreferenced and old, and was deleted.
	Removed Action = "removed"
	// WouldRemove: a dry run found the folder unreferenced and old.
	WouldRemove Action = "would_remove"
	// KeptYoung: unreferenced but written within the grace period (a backup may be
	// in progress), or of unknown age.
	KeptYoung Action = "kept_young"
	// KeptReferenced: unreferenced when GC started, referenced by metadata that
	// appeared before its deletion (a backup that just completed).
	KeptReferenced Action = "kept_referenced"
	// AlreadyGone: the folder vanished before GC deleted it (another GC).
	AlreadyGone Action = "already_gone"
	// NotReached: GC stopped on an error before deciding about the folder.
	NotReached Action = "not_reached"
)

// Item is one unreferenced backup folder and what happened to it.
type Item struct {
	Backup     storage.BackupHandle `json:"backup"`
	Size       int64                `json:"size"`
	ModTime    time.Time            `json:"mod_time"`
	Age        time.Duration        `json:"-"`
	AgeSeconds int64                `json:"age_seconds"`
	Action     Action               `json:"action"`
}

// Report is what a GC run found and did.
type Report struct {
	DryRun       bool          `json:"dry_run"`
	Grace        time.Duration `json:"-"`
	GraceSeconds int64         `json:"grace_seconds"`
	// MetadataFiles is how many metadata files were read.
	MetadataFiles int `json:"metadata_files"`
	// Folders is how many backup folders storage listed; Referenced how many of
	// them metadata references.
	Folders    int `json:"folders"`
	Referenced int `json:"referenced"`
	// BackupsRemoved and BytesRemoved count deleted folders (in a dry run: the ones
	// that would be deleted).
	BackupsRemoved int   `json:"backups_removed"`
	BytesRemoved   int64 `json:"bytes_removed"`
	// StaleUploadsAborted counts incomplete uploads and temporary files removed
	// (always 0 in a dry run).
	StaleUploadsAborted int `json:"stale_uploads_aborted"`
	// KeptYoung and KeptYoungBytes count unreferenced folders within the grace
	// period; KeptReferenced those referenced by metadata that appeared during the run.
	KeptYoung      int   `json:"kept_young"`
	KeptYoungBytes int64 `json:"kept_young_bytes"`
	KeptReferenced int   `json:"kept_referenced"`
	// Items lists every unreferenced folder, sorted by handle.
	Items []Item `json:"items"`
}

// Run collects garbage in st. On an error it returns the report of what was done so
// far together with the error.
func Run(ctx context.Context, st storage.Store, o Options) (*Report, error) {
	if o.Grace < 0 {
		return nil, fmt.Errorf("gc: negative grace period %v", o.Grace)
	}
	if o.Grace == 0 && !o.NoGrace {
		o.Grace = DefaultGrace
	}
	if o.BatchSize <= 0 {
		o.BatchSize = DefaultBatchSize
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{DryRun: o.DryRun, Grace: o.Grace, GraceSeconds: int64(o.Grace / time.Second), Items: []Item{}}

	refs := newReferences()
	n, err := refs.refresh(ctx, st)
	rep.MetadataFiles += n
	if err != nil {
		return rep, fmt.Errorf("gc: %w; nothing deleted", err)
	}
	infos, err := st.ListBackups(ctx)
	if err != nil {
		return rep, fmt.Errorf("gc: list backups: %w", err)
	}
	rep.Folders = len(infos)
	now := o.Now()
	sort.Slice(infos, func(i, j int) bool { return infos[i].Handle < infos[j].Handle })
	var candidates []int // indexes into rep.Items
	for _, in := range infos {
		if refs.folders[in.Handle] {
			rep.Referenced++
			continue
		}
		age := now.Sub(in.ModTime)
		it := Item{Backup: in.Handle, Size: in.Size, ModTime: in.ModTime.UTC(), Age: age, AgeSeconds: int64(age / time.Second)}
		// A folder whose age the backend does not know is never taken for old.
		if age < o.Grace || in.ModTime.IsZero() {
			it.Action = KeptYoung
			rep.KeptYoung++
			rep.KeptYoungBytes += in.Size
		} else {
			it.Action = NotReached
			candidates = append(candidates, len(rep.Items))
		}
		rep.Items = append(rep.Items, it)
	}
	if len(candidates) > 0 && rep.MetadataFiles == 0 && !o.AllowNoMetadata {
		return rep, fmt.Errorf("gc: storage lists %d old backup folders but %w; refusing to delete (wrong storage path or prefix?)", len(candidates), ErrNoMetadata)
	}

	for start := 0; start < len(candidates); start += o.BatchSize {
		batch := candidates[start:min(start+o.BatchSize, len(candidates))]
		// A coordinator may have committed metadata since the first read.
		n, err := refs.refresh(ctx, st)
		rep.MetadataFiles += n
		if err != nil {
			return rep, fmt.Errorf("gc: %w; stopped deleting", err)
		}
		for _, i := range batch {
			it := &rep.Items[i]
			if refs.folders[it.Backup] {
				it.Action = KeptReferenced
				rep.KeptReferenced++
				rep.Referenced++
				continue
			}
			if o.DryRun {
				it.Action = WouldRemove
				rep.BackupsRemoved++
				rep.BytesRemoved += it.Size
				continue
			}
			err := st.DeleteBackup(ctx, it.Backup)
			if errors.Is(err, storage.ErrNotFound) {
				it.Action = AlreadyGone
				continue
			}
			if err != nil {
				return rep, fmt.Errorf("gc: delete backup folder %s: %w", it.Backup, err)
			}
			it.Action = Removed
			rep.BackupsRemoved++
			rep.BytesRemoved += it.Size
			log.Info("gc removed unreferenced backup folder", "backup", it.Backup, "bytes", it.Size, "age", it.Age.Round(time.Second).String())
		}
	}
	if o.DryRun {
		return rep, nil
	}
	aborted, err := st.AbortStaleUploads(ctx, o.Grace)
	rep.StaleUploadsAborted = aborted
	if err != nil {
		return rep, fmt.Errorf("gc: abort stale uploads: %w", err)
	}
	if aborted > 0 {
		log.Info("gc aborted stale uploads", "count", aborted)
	}
	return rep, nil
}

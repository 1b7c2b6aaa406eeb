package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ledgervault/ledgervault/internal/bytesize"
	"github.com/ledgervault/ledgervault/storage"
)

// The plumbing every walker shares: findings and counts collected from concurrent
// checks, the bounded worker loop with progress, and the last phase (what storage
// holds that no metadata reaches).

// tally collects a report's findings and counts from concurrent checks.
type tally struct {
	rep      *Report
	mu       sync.Mutex // guards rep.Findings, rep.Files, rep.Bytes
	progress func(filesDone, filesTotal int, bytes int64)
	done     atomic.Int64
	bytes    atomic.Int64
	total    atomic.Int64
}

func newTally(format string, progress func(int, int, int64)) *tally {
	return &tally{rep: &Report{Format: format, Ages: map[string]UnreferencedItem{}}, progress: progress}
}

// add records a finding.
func (t *tally) add(k Kind, h string, b storage.BackupHandle, format string, args ...any) {
	t.mu.Lock()
	t.rep.Findings = append(t.rep.Findings, Finding{Kind: k, Handle: h, Backup: string(b), Detail: fmt.Sprintf(format, args...)})
	t.mu.Unlock()
}

// read records a file read: n bytes came from the store; counted says whether it
// counts in the report's Files and Bytes (a file that was not there does not).
func (t *tally) read(n int64, counted bool) {
	if counted {
		t.mu.Lock()
		t.rep.Files++
		t.rep.Bytes += n
		t.mu.Unlock()
	}
	t.bytes.Add(n)
	t.done.Add(1)
	t.report()
}

// expect adds n files to the total the progress shows.
func (t *tally) expect(n int) {
	t.total.Add(int64(n))
	t.report()
}

func (t *tally) report() {
	if t.progress != nil {
		t.progress(int(t.done.Load()), int(t.total.Load()), t.bytes.Load())
	}
}

// runChecks runs check on every item with at most conc at once; the first error
// (a storage failure, not a finding) cancels the rest and is returned once every
// check has returned.
func runChecks[T any](ctx context.Context, conc int, items []T, check func(ctx context.Context, it T) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for _, it := range items {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return check(gctx, it) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// references is what metadata reaches: files and the folders that hold them.
type references struct {
	files   map[storage.FileHandle]bool
	folders map[storage.BackupHandle]bool
	// opaque folders are referenced but their manifest could not be read: which of
	// their files it references is unknown, so none is reported unreferenced.
	opaque map[storage.BackupHandle]bool
	folder func(storage.FileHandle) storage.BackupHandle
}

func newReferences(folder func(storage.FileHandle) storage.BackupHandle) *references {
	return &references{files: map[storage.FileHandle]bool{}, folders: map[storage.BackupHandle]bool{}, opaque: map[storage.BackupHandle]bool{}, folder: folder}
}

// add marks h and its folder referenced.
func (r *references) add(h storage.FileHandle) {
	r.files[h] = true
	r.folders[r.folder(h)] = true
}

// unreferenced lists storage (folders, and their files where the store can list
// them) and reports every folder and file refs does not reach, with its age, also
// into the report's Ages for gc. own names folders the format keeps beside the
// backups (never findings). A store that cannot list leaves a Note.
func (t *tally) unreferenced(ctx context.Context, st storage.Store, own map[storage.BackupHandle]bool, refs *references, now time.Time) error {
	rep := t.rep
	inv, err := listStorage(ctx, st, own)
	switch {
	case errors.Is(err, errCannotList):
		rep.Notes = append(rep.Notes, "unreferenced files and folders were not checked: "+err.Error())
		return nil
	case err != nil:
		return err
	}
	rep.UnreferencedChecked = true
	if inv.files == nil {
		note := "the store lists folders but not files: unreferenced files inside referenced folders were not checked"
		if inv.filesErr != nil {
			note += " (" + inv.filesErr.Error() + ")"
		}
		rep.Notes = append(rep.Notes, note)
	}
	for _, f := range inv.folders {
		if !refs.folders[f.Handle] {
			n := len(inv.files[f.Handle])
			what := "folder"
			if inv.files != nil {
				what = fmt.Sprintf("folder of %d files", n)
			}
			t.add(Unreferenced, string(f.Handle), f.Handle, "no metadata references this %s, %s, last modified %s (age %s)",
				what, bytesize.Format(f.Size), f.ModTime.UTC().Format(time.RFC3339), age(now, f.ModTime))
			rep.Ages[string(f.Handle)] = UnreferencedItem{Folder: f.Handle, ModTime: f.ModTime, Size: f.Size}
			continue
		}
		if refs.opaque[f.Handle] {
			continue
		}
		for _, fi := range inv.files[f.Handle] {
			if !refs.files[fi.Handle] {
				t.add(Unreferenced, string(fi.Handle), f.Handle, "no manifest references this file, %s, last modified %s (age %s)",
					bytesize.Format(fi.Size), fi.ModTime.UTC().Format(time.RFC3339), age(now, fi.ModTime))
				rep.Ages[string(fi.Handle)] = UnreferencedItem{File: fi.Handle, ModTime: fi.ModTime, Size: fi.Size}
			}
		}
	}
	return nil
}

func age(now, t time.Time) time.Duration {
	d := now.Sub(t).Truncate(time.Second)
	if d < 0 {
		return 0
	}
	return d
}

// countingReader counts the bytes the store returned.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

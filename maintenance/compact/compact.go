// Package compact merges many small metadata files into few compacted ones without
// ever leaving a moment in which a backup is not referenced by a metadata file.
//
// The protocol (see docs/maintenance.md):
//
//  1. A run reads every metadata file (names ending in .meta).
//  2. Deletion: a compacted file is a keeper once it is older than the delete delay
//     (its creation time is in its name). A file is deleted only when every one of
//     its lines is in the keepers, which exist and stay (checked by a fresh listing
//     right before deleting). Keepers are chosen in a fixed order and a keeper is
//     never deleted in the run that relies on it, so two files that cover each other
//     are never both deleted.
//  3. Compaction: when at least MinFiles files (a run's compacted files count as one)
//     hold lines that no other compacted file holds, the union of all lines is written,
//     create-only, to new compacted file(s). Nothing is deleted because of them in this
//     run; a later run deletes what they cover once they are older than the delay.
//
// A coordinator writing new metadata during a run is safe: files the run did not read
// are not covered and not deleted. A reader that listed a file before a keeper
// existed and opens it after the delay finds it gone (storage.ErrNotFound); its lines
// are in the keeper, so the reader should list again.
package compact

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"sort"
	"time"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

// DefaultDeleteDelay is the delete delay used when Options.DeleteDelay is zero.
const DefaultDeleteDelay = time.Hour

// DefaultMinFiles is the MinFiles used when Options.MinFiles is zero.
const DefaultMinFiles = 2

// maxFileBytes bounds a compacted file below native.MaxMetadataSize, leaving room
// for one more line.
const maxFileBytes = native.MaxMetadataSize - 64<<10

// Options configure a compaction run.
type Options struct {
	// DeleteDelay is how old a compacted file must be before the files it covers are
	// deleted. It must exceed the longest time a reader (restore, verify, list, gc)
	// takes from listing metadata to reading the last file. Zero means
	// DefaultDeleteDelay.
	DeleteDelay time.Duration
	// MinFiles is how many files with lines not yet compacted it takes to write a new
	// compacted file (at least 2). Zero means DefaultMinFiles.
	MinFiles int
	// Logger receives one line per written and deleted file; nil discards.
	Logger *slog.Logger
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

// Report is what a compaction run found and did.
type Report struct {
	// MetadataFiles is how many metadata files the run read; Lines how many distinct
	// lines they hold.
	MetadataFiles int `json:"metadata_files"`
	Lines         int `json:"lines"`
	// Keepers are the compacted files old enough to justify deletions.
	Keepers []storage.FileHandle `json:"keepers"`
	// Deleted are the files removed because the keepers hold all their lines.
	Deleted []storage.FileHandle `json:"deleted"`
	// Pending counts files that a compacted file younger than the delete delay
	// covers: a later run deletes them.
	Pending int `json:"pending"`
	// Uncompacted counts the files (a run's parts as one) holding lines no other
	// compacted file holds, before this run wrote anything.
	Uncompacted int `json:"uncompacted"`
	// Written are the compacted files this run wrote, with WrittenLines lines.
	Written      []storage.FileHandle `json:"written"`
	WrittenLines int                  `json:"written_lines"`
}

// file is one metadata file and its distinct lines.
type file struct {
	handle    storage.FileHandle
	lines     []native.Metadata
	name      native.CompactedName
	compacted bool
}

// lineSet holds metadata lines; a line is identified by all its fields, so two lines
// that differ in anything are both kept.
type lineSet map[native.Metadata]struct{}

func (s lineSet) add(ms []native.Metadata) {
	for _, m := range ms {
		s[m] = struct{}{}
	}
}

func (s lineSet) covers(ms []native.Metadata) bool {
	for _, m := range ms {
		if _, ok := s[m]; !ok {
			return false
		}
	}
	return true
}

// Run compacts the metadata of st. On an error it returns the report of what was
// done so far with the error.
func Run(ctx context.Context, st storage.Store, o Options) (*Report, error) {
	if o.DeleteDelay < 0 {
		return nil, fmt.Errorf("compact: negative delete delay %v", o.DeleteDelay)
	}
	if o.DeleteDelay == 0 {
		o.DeleteDelay = DefaultDeleteDelay
	}
	if o.MinFiles == 0 {
		o.MinFiles = DefaultMinFiles
	}
	o.MinFiles = max(o.MinFiles, 2)
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	rep := &Report{Keepers: []storage.FileHandle{}, Deleted: []storage.FileHandle{}, Written: []storage.FileHandle{}}
	now := o.Now()

	files, err := load(ctx, st)
	if err != nil {
		return rep, fmt.Errorf("compact: %w", err)
	}
	rep.MetadataFiles = len(files)

	// Deletion of what earlier runs compacted.
	keepers, deletable, pending := plan(files, now, o.DeleteDelay)
	rep.Pending = pending
	for _, k := range keepers {
		rep.Keepers = append(rep.Keepers, k.handle)
	}
	if len(deletable) > 0 {
		ok, err := keepersListed(ctx, st, keepers)
		if err != nil {
			return rep, fmt.Errorf("compact: %w", err)
		}
		if !ok {
			log.Warn("compact: a compacted file vanished since it was read; deleting nothing in this run")
			deletable = nil
		}
	}
	gone := map[storage.FileHandle]bool{}
	for _, f := range deletable {
		err := st.DeleteMetadata(ctx, f.handle)
		if err != nil && !errors.Is(err, storage.ErrNotFound) {
			return rep, fmt.Errorf("compact: delete metadata %s: %w", f.handle, err)
		}
		gone[f.handle] = true
		rep.Deleted = append(rep.Deleted, f.handle)
		log.Info("compact deleted covered metadata file", "file", f.handle)
	}
	var live []*file
	for _, f := range files {
		if !gone[f.handle] {
			live = append(live, f)
		}
	}

	// Compaction of what is left.
	all := lineSet{}
	for _, f := range live {
		all.add(f.lines)
	}
	rep.Lines = len(all)
	rep.Uncompacted = uncompacted(live)
	if rep.Uncompacted < o.MinFiles {
		return rep, nil
	}
	parts, err := encodeParts(all)
	if err != nil {
		return rep, fmt.Errorf("compact: %w", err)
	}
	// The delete delay counts from the start of the write, not of the run.
	name, err := newRun(o.Now())
	if err != nil {
		return rep, fmt.Errorf("compact: %w", err)
	}
	for i, p := range parts {
		name.Part = i
		h, err := st.SaveMetadata(ctx, name.String(), p.data)
		if err != nil {
			// Committed-then-failed or our own retry found: the same bytes are ours.
			if h, err = storage.ConfirmMetadata(ctx, st, name.String(), p.data, err); err != nil {
				return rep, fmt.Errorf("compact: save %s: %w", name, err)
			}
		}
		rep.Written = append(rep.Written, h)
		rep.WrittenLines += p.lines
		log.Info("compact wrote compacted metadata file", "file", h, "lines", p.lines, "bytes", len(p.data))
	}
	return rep, nil
}

// load reads every metadata file; catalog.LoadEntries lists again when a listed file
// vanished before it was read (its lines are then in a compacted file that the new
// listing shows).
func load(ctx context.Context, st storage.Store) ([]*file, error) {
	entries, err := catalog.LoadEntries(ctx, st, "")
	if err != nil {
		return nil, fmt.Errorf("read metadata: %w", err)
	}
	byHandle := map[storage.FileHandle]*file{}
	var files []*file
	for _, e := range entries {
		f := byHandle[e.File]
		if f == nil {
			f = &file{handle: e.File}
			f.name, f.compacted = native.ParseCompactedName(path.Base(string(e.File)))
			byHandle[e.File] = f
			files = append(files, f)
		}
		f.lines = append(f.lines, e.Metadata)
	}
	return files, nil
}

// plan picks the keepers (compacted files older than delay, in a fixed order, each
// adding lines the earlier ones lack), the files whose every line the keepers hold,
// and counts the other files that some compacted file besides themselves covers.
func plan(files []*file, now time.Time, delay time.Duration) (keepers, deletable []*file, pending int) {
	var old []*file
	for _, f := range files {
		if f.compacted && now.Sub(f.name.Created) >= delay {
			old = append(old, f)
		}
	}
	sort.Slice(old, func(i, j int) bool {
		if len(old[i].lines) != len(old[j].lines) {
			return len(old[i].lines) > len(old[j].lines)
		}
		return old[i].handle < old[j].handle
	})
	kept := lineSet{}
	isKeeper := map[*file]bool{}
	for _, f := range old {
		if !kept.covers(f.lines) {
			isKeeper[f] = true
			keepers = append(keepers, f)
			kept.add(f.lines)
		}
	}
	inFiles := holders(files, func(f *file) string { return string(f.handle) })
	for _, f := range files {
		switch {
		case isKeeper[f]:
		case kept.covers(f.lines):
			deletable = append(deletable, f)
		case coveredByOthers(f.lines, inFiles, f.compacted):
			pending++
		}
	}
	return keepers, deletable, pending
}

// holders counts, for every line, the distinct groups of compacted files that hold
// it, a file's group being group(file).
func holders(files []*file, group func(*file) string) map[native.Metadata]int {
	seen := map[native.Metadata]map[string]bool{}
	n := map[native.Metadata]int{}
	for _, f := range files {
		if !f.compacted {
			continue
		}
		g := group(f)
		for _, m := range f.lines {
			if seen[m] == nil {
				seen[m] = map[string]bool{}
			}
			if !seen[m][g] {
				seen[m][g] = true
				n[m]++
			}
		}
	}
	return n
}

// coveredByOthers reports whether every line is held by a compacted group other than
// the lines' own (self says the lines belong to a compacted group, which holds each
// of them once).
func coveredByOthers(lines []native.Metadata, n map[native.Metadata]int, self bool) bool {
	own := 0
	if self {
		own = 1
	}
	for _, m := range lines {
		if n[m]-own <= 0 {
			return false
		}
	}
	return true
}

// keepersListed reports whether a fresh listing still shows every keeper.
func keepersListed(ctx context.Context, st storage.Store, keepers []*file) (bool, error) {
	hs, err := st.ListMetadata(ctx)
	if err != nil {
		return false, fmt.Errorf("list metadata: %w", err)
	}
	listed := map[storage.FileHandle]bool{}
	for _, h := range hs {
		listed[h] = true
	}
	for _, k := range keepers {
		if !listed[k.handle] {
			return false, nil
		}
	}
	return true, nil
}

// uncompacted counts the units (an original file, or all parts of one compaction run)
// holding a line that no compacted file outside the unit holds.
func uncompacted(files []*file) int {
	inRuns := holders(files, func(f *file) string { return f.name.Run })
	runLines := map[string][]native.Metadata{}
	n := 0
	for _, f := range files {
		if f.compacted {
			runLines[f.name.Run] = append(runLines[f.name.Run], f.lines...)
		} else if !coveredByOthers(f.lines, inRuns, false) {
			n++
		}
	}
	for _, lines := range runLines {
		if !coveredByOthers(lines, inRuns, true) {
			n++
		}
	}
	return n
}

// part is one compacted file's bytes.
type part struct {
	data  []byte
	lines int
}

// encodeParts encodes the lines sorted by type, range and manifest, split into files
// within the metadata limits.
func encodeParts(all lineSet) ([]part, error) {
	ms := make([]native.Metadata, 0, len(all))
	for m := range all {
		ms = append(ms, m)
	}
	sort.Slice(ms, func(i, j int) bool { return less(&ms[i], &ms[j]) })
	var parts []part
	var cur part
	for i := range ms {
		line, err := ms[i].EncodeLine()
		if err != nil {
			return nil, fmt.Errorf("encode metadata line for %s: %w", ms[i].Manifest, err)
		}
		if cur.lines > 0 && (cur.lines == native.MaxMetadataLines || len(cur.data)+len(line) > maxFileBytes) {
			parts = append(parts, cur)
			cur = part{}
		}
		cur.data = append(cur.data, line...)
		cur.lines++
	}
	if cur.lines > 0 {
		parts = append(parts, cur)
	}
	return parts, nil
}

// less orders metadata lines by type, first and last epoch or version, then every
// other field, so that the output is deterministic.
func less(a, b *native.Metadata) bool {
	ka := [...]uint64{a.FirstEpoch, a.FirstVersion, a.Version, a.LastEpoch, a.LastVersion, a.Epoch, uint64(a.Size), uint64(a.Format)}
	kb := [...]uint64{b.FirstEpoch, b.FirstVersion, b.Version, b.LastEpoch, b.LastVersion, b.Epoch, uint64(b.Size), uint64(b.Format)}
	if a.Type != b.Type {
		return a.Type < b.Type
	}
	for i := range ka {
		if ka[i] != kb[i] {
			return ka[i] < kb[i]
		}
	}
	return a.Manifest < b.Manifest
}

// WriteTable prints the report for an operator.
func (r *Report) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "%d metadata files, %d distinct lines\n", r.MetadataFiles, r.Lines)
	for _, h := range r.Deleted {
		fmt.Fprintf(w, "deleted   %s\n", h)
	}
	for _, h := range r.Written {
		fmt.Fprintf(w, "wrote     %s\n", h)
	}
	fmt.Fprintf(w, "deleted %d files covered by %d compacted files older than the delete delay\n", len(r.Deleted), len(r.Keepers))
	fmt.Fprintf(w, "%d files wait for their compacted file to pass the delete delay\n", r.Pending)
	if len(r.Written) > 0 {
		_, err := fmt.Fprintf(w, "compacted %d files with new lines into %d file(s) of %d lines\n", r.Uncompacted, len(r.Written), r.WrittenLines)
		return err
	}
	_, err := fmt.Fprintf(w, "nothing to compact: %d files hold lines not yet compacted\n", r.Uncompacted)
	return err
}

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

package backupcli

import (
	"encoding/json"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/ledgervault/ledgervault/internal/bytesize"
	"github.com/ledgervault/ledgervault/storage"
)

// Listing is what `ledgervault list` prints for a backup-cli store, in the shape of
// ledgervault's own listing: backups with their ranges and sizes, gaps, and the
// number of duplicate metadata lines.
type Listing struct {
	Backups    []ListedBackup `json:"backups"`
	Gaps       []ListedGap    `json:"gaps"`
	Duplicates int            `json:"duplicates"`
	// SizesKnown says whether the store could list folder sizes (a command adapter
	// without list_backups cannot); sizes are 0 otherwise.
	SizesKnown bool `json:"-"`
	// Undecodable lists metadata files that did not decode; they are left out.
	Undecodable []string `json:"-"`
}

// ListedBackup is one backup in a Listing (the fields of ledgervault's own).
type ListedBackup struct {
	Type  string `json:"type"`
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	Epoch uint64 `json:"epoch,omitempty"`
	// EpochKnown is false for Diem 1.x snapshots, whose metadata has no epoch.
	EpochKnown   bool               `json:"-"`
	Size         int64              `json:"size"`
	Manifest     storage.FileHandle `json:"manifest"`
	MetadataFile storage.FileHandle `json:"metadata_file"`
}

// ListedGap is a range no backup of a type covers.
type ListedGap struct {
	Type  string `json:"type"`
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// NewListing builds the listing of v; sizes maps backup folders to their stored size
// (nil when the store cannot list folders).
func NewListing(v *View, sizes map[storage.BackupHandle]int64) *Listing {
	l := &Listing{Backups: []ListedBackup{}, Gaps: []ListedGap{}, Duplicates: len(v.Duplicates), SizesKnown: sizes != nil}
	for _, b := range v.Backups {
		lb := ListedBackup{Type: b.Type, First: b.First, Last: b.Last, Size: sizes[b.Folder], Manifest: b.Manifest, MetadataFile: b.MetadataFile}
		if b.Epoch != nil {
			lb.Epoch, lb.EpochKnown = *b.Epoch, true
		}
		l.Backups = append(l.Backups, lb)
	}
	for _, g := range v.Gaps {
		l.Gaps = append(l.Gaps, ListedGap(g))
	}
	for _, f := range v.Files {
		if f.Err != nil {
			l.Undecodable = append(l.Undecodable, fmt.Sprintf("%s: %v", f.Handle, f.Err))
		}
	}
	return l
}

// WriteTable prints the listing as ledgervault's own listing does.
func (l *Listing) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tRANGE\tSIZE\tMANIFEST")
	for _, b := range l.Backups {
		var rng string
		switch b.Type {
		case TypeEpochEnding:
			rng = fmt.Sprintf("epochs %d-%d", b.First, b.Last)
		case TypeTransaction:
			rng = fmt.Sprintf("versions %d-%d", b.First, b.Last)
		case TypeStateSnapshot:
			if b.EpochKnown {
				rng = fmt.Sprintf("version %d (epoch %d)", b.First, b.Epoch)
			} else {
				rng = fmt.Sprintf("version %d", b.First)
			}
		}
		size := "-"
		if l.SizesKnown {
			size = bytesize.Format(b.Size)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Type, rng, size, b.Manifest)
	}
	for _, g := range l.Gaps {
		unit := "versions"
		if g.Type == TypeEpochEnding {
			unit = "epochs"
		}
		fmt.Fprintf(tw, "%s\tGAP %s %d-%d\t\t\n", g.Type, unit, g.First, g.Last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// Notes after the table, not rows: a row would widen the first column.
	if l.Duplicates > 0 {
		if _, err := fmt.Fprintf(w, "note: %d duplicate metadata lines ignored\n", l.Duplicates); err != nil {
			return err
		}
	}
	for _, u := range l.Undecodable {
		if _, err := fmt.Fprintf(w, "note: undecodable metadata file left out: %s\n", u); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON prints the listing as indented JSON, the shape of ledgervault's own.
func (l *Listing) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(l)
}

// The inventory summarises what backup storage holds, as its metadata files say:
// the backups of each type with their ranges and sizes, and the gaps between them.

package catalog

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/bytesize"
	"github.com/ledgervault/ledgervault/storage"
)

// Backup is one discoverable backup.
type Backup struct {
	Type string `json:"type"`
	// First and Last are the range: epochs (epoch endings), versions
	// (transactions), or the version twice (state snapshots).
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
	// Epoch is a state snapshot's epoch.
	Epoch    uint64             `json:"epoch,omitempty"`
	Size     int64              `json:"size"`
	Manifest storage.FileHandle `json:"manifest"`
	// MetadataFile is the file the line came from.
	MetadataFile storage.FileHandle `json:"metadata_file"`
}

// Gap is a range of epochs or versions that no backup of a type covers, between
// covered ranges.
type Gap struct {
	Type  string `json:"type"`
	First uint64 `json:"first"`
	Last  uint64 `json:"last"`
}

// Inventory is what metadata holds.
type Inventory struct {
	Backups []Backup `json:"backups"`
	Gaps    []Gap    `json:"gaps"`
	// Duplicates counts metadata lines that describe a backup already listed.
	Duplicates int `json:"duplicates"`
}

// Load reads every metadata file of st and builds the catalog. A malformed
// metadata file is an error naming it.
func Load(ctx context.Context, st storage.Store) (*Inventory, error) {
	return LoadCached(ctx, st, "")
}

// LoadCached is Load through the local metadata cache in cacheDir (see
// LoadEntries); an empty cacheDir reads every file from storage.
func LoadCached(ctx context.Context, st storage.Store, cacheDir string) (*Inventory, error) {
	entries, err := LoadEntries(ctx, st, cacheDir)
	if err != nil {
		return nil, err
	}
	return New(entries), nil
}

// New builds the inventory of entries: one Backup per distinct backup (lines that
// describe a backup already seen are counted in Duplicates; the first one, in entry
// order, is kept), sorted by type and range, and the gaps of each type.
func New(entries []Entry) *Inventory {
	inv := &Inventory{Backups: []Backup{}, Gaps: []Gap{}}
	seen := map[string]bool{}
	for i := range entries {
		m := &entries[i].Metadata
		if seen[m.Key()] {
			inv.Duplicates++
			continue
		}
		seen[m.Key()] = true
		bk := Backup{Type: m.Type, Size: m.Size, Manifest: m.Manifest, MetadataFile: entries[i].File}
		switch m.Type {
		case native.TypeEpochEnding:
			bk.First, bk.Last = m.FirstEpoch, m.LastEpoch
		case native.TypeTransaction:
			bk.First, bk.Last = m.FirstVersion, m.LastVersion
		default:
			bk.First, bk.Last, bk.Epoch = m.Version, m.Version, m.Epoch
		}
		inv.Backups = append(inv.Backups, bk)
	}
	sort.SliceStable(inv.Backups, func(i, j int) bool {
		a, b := inv.Backups[i], inv.Backups[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.First != b.First {
			return a.First < b.First
		}
		return a.Last < b.Last
	})
	for _, typ := range []string{native.TypeEpochEnding, native.TypeTransaction} {
		inv.Gaps = append(inv.Gaps, gaps(typ, inv.Backups)...)
	}
	return inv
}

// gaps finds the uncovered ranges of typ from 0 to the end of its last backup.
func gaps(typ string, bs []Backup) []Gap {
	var out []Gap
	var next uint64 // first epoch/version not yet covered
	for _, b := range bs {
		if b.Type != typ {
			continue
		}
		if b.First > next {
			out = append(out, Gap{Type: typ, First: next, Last: b.First - 1})
		}
		if b.Last+1 > next {
			next = b.Last + 1
		}
	}
	return out
}

// WriteTable prints the inventory as a table.
func (inv *Inventory) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tRANGE\tSTORED\tMANIFEST") // STORED: every file of the backup, as its metadata says
	for _, b := range inv.Backups {
		var rng string
		switch b.Type {
		case native.TypeEpochEnding:
			rng = fmt.Sprintf("epochs %d-%d", b.First, b.Last)
		case native.TypeTransaction:
			rng = fmt.Sprintf("versions %d-%d", b.First, b.Last)
		default:
			rng = fmt.Sprintf("version %d (epoch %d)", b.First, b.Epoch)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", b.Type, rng, bytesize.Format(b.Size), b.Manifest)
	}
	for _, g := range inv.Gaps {
		unit := "versions"
		if g.Type == native.TypeEpochEnding {
			unit = "epochs"
		}
		fmt.Fprintf(tw, "%s\tGAP %s %d-%d\t\t\n", g.Type, unit, g.First, g.Last)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	// A note after the table, not a row: a row would widen the first column.
	if inv.Duplicates > 0 {
		if _, err := fmt.Fprintf(w, "note: %d duplicate metadata lines ignored (compacted files repeat the lines they merged)\n", inv.Duplicates); err != nil {
			return err
		}
	}
	return nil
}

// WriteJSON prints the inventory as indented JSON.
func (inv *Inventory) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(inv)
}

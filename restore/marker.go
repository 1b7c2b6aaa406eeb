package restore

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/google/renameio/v2"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/storage"
)

// MarkerFile is the file in the database directory that records the plan of a restore,
// written atomically before any data: a directory holding it for the same plan is
// resumed, one without it is refused unless empty.
const MarkerFile = "RESTORE-PLAN.json"

// marker is the content of MarkerFile.
type marker struct {
	Format       int                  `json:"format"`
	Target       uint64               `json:"target_version"`
	Waypoints    []ledger.Waypoint    `json:"waypoints"`
	Snapshot     storage.FileHandle   `json:"snapshot_manifest,omitempty"`
	Transactions []storage.FileHandle `json:"transaction_manifests"`
	Complete     bool                 `json:"complete"`
}

func newMarker(p *catalog.Plan, wps []ledger.Waypoint) *marker {
	m := &marker{Format: 1, Target: p.Target, Waypoints: append([]ledger.Waypoint(nil), wps...), Transactions: []storage.FileHandle{}}
	slices.SortFunc(m.Waypoints, func(a, b ledger.Waypoint) int {
		switch {
		case a.Version < b.Version:
			return -1
		case a.Version > b.Version:
			return 1
		}
		return 0
	})
	if p.Snapshot != nil {
		m.Snapshot = p.Snapshot.Manifest
	}
	for _, b := range p.Transactions {
		m.Transactions = append(m.Transactions, b.Manifest)
	}
	return m
}

// samePlan reports whether two markers describe the same restore.
func (m *marker) samePlan(o *marker) bool {
	return m.Format == o.Format && m.Target == o.Target && slices.Equal(m.Waypoints, o.Waypoints) &&
		m.Snapshot == o.Snapshot && slices.Equal(m.Transactions, o.Transactions)
}

func (m *marker) describe() string {
	snap := "no snapshot"
	if m.Snapshot != "" {
		snap = "snapshot " + string(m.Snapshot)
	}
	return fmt.Sprintf("target version %d, %s, %d transaction backups, waypoints %v", m.Target, snap, len(m.Transactions), m.Waypoints)
}

func writeMarker(dir string, m *marker) error {
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	if err := renameio.WriteFile(filepath.Join(dir, MarkerFile), append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("write restore marker: %w", err)
	}
	return nil
}

// prepareDir checks the database directory: absent or empty, it is created and the
// marker written (nil is returned); holding a marker of the same plan, that marker is
// returned (the restore resumes or re-checks); anything else is ErrTargetNotEmpty.
func prepareDir(dir string, m *marker) (*marker, error) {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("create database directory: %w", err)
		}
	case err != nil:
		return nil, fmt.Errorf("database directory: %w", err)
	}
	if len(ents) == 0 {
		return nil, writeMarker(dir, m)
	}
	prev, err := readMarker(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s holds %d entries and no %s (not an interrupted restore)", ErrTargetNotEmpty, dir, len(ents), MarkerFile)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrTargetNotEmpty, dir, err)
	}
	if !prev.samePlan(m) {
		return nil, fmt.Errorf("%w: %s holds a restore of another plan (%s); this one is %s", ErrTargetNotEmpty, dir, prev.describe(), m.describe())
	}
	return prev, nil
}

// maxMarkerSize bounds the marker file read back.
const maxMarkerSize = 1 << 20

// readMarker reads the marker of the database directory dir (an error wrapping
// os.ErrNotExist when there is none).
func readMarker(dir string) (*marker, error) {
	f, err := os.Open(filepath.Join(dir, MarkerFile))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	raw, err := io.ReadAll(io.LimitReader(f, maxMarkerSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", MarkerFile, err)
	}
	if len(raw) > maxMarkerSize {
		return nil, fmt.Errorf("%s is larger than %d bytes", MarkerFile, maxMarkerSize)
	}
	var m marker
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s is unreadable: %v", MarkerFile, err)
	}
	return &m, nil
}

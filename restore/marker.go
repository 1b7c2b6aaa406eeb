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

// TargetNotEmptyError is the refusal of a database directory that is not empty and
// does not hold an interrupted restore of the same plan; it matches
// ErrTargetNotEmpty, and its message says how to proceed.
type TargetNotEmptyError struct {
	// Dir is the refused directory.
	Dir string
	// Holds says what the directory holds.
	Holds string
	// Previous is set when the directory holds a restore of another plan: its
	// target version and trusted waypoints, with which a rerun resumes it.
	Previous *PreviousPlan
}

// PreviousPlan is what a rerun needs to resume the restore a directory holds.
type PreviousPlan struct {
	// Target is its target version (also when it was started with latest).
	Target uint64
	// Waypoints are its trusted waypoints.
	Waypoints []ledger.Waypoint
	// Complete is set when that restore finished.
	Complete bool
}

// Error says what the directory holds and how to proceed.
func (e *TargetNotEmptyError) Error() string {
	msg := fmt.Sprintf("%v: %s %s", ErrTargetNotEmpty, e.Dir, e.Holds)
	if e.Previous != nil {
		verb := "resume it"
		if e.Previous.Complete {
			verb = "re-check it"
		}
		return fmt.Sprintf("%s; to %s, run the restore again with its arguments (target version %d, trusted waypoints %v); to restore this plan instead, remove %s or choose another database directory",
			msg, verb, e.Previous.Target, e.Previous.Waypoints, e.Dir)
	}
	return fmt.Sprintf("%s; restore into an empty or new directory, or remove %s first", msg, e.Dir)
}

// Is reports whether target is ErrTargetNotEmpty.
func (e *TargetNotEmptyError) Is(target error) bool { return target == ErrTargetNotEmpty }

// inspectDir checks the database directory without writing anything: absent or
// empty, nil is returned (initDir prepares it once the trust is checked); holding a
// marker of the same plan, that marker is returned (the restore resumes or
// re-checks); anything else is a *TargetNotEmptyError.
func inspectDir(dir string, m *marker) (*marker, error) {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("database directory: %w", err)
	}
	if len(ents) == 0 {
		return nil, nil
	}
	prev, err := readMarker(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, &TargetNotEmptyError{Dir: dir, Holds: fmt.Sprintf("holds %d entries and no %s (not an interrupted restore)", len(ents), MarkerFile)}
	}
	if err != nil {
		return nil, &TargetNotEmptyError{Dir: dir, Holds: fmt.Sprintf("holds an unreadable restore marker: %v", err)}
	}
	if !prev.samePlan(m) {
		return nil, &TargetNotEmptyError{Dir: dir, Holds: fmt.Sprintf("holds a restore of another plan (%s); this one is %s", prev.describe(), m.describe()),
			Previous: &PreviousPlan{Target: prev.Target, Waypoints: prev.Waypoints, Complete: prev.Complete}}
	}
	return prev, nil
}

// initDir creates the database directory if needed and writes the marker, before
// any data.
func initDir(dir string, m *marker) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create database directory: %w", err)
	}
	return writeMarker(dir, m)
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

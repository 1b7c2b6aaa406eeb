package native

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/ledgervault/ledgervault/storage"
)

// Backup types named in metadata.
const (
	TypeEpochEnding   = "epoch_ending"
	TypeStateSnapshot = "state_snapshot"
	TypeTransaction   = "transaction"
)

// Metadata is one line of a metadata file: it makes one completed backup discoverable.
// Only the fields of its Type are set.
type Metadata struct {
	Format int    `json:"format"`
	Type   string `json:"type"`
	// Epoch-ending backups: epochs [FirstEpoch, LastEpoch] and the versions of their
	// first and last ending.
	FirstEpoch uint64 `json:"first_epoch,omitempty"`
	LastEpoch  uint64 `json:"last_epoch,omitempty"`
	// Transaction backups: versions [FirstVersion, LastVersion]; epoch-ending backups:
	// the versions of the first and last ledger info.
	FirstVersion uint64 `json:"first_version,omitempty"`
	LastVersion  uint64 `json:"last_version,omitempty"`
	// State snapshots: the version and the epoch it belongs to.
	Version uint64 `json:"version,omitempty"`
	Epoch   uint64 `json:"epoch,omitempty"`
	// Manifest is the handle of the backup's manifest.
	Manifest storage.FileHandle `json:"manifest"`
	// Size is the total stored size of the backup's files, for listing.
	Size int64 `json:"size,omitempty"`
}

// Validate checks the type, the ranges and the manifest handle.
func (m *Metadata) Validate() error {
	if m.Format != FormatVersion {
		return invalidf("metadata: format %d, want %d", m.Format, FormatVersion)
	}
	if err := storage.ValidateHandle(string(m.Manifest)); err != nil {
		return invalidf("metadata: manifest: %v", err)
	}
	if m.Size < 0 {
		return invalidf("metadata: negative size")
	}
	switch m.Type {
	case TypeEpochEnding:
		if m.FirstEpoch > m.LastEpoch || m.FirstVersion > m.LastVersion {
			return invalidf("metadata: epoch ending backup with epochs [%d, %d] versions [%d, %d]", m.FirstEpoch, m.LastEpoch, m.FirstVersion, m.LastVersion)
		}
	case TypeTransaction:
		if m.FirstVersion > m.LastVersion {
			return invalidf("metadata: transaction backup with versions [%d, %d]", m.FirstVersion, m.LastVersion)
		}
	case TypeStateSnapshot:
	default:
		return invalidf("metadata: unknown backup type %q", truncate([]byte(m.Type)))
	}
	return nil
}

// Key identifies what a metadata line describes, for de-duplication.
func (m *Metadata) Key() string {
	switch m.Type {
	case TypeEpochEnding:
		return fmt.Sprintf("%s/%d-%d", m.Type, m.FirstEpoch, m.LastEpoch)
	case TypeTransaction:
		return fmt.Sprintf("%s/%d-%d", m.Type, m.FirstVersion, m.LastVersion)
	default:
		return fmt.Sprintf("%s/%d", m.Type, m.Version)
	}
}

// EncodeLine returns the metadata as one JSON line (with its newline).
func (m *Metadata) EncodeLine() ([]byte, error) {
	if err := m.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// MaxMetadataLines bounds the lines of one (compacted) metadata file.
const MaxMetadataLines = 100_000

// DecodeMetadataFile decodes a metadata file: one or more JSON lines (a compacted file
// holds many), each validated. name is used in errors.
func DecodeMetadataFile(name string, b []byte) ([]Metadata, error) {
	if len(b) > MaxMetadataSize {
		return nil, invalidf("metadata file %s: %d bytes exceeds the limit of %d", name, len(b), MaxMetadataSize)
	}
	var out []Metadata
	for lineNo, line := range bytes.Split(b, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		if len(out) == MaxMetadataLines {
			return nil, invalidf("metadata file %s: more than %d lines", name, MaxMetadataLines)
		}
		var m Metadata
		if err := decodeStrict(line, MaxMetadataSize, fmt.Sprintf("metadata file %s line %d", name, lineNo+1), &m); err != nil {
			return nil, err
		}
		if err := m.Validate(); err != nil {
			return nil, fmt.Errorf("metadata file %s line %d: %w", name, lineNo+1, err)
		}
		out = append(out, m)
	}
	if len(out) == 0 {
		return nil, invalidf("metadata file %s: empty", name)
	}
	return out, nil
}

// FileOpener opens files of a store (storage.Store has this method).
type FileOpener interface {
	Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error)
}

// ReadMetadataFile reads and decodes the one metadata file h from st, within the
// metadata size limits, and returns its lines and its bytes. Its errors name the file;
// a file that is gone matches storage.ErrNotFound (compaction removed it: list again).
func ReadMetadataFile(ctx context.Context, st FileOpener, h storage.FileHandle) ([]Metadata, []byte, error) {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return nil, nil, fmt.Errorf("metadata handle %q: %w", h, err)
	}
	r, err := st.Open(ctx, h)
	if err != nil {
		return nil, nil, fmt.Errorf("open metadata %s: %w", h, err)
	}
	defer r.Close()
	// ReadLimited names the file in its errors.
	b, err := ReadLimited(r, MaxMetadataSize, "metadata file "+string(h))
	if err != nil {
		return nil, nil, err
	}
	ms, err := DecodeMetadataFile(string(h), b)
	if err != nil {
		return nil, nil, err
	}
	return ms, b, nil
}

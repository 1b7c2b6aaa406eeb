package backupcli

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/ledgervault/ledgervault/storage"
)

// Limits on metadata files.
const (
	// MaxMetadataFileSize bounds one metadata file (compacted files hold many lines).
	MaxMetadataFileSize = 64 << 20
	// MaxMetadataLines bounds the lines of one metadata file.
	MaxMetadataLines = 1 << 20
	// MaxMetadataLineSize bounds one line (a CompactionTimestamps line lists every
	// compacted file, so it is the long one).
	MaxMetadataLineSize = 16 << 20
)

// Kind names a metadata variant, as the JSON key of its line.
type Kind string

// The metadata variants of backup-cli (metadata/mod.rs, enum Metadata).
const (
	KindEpochEnding          Kind = "EpochEndingBackup"
	KindStateSnapshot        Kind = "StateSnapshotBackup"
	KindTransaction          Kind = "TransactionBackup"
	KindIdentity             Kind = "Identity"
	KindCompactionTimestamps Kind = "CompactionTimestamps"
)

// ErrInvalid marks data that does not decode as the backup-cli format.
var ErrInvalid = errors.New("invalid backup-cli data")

// Metadata is one metadata line; exactly the field of its Kind is set.
type Metadata struct {
	Kind                 Kind
	EpochEnding          *EpochEndingMeta
	StateSnapshot        *StateSnapshotMeta
	Transaction          *TransactionMeta
	Identity             *IdentityMeta
	CompactionTimestamps *CompactionTimestampsMeta
}

// EpochEndingMeta describes an epoch-ending backup: epochs [FirstEpoch, LastEpoch]
// whose ending ledger infos are at versions FirstVersion and LastVersion.
type EpochEndingMeta struct {
	FirstEpoch   uint64             `json:"first_epoch"`
	LastEpoch    uint64             `json:"last_epoch"`
	FirstVersion uint64             `json:"first_version"`
	LastVersion  uint64             `json:"last_version"`
	Manifest     storage.FileHandle `json:"manifest"`
}

// StateSnapshotMeta describes a state snapshot at Version. Epoch is nil in the Diem
// 1.x generation, which did not record it.
type StateSnapshotMeta struct {
	Epoch    *uint64            `json:"epoch,omitempty"`
	Version  uint64             `json:"version"`
	Manifest storage.FileHandle `json:"manifest"`
}

// TransactionMeta describes a transaction backup of versions [FirstVersion,
// LastVersion].
type TransactionMeta struct {
	FirstVersion uint64             `json:"first_version"`
	LastVersion  uint64             `json:"last_version"`
	Manifest     storage.FileHandle `json:"manifest"`
}

// IdentityMeta is the random identity backup-cli writes into an empty store: a
// 32-byte hash as 64 hex digits.
type IdentityMeta struct {
	ID string `json:"id"`
}

// CompactionTimestampsMeta records when compaction removed which metadata files:
// file handle to the unix time it was compacted at (nil: not yet).
type CompactionTimestampsMeta struct {
	FileCompactedAt      uint64             `json:"file_compacted_at"`
	CompactionTimestamps map[string]*uint64 `json:"compaction_timestamps"`
}

// ManifestHandle returns the manifest a backup line names, or "" for Identity and
// CompactionTimestamps lines.
func (m *Metadata) ManifestHandle() storage.FileHandle {
	switch m.Kind {
	case KindEpochEnding:
		return m.EpochEnding.Manifest
	case KindStateSnapshot:
		return m.StateSnapshot.Manifest
	case KindTransaction:
		return m.Transaction.Manifest
	}
	return ""
}

// MarshalJSON encodes the line as backup-cli does: {"Kind":{...}}.
func (m Metadata) MarshalJSON() ([]byte, error) {
	var v any
	switch m.Kind {
	case KindEpochEnding:
		v = m.EpochEnding
	case KindStateSnapshot:
		v = m.StateSnapshot
	case KindTransaction:
		v = m.Transaction
	case KindIdentity:
		v = m.Identity
	case KindCompactionTimestamps:
		v = m.CompactionTimestamps
	default:
		return nil, fmt.Errorf("%w: metadata kind %q", ErrInvalid, m.Kind)
	}
	return json.Marshal(map[string]any{string(m.Kind): v})
}

// MetadataError reports a metadata file that does not decode, naming the file and
// the line (1-based; 0 when the file as a whole is at fault).
type MetadataError struct {
	File storage.FileHandle
	Line int
	Err  error
}

func (e *MetadataError) Error() string {
	if e.Line == 0 {
		return fmt.Sprintf("metadata file %s: %v", e.File, e.Err)
	}
	return fmt.Sprintf("metadata file %s line %d: %v", e.File, e.Line, e.Err)
}

func (e *MetadataError) Unwrap() error { return e.Err }

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// DecodeMetadataFile decodes a whole metadata file: one JSON object per line, each
// ending in a newline except perhaps the last. An empty file has no lines (that is
// how backup-cli reads it too). Unknown variants or keys, missing keys, blank lines,
// invalid UTF-8 and files or lines over the limits are errors (*MetadataError)
// naming the file and line.
func DecodeMetadataFile(file storage.FileHandle, data []byte) ([]Metadata, error) {
	if len(data) > MaxMetadataFileSize {
		return nil, &MetadataError{File: file, Err: invalidf("larger than %d bytes", MaxMetadataFileSize)}
	}
	var out []Metadata
	line := 0
	for len(data) > 0 {
		line++
		if line > MaxMetadataLines {
			return nil, &MetadataError{File: file, Line: line, Err: invalidf("more than %d lines", MaxMetadataLines)}
		}
		var l []byte
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			l, data = data[:i], data[i+1:]
		} else {
			l, data = data, nil
		}
		l = bytes.TrimSuffix(l, []byte{'\r'})
		m, err := DecodeMetadataLine(l)
		if err != nil {
			return nil, &MetadataError{File: file, Line: line, Err: err}
		}
		out = append(out, m)
	}
	return out, nil
}

// DecodeMetadataLine decodes one metadata line (without its newline).
func DecodeMetadataLine(l []byte) (Metadata, error) {
	if len(l) > MaxMetadataLineSize {
		return Metadata{}, invalidf("line longer than %d bytes", MaxMetadataLineSize)
	}
	if len(bytes.TrimSpace(l)) == 0 {
		return Metadata{}, invalidf("blank line")
	}
	if !utf8.Valid(l) {
		return Metadata{}, invalidf("not UTF-8")
	}
	var outer map[string]json.RawMessage
	if err := strictUnmarshal(l, &outer); err != nil {
		return Metadata{}, invalidf("not a JSON object: %v", err)
	}
	if len(outer) != 1 {
		return Metadata{}, invalidf("want one variant key, got %d keys", len(outer))
	}
	var m Metadata
	for k, body := range outer {
		m.Kind = Kind(k)
		var err error
		switch m.Kind {
		case KindEpochEnding:
			m.EpochEnding = new(EpochEndingMeta)
			err = decodeFields(body, m.EpochEnding, "first_epoch", "last_epoch", "first_version", "last_version", "manifest")
			if err == nil {
				err = m.EpochEnding.validate()
			}
		case KindStateSnapshot:
			m.StateSnapshot = new(StateSnapshotMeta)
			err = decodeFields(body, m.StateSnapshot, "version", "manifest")
			if err == nil {
				err = validManifest(m.StateSnapshot.Manifest)
			}
		case KindTransaction:
			m.Transaction = new(TransactionMeta)
			err = decodeFields(body, m.Transaction, "first_version", "last_version", "manifest")
			if err == nil {
				err = m.Transaction.validate()
			}
		case KindIdentity:
			m.Identity = new(IdentityMeta)
			err = decodeFields(body, m.Identity, "id")
			if err == nil {
				err = validHash(m.Identity.ID)
			}
		case KindCompactionTimestamps:
			m.CompactionTimestamps = new(CompactionTimestampsMeta)
			err = decodeFields(body, m.CompactionTimestamps, "file_compacted_at", "compaction_timestamps")
			if err == nil {
				for h := range m.CompactionTimestamps.CompactionTimestamps {
					if err = storage.ValidateHandle(h); err != nil {
						err = invalidf("compaction_timestamps: %v", err)
						break
					}
				}
			}
		default:
			return Metadata{}, invalidf("unknown metadata variant %s", strconv.Quote(truncate(k)))
		}
		if err != nil {
			return Metadata{}, fmt.Errorf("%s: %w", k, err)
		}
	}
	return m, nil
}

func (e *EpochEndingMeta) validate() error {
	if e.FirstEpoch > e.LastEpoch || e.FirstVersion > e.LastVersion {
		return invalidf("epochs [%d, %d] versions [%d, %d]", e.FirstEpoch, e.LastEpoch, e.FirstVersion, e.LastVersion)
	}
	return validManifest(e.Manifest)
}

func (t *TransactionMeta) validate() error {
	if t.FirstVersion > t.LastVersion {
		return invalidf("versions [%d, %d]", t.FirstVersion, t.LastVersion)
	}
	return validManifest(t.Manifest)
}

func validManifest(h storage.FileHandle) error {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return invalidf("manifest: %v", err)
	}
	return nil
}

func validHash(s string) error {
	if len(s) != 64 {
		return invalidf("hash %q: want 64 hex digits", truncate(s))
	}
	if _, err := hex.DecodeString(s); err != nil {
		return invalidf("hash %q: %v", truncate(s), err)
	}
	return nil
}

// strictUnmarshal decodes exactly one JSON value, rejecting unknown fields and
// trailing data.
func strictUnmarshal(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// decodeFields decodes body into v strictly and requires every key in required.
func decodeFields(body json.RawMessage, v any, required ...string) error {
	if err := strictUnmarshal(body, v); err != nil {
		return invalidf("%v", err)
	}
	var keys map[string]json.RawMessage
	if err := json.Unmarshal(body, &keys); err != nil {
		return invalidf("%v", err)
	}
	for _, k := range required {
		raw, ok := keys[k]
		if !ok {
			return invalidf("missing key %q", k)
		}
		if string(bytes.TrimSpace(raw)) == "null" {
			return invalidf("key %q is null", k)
		}
	}
	return nil
}

// truncate shortens s for an error message.
func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "..."
	}
	return s
}

package backupcli

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/ledgervault/ledgervault/storage"
)

// MaxManifestSize bounds a manifest file (after any gzip layer).
const MaxManifestSize = 64 << 20

// MaxManifestChunks bounds the chunks one manifest may list.
const MaxManifestChunks = 1 << 20

// EpochEndingManifest is an epoch-ending backup's manifest
// (backup_types/epoch_ending/manifest.rs).
type EpochEndingManifest struct {
	FirstEpoch uint64             `json:"first_epoch"`
	LastEpoch  uint64             `json:"last_epoch"`
	Waypoints  []Waypoint         `json:"waypoints"`
	Chunks     []EpochEndingChunk `json:"chunks"`
}

// EpochEndingChunk is a file of the ledger infos ending epochs [FirstEpoch,
// LastEpoch], one record each.
type EpochEndingChunk struct {
	FirstEpoch  uint64             `json:"first_epoch"`
	LastEpoch   uint64             `json:"last_epoch"`
	LedgerInfos storage.FileHandle `json:"ledger_infos"`
}

// Waypoint is "version:hash" as backup-cli writes it (hash: 64 hex digits).
type Waypoint struct {
	Version uint64
	Hash    [32]byte
}

// String returns the waypoint as "version:hex".
func (w Waypoint) String() string {
	return strconv.FormatUint(w.Version, 10) + ":" + hex.EncodeToString(w.Hash[:])
}

// MarshalText encodes the waypoint as "version:hex".
func (w Waypoint) MarshalText() ([]byte, error) { return []byte(w.String()), nil }

// UnmarshalText decodes "version:hex".
func (w *Waypoint) UnmarshalText(b []byte) error {
	v, h, ok := strings.Cut(string(b), ":")
	if !ok {
		return fmt.Errorf("waypoint %q: want version:hash", truncate(string(b)))
	}
	ver, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return fmt.Errorf("waypoint %q: version: %v", truncate(string(b)), err)
	}
	if len(h) != 64 {
		return fmt.Errorf("waypoint %q: hash must be 64 hex digits", truncate(string(b)))
	}
	if _, err := hex.Decode(w.Hash[:], []byte(h)); err != nil {
		return fmt.Errorf("waypoint %q: %v", truncate(string(b)), err)
	}
	w.Version = ver
	return nil
}

// Hash is a 32-byte hash written as 64 hex digits (HashValue's JSON form).
type Hash [32]byte

// String returns the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// MarshalText encodes the hash in hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText decodes 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	if len(b) != 64 {
		return fmt.Errorf("hash %q: want 64 hex digits", truncate(string(b)))
	}
	if _, err := hex.Decode(h[:], b); err != nil {
		return fmt.Errorf("hash %q: %v", truncate(string(b)), err)
	}
	return nil
}

// StateSnapshotManifest is a state snapshot's manifest
// (backup_types/state_snapshot/manifest.rs). Epoch is nil in the Diem 1.x generation.
type StateSnapshotManifest struct {
	Version  uint64               `json:"version"`
	Epoch    *uint64              `json:"epoch,omitempty"`
	RootHash Hash                 `json:"root_hash"`
	Chunks   []StateSnapshotChunk `json:"chunks"`
	Proof    storage.FileHandle   `json:"proof"`
}

// StateSnapshotChunk holds the state records with indexes [FirstIdx, LastIdx] over
// the whole snapshot, keys (hashed) FirstKey to LastKey inclusive.
type StateSnapshotChunk struct {
	FirstIdx uint64             `json:"first_idx"`
	LastIdx  uint64             `json:"last_idx"`
	FirstKey Hash               `json:"first_key"`
	LastKey  Hash               `json:"last_key"`
	Blobs    storage.FileHandle `json:"blobs"`
	Proof    storage.FileHandle `json:"proof"`
}

// TransactionManifest is a transaction backup's manifest
// (backup_types/transaction/manifest.rs).
type TransactionManifest struct {
	FirstVersion uint64             `json:"first_version"`
	LastVersion  uint64             `json:"last_version"`
	Chunks       []TransactionChunk `json:"chunks"`
}

// TransactionChunk holds the transactions of versions [FirstVersion, LastVersion],
// one record each, and the proof of that range. Format is "V0" or "V1" in current
// backup-cli, absent (meaning V0) in older ones.
type TransactionChunk struct {
	FirstVersion uint64             `json:"first_version"`
	LastVersion  uint64             `json:"last_version"`
	Transactions storage.FileHandle `json:"transactions"`
	Proof        storage.FileHandle `json:"proof"`
	Format       string             `json:"format,omitempty"`
}

// ManifestError reports a manifest that decodes but is inconsistent in itself: its
// chunks do not tile its range (what backup-cli's verify checks).
type ManifestError struct {
	Msg string
}

func (e *ManifestError) Error() string { return e.Msg }

func manifestErrorf(format string, args ...any) error {
	return &ManifestError{Msg: fmt.Sprintf(format, args...)}
}

func checkManifestSize(b []byte) error {
	if len(b) > MaxManifestSize {
		return invalidf("manifest larger than %d bytes", MaxManifestSize)
	}
	return nil
}

// DecodeEpochEndingManifest decodes an epoch-ending manifest strictly (unknown or
// missing keys are errors) and validates its handles. Verify checks its ranges.
func DecodeEpochEndingManifest(b []byte) (*EpochEndingManifest, error) {
	if err := checkManifestSize(b); err != nil {
		return nil, err
	}
	var m EpochEndingManifest
	if err := decodeFields(b, &m, "first_epoch", "last_epoch", "waypoints", "chunks"); err != nil {
		return nil, fmt.Errorf("epoch ending manifest: %w", err)
	}
	if len(m.Chunks) > MaxManifestChunks {
		return nil, invalidf("epoch ending manifest: more than %d chunks", MaxManifestChunks)
	}
	for i, c := range m.Chunks {
		if err := validHandle("chunks[%d].ledger_infos", i, c.LedgerInfos); err != nil {
			return nil, fmt.Errorf("epoch ending manifest: %w", err)
		}
	}
	return &m, nil
}

// Verify checks what backup-cli checks: one waypoint per epoch, chunks tiling
// [FirstEpoch, LastEpoch] in order.
func (m *EpochEndingManifest) Verify() error {
	if m.FirstEpoch > m.LastEpoch || m.LastEpoch-m.FirstEpoch+1 != uint64(len(m.Waypoints)) {
		return manifestErrorf("epochs [%d, %d] with %d waypoints", m.FirstEpoch, m.LastEpoch, len(m.Waypoints))
	}
	if len(m.Chunks) == 0 {
		return manifestErrorf("no chunks")
	}
	next := m.FirstEpoch
	for i, c := range m.Chunks {
		if c.FirstEpoch != next {
			return manifestErrorf("chunks[%d] starts at epoch %d, want %d", i, c.FirstEpoch, next)
		}
		if c.LastEpoch < c.FirstEpoch {
			return manifestErrorf("chunks[%d] epochs [%d, %d]", i, c.FirstEpoch, c.LastEpoch)
		}
		next = c.LastEpoch + 1
	}
	if next-1 != m.LastEpoch {
		return manifestErrorf("chunks end at epoch %d, manifest at %d", next-1, m.LastEpoch)
	}
	return nil
}

// DecodeStateSnapshotManifest decodes a state snapshot manifest strictly and
// validates its handles. Verify checks its ranges.
func DecodeStateSnapshotManifest(b []byte) (*StateSnapshotManifest, error) {
	if err := checkManifestSize(b); err != nil {
		return nil, err
	}
	var m StateSnapshotManifest
	if err := decodeFields(b, &m, "version", "root_hash", "chunks", "proof"); err != nil {
		return nil, fmt.Errorf("state snapshot manifest: %w", err)
	}
	if len(m.Chunks) > MaxManifestChunks {
		return nil, invalidf("state snapshot manifest: more than %d chunks", MaxManifestChunks)
	}
	if err := validHandle("proof", -1, m.Proof); err != nil {
		return nil, fmt.Errorf("state snapshot manifest: %w", err)
	}
	for i, c := range m.Chunks {
		if err := validHandle("chunks[%d].blobs", i, c.Blobs); err != nil {
			return nil, fmt.Errorf("state snapshot manifest: %w", err)
		}
		if err := validHandle("chunks[%d].proof", i, c.Proof); err != nil {
			return nil, fmt.Errorf("state snapshot manifest: %w", err)
		}
	}
	return &m, nil
}

// Verify checks that the chunks tile the record indexes from 0 without gaps and
// that their key ranges ascend.
func (m *StateSnapshotManifest) Verify() error {
	if len(m.Chunks) == 0 {
		return manifestErrorf("no chunks")
	}
	var next uint64
	for i, c := range m.Chunks {
		if c.FirstIdx != next {
			return manifestErrorf("chunks[%d] starts at index %d, want %d", i, c.FirstIdx, next)
		}
		if c.LastIdx < c.FirstIdx {
			return manifestErrorf("chunks[%d] indexes [%d, %d]", i, c.FirstIdx, c.LastIdx)
		}
		if c.LastIdx > c.FirstIdx && compareHash(c.FirstKey, c.LastKey) >= 0 {
			return manifestErrorf("chunks[%d] first key %s not below last key %s", i, c.FirstKey, c.LastKey)
		}
		if c.LastIdx == c.FirstIdx && c.FirstKey != c.LastKey {
			return manifestErrorf("chunks[%d] holds one record but first key %s differs from last key %s", i, c.FirstKey, c.LastKey)
		}
		if i > 0 && compareHash(m.Chunks[i-1].LastKey, c.FirstKey) >= 0 {
			return manifestErrorf("chunks[%d] first key %s not above the previous chunk's last key %s", i, c.FirstKey, m.Chunks[i-1].LastKey)
		}
		next = c.LastIdx + 1
	}
	return nil
}

// DecodeTransactionManifest decodes a transaction manifest strictly and validates
// its handles. Verify checks its ranges.
func DecodeTransactionManifest(b []byte) (*TransactionManifest, error) {
	if err := checkManifestSize(b); err != nil {
		return nil, err
	}
	var m TransactionManifest
	if err := decodeFields(b, &m, "first_version", "last_version", "chunks"); err != nil {
		return nil, fmt.Errorf("transaction manifest: %w", err)
	}
	if len(m.Chunks) > MaxManifestChunks {
		return nil, invalidf("transaction manifest: more than %d chunks", MaxManifestChunks)
	}
	for i, c := range m.Chunks {
		if err := validHandle("chunks[%d].transactions", i, c.Transactions); err != nil {
			return nil, fmt.Errorf("transaction manifest: %w", err)
		}
		if err := validHandle("chunks[%d].proof", i, c.Proof); err != nil {
			return nil, fmt.Errorf("transaction manifest: %w", err)
		}
		switch c.Format {
		case "", "V0", "V1":
		default:
			return nil, invalidf("transaction manifest: chunks[%d].format %q: want V0 or V1", i, truncate(c.Format))
		}
	}
	return &m, nil
}

// Verify checks what backup-cli checks: chunks tiling [FirstVersion, LastVersion].
func (m *TransactionManifest) Verify() error {
	if m.FirstVersion > m.LastVersion {
		return manifestErrorf("versions [%d, %d]", m.FirstVersion, m.LastVersion)
	}
	if len(m.Chunks) == 0 {
		return manifestErrorf("no chunks")
	}
	next := m.FirstVersion
	for i, c := range m.Chunks {
		if c.FirstVersion != next {
			return manifestErrorf("chunks[%d] starts at version %d, want %d", i, c.FirstVersion, next)
		}
		if c.LastVersion < c.FirstVersion {
			return manifestErrorf("chunks[%d] versions [%d, %d]", i, c.FirstVersion, c.LastVersion)
		}
		next = c.LastVersion + 1
	}
	if next-1 != m.LastVersion {
		return manifestErrorf("chunks end at version %d, manifest at %d", next-1, m.LastVersion)
	}
	return nil
}

func validHandle(field string, i int, h storage.FileHandle) error {
	if i >= 0 {
		field = fmt.Sprintf(field, i)
	}
	if err := storage.ValidateHandle(string(h)); err != nil {
		return invalidf("%s: %v", field, err)
	}
	return nil
}

func compareHash(a, b Hash) int {
	for i := range a {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	return 0
}

package native

import (
	"encoding/hex"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

// File names and name parts of the format.
const (
	// ManifestName is the manifest's file name in every backup folder (a resumed
	// attempt's manifest carries its tag, see Tagged).
	ManifestName = "manifest.json"
	// StateRootProofName is the file of a state snapshot that ties its root to a signed
	// ledger info.
	StateRootProofName = "state_root.proof"
	// ChunkExt ends the name of every chunk file.
	ChunkExt = ".zst"
	// MetadataSuffix ends the name of every backup metadata file; other names in the
	// metadata namespace (leases, future kinds) are not metadata.
	MetadataSuffix = ".meta"
	// CompactedPrefix starts the name of every compacted metadata file.
	CompactedPrefix = "compacted_"
	// LeasePrefix and LeaseSuffix frame a lease file name around its sequence number.
	LeasePrefix = "lease_"
	LeaseSuffix = ".lease"

	// proofExt ends the name of every proof file; statePrefix, txnPrefix and
	// epochsPrefix start the names of the chunks (and proofs) of each backup type.
	proofExt     = ".proof"
	statePrefix  = "state-"
	txnPrefix    = "txn-"
	epochsPrefix = "epochs-"
)

// MetadataName returns the metadata file name of a backup: derived from its range
// only (the name its folder is created with, and MetadataSuffix), so that a second
// backup of the same range fails create-only.
func MetadataName(m *Metadata) string {
	switch m.Type {
	case TypeEpochEnding:
		return EpochEndingFolder(m.FirstEpoch, m.LastEpoch) + MetadataSuffix
	case TypeTransaction:
		return TransactionFolder(m.FirstVersion, m.LastVersion) + MetadataSuffix
	default:
		return StateSnapshotFolder(m.Version) + MetadataSuffix
	}
}

// IsMetadataName reports whether a metadata file name or handle names backup metadata
// (not a lease or another kind of file in the metadata namespace).
func IsMetadataName(h string) bool { return strings.HasSuffix(h, MetadataSuffix) }

// IsCompactedMetadataName reports whether the base name of a metadata file looks like
// a compacted metadata file (prefix and suffix only; see ParseCompactedName for the
// exact pattern).
func IsCompactedMetadataName(base string) bool {
	return strings.HasPrefix(base, CompactedPrefix) && strings.HasSuffix(base, MetadataSuffix)
}

// EpochEndingFolder is the name a backup folder of epochs [first, last] is created
// with (the store adds a random suffix).
func EpochEndingFolder(first, last uint64) string {
	return fmt.Sprintf("epoch_ending_%d-%d", first, last)
}

// StateSnapshotFolder is the name a state snapshot folder of version is created with
// (the store adds a random suffix).
func StateSnapshotFolder(version uint64) string {
	return fmt.Sprintf("state_snapshot_ver_%d", version)
}

// TransactionFolder is the name a backup folder of versions [first, last] is created
// with (the store adds a random suffix).
func TransactionFolder(first, last uint64) string {
	return fmt.Sprintf("transaction_%d-%d", first, last)
}

// IsStateSnapshotFolderOf reports whether folder was created by StateSnapshotFolder
// for version: its base name is that name, a dash and the store's suffix.
func IsStateSnapshotFolderOf(folder storage.BackupHandle, version uint64) bool {
	return strings.HasPrefix(path.Base(string(folder)), StateSnapshotFolder(version)+"-")
}

// EpochChunkName is the chunk of epoch endings starting at epoch first.
func EpochChunkName(first uint64) string {
	return fmt.Sprintf("%s%012d%s", epochsPrefix, first, ChunkExt)
}

// StateChunkName is the chunk of state items starting at item index first.
func StateChunkName(first uint64) string {
	return fmt.Sprintf("%s%012d%s", statePrefix, first, ChunkExt)
}

// StateProofName is the range proof of the state chunk starting at item index first.
func StateProofName(first uint64) string {
	return fmt.Sprintf("%s%012d%s", statePrefix, first, proofExt)
}

// TransactionChunkName is the chunk of transactions starting at version first.
func TransactionChunkName(first uint64) string {
	return fmt.Sprintf("%s%012d%s", txnPrefix, first, ChunkExt)
}

// TransactionProofName is the range proof of the transaction chunk starting at
// version first.
func TransactionProofName(first uint64) string {
	return fmt.Sprintf("%s%012d%s", txnPrefix, first, proofExt)
}

// IsChunkName reports whether a file name or handle names a chunk file.
func IsChunkName(name string) bool { return strings.HasSuffix(name, ChunkExt) }

// AttemptTag is the tag of resumed attempt k >= 1 of a state snapshot in its folder:
// every file of that attempt carries it (see Tagged).
func AttemptTag(k int) string { return fmt.Sprintf("r%d", k) }

// Tagged returns name with tag before its extension (state-<index>.r1.zst,
// state_root.r1.proof, manifest.r1.json); name itself for the empty tag (the first
// attempt).
func Tagged(name, tag string) string {
	if tag == "" {
		return name
	}
	if i := strings.IndexByte(name, '.'); i > 0 {
		return name[:i] + "." + tag + name[i:]
	}
	return name + "." + tag
}

// compactedTimeLayout is the UTC creation time in a compacted file's name.
const compactedTimeLayout = "20060102T150405Z"

// MaxCompactedParts bounds the part number in a compacted file name.
const MaxCompactedParts = 1 << 20

// CompactedName is what the name of a compacted metadata file says:
// compacted_<UTC creation time>-<run id>-<part>.meta. All parts written by one run
// share the time and the run id.
type CompactedName struct {
	// Created is when the run that wrote the file started, to the second.
	Created time.Time
	// Run is the random id of the run (16 hex digits).
	Run string
	// Part numbers the files of one run from 0.
	Part int
}

// String returns the file name.
func (n CompactedName) String() string {
	return fmt.Sprintf("%s%s-%s-%d%s", CompactedPrefix, n.Created.UTC().Format(compactedTimeLayout), n.Run, n.Part, MetadataSuffix)
}

// ParseCompactedName parses the base name of a compacted metadata file. Names that do
// not follow the pattern exactly are not compacted files (ok is false): they are
// treated like any other metadata file, never as a basis for deleting others.
func ParseCompactedName(base string) (n CompactedName, ok bool) {
	if len(base) > 200 || !strings.HasPrefix(base, CompactedPrefix) || !strings.HasSuffix(base, MetadataSuffix) {
		return CompactedName{}, false
	}
	fields := strings.Split(base[len(CompactedPrefix):len(base)-len(MetadataSuffix)], "-")
	if len(fields) != 3 || len(fields[0]) != len(compactedTimeLayout) || len(fields[1]) != 16 {
		return CompactedName{}, false
	}
	t, err := time.Parse(compactedTimeLayout, fields[0])
	if err != nil {
		return CompactedName{}, false
	}
	if _, err := hex.DecodeString(fields[1]); err != nil || strings.ToLower(fields[1]) != fields[1] {
		return CompactedName{}, false
	}
	part, err := strconv.Atoi(fields[2])
	if err != nil || part < 0 || part >= MaxCompactedParts || strconv.Itoa(part) != fields[2] {
		return CompactedName{}, false
	}
	return CompactedName{Created: t, Run: fields[1], Part: part}, true
}

// LeaseName returns the lease file name of sequence number seq.
func LeaseName(seq uint64) string { return fmt.Sprintf("%s%020d%s", LeasePrefix, seq, LeaseSuffix) }

// ParseLeaseName returns the sequence number of a lease file name or handle.
func ParseLeaseName(h string) (uint64, bool) {
	b := path.Base(h)
	if !strings.HasPrefix(b, LeasePrefix) || !strings.HasSuffix(b, LeaseSuffix) {
		return 0, false
	}
	digits := strings.TrimSuffix(strings.TrimPrefix(b, LeasePrefix), LeaseSuffix)
	if len(digits) != 20 {
		return 0, false
	}
	n, err := strconv.ParseUint(digits, 10, 64)
	return n, err == nil
}

// Kind is what a file in a backup folder holds, as its name says.
type Kind int

// The kinds of files in a backup folder.
const (
	// KindUnknown is a name the format does not give to any file.
	KindUnknown Kind = iota
	// KindChunk is a chunk file (ChunkExt).
	KindChunk
	// KindManifest is a manifest (ManifestName).
	KindManifest
	// KindStateRootProof is a state snapshot's root proof (StateRootProofName).
	KindStateRootProof
	// KindStateProof is the range proof of a state chunk (StateProofName).
	KindStateProof
	// KindTransactionProof is the range proof of a transaction chunk
	// (TransactionProofName).
	KindTransactionProof
)

// KindOf tells the kind of a file in a backup folder from its name. A resumed
// attempt's files carry a tag between the base name and the extension (Tagged), so
// the kind is read from the part before the first dot and the extension.
func KindOf(name string) Kind {
	base, _, _ := strings.Cut(name, ".")
	ext := path.Ext(name)
	manifestBase, _, _ := strings.Cut(ManifestName, ".")
	rootBase, _, _ := strings.Cut(StateRootProofName, ".")
	switch {
	case ext == ChunkExt:
		return KindChunk
	case base == manifestBase && ext == path.Ext(ManifestName):
		return KindManifest
	case base == rootBase && ext == proofExt:
		return KindStateRootProof
	case strings.HasPrefix(base, statePrefix) && ext == proofExt:
		return KindStateProof
	case strings.HasPrefix(base, txnPrefix) && ext == proofExt:
		return KindTransactionProof
	default:
		return KindUnknown
	}
}

// FolderFiles indexes the committed files of one backup folder, as the store listed
// them (storage.Store.ListFiles), by the names the format gives them. Handles stay
// the store's own: a caller looks a file up by its name (StateChunkName, Tagged,
// ...) and opens the handle the listing returned, never one it composed.
type FolderFiles struct {
	byName map[string]storage.FileInfo
}

// IndexFolder indexes a folder listing by file name: the last slash-separated
// segment of each handle, the name the file was created with. Files whose name
// appears twice are dropped (neither can be told to be the one the format means).
func IndexFolder(files []storage.FileInfo) FolderFiles {
	byName := make(map[string]storage.FileInfo, len(files))
	dup := map[string]bool{}
	for _, f := range files {
		n := path.Base(string(f.Handle))
		if _, ok := byName[n]; ok {
			dup[n] = true
		}
		byName[n] = f
	}
	for n := range dup {
		delete(byName, n)
	}
	return FolderFiles{byName: byName}
}

// Lookup returns the listed file called name, if the folder holds one.
func (f FolderFiles) Lookup(name string) (storage.FileInfo, bool) {
	fi, ok := f.byName[name]
	return fi, ok
}

// Len returns the number of indexed files.
func (f FolderFiles) Len() int { return len(f.byName) }

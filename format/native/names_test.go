package native

import (
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

func TestLeaseNames(t *testing.T) {
	if n, ok := ParseLeaseName("metadata/" + LeaseName(42)); !ok || n != 42 {
		t.Fatalf("%d %v", n, ok)
	}
	for _, bad := range []string{"lease_1.lease", "lease_0000000000000000000x.lease", "x.meta", "lease_00000000000000000001.meta"} {
		if _, ok := ParseLeaseName(bad); ok {
			t.Fatalf("%s parsed", bad)
		}
	}
}

func TestCompactedNameRoundTrip(t *testing.T) {
	now := time.Date(2026, 11, 26, 1, 2, 3, 0, time.UTC)
	n := CompactedName{Created: now, Run: "0123456789abcdef", Part: 7}
	back, ok := ParseCompactedName(n.String())
	if !ok || back != n || n.String() != "compacted_20261126T010203Z-0123456789abcdef-7.meta" {
		t.Fatalf("%s -> %+v %v", n, back, ok)
	}
	for _, bad := range []string{"compacted_x.meta", "backup_1.meta", "compacted_20261126T010203Z-0123456789abcdef-07.meta",
		"compacted_20261126T010203Z-0123456789ABCDEF-0.meta", "compacted_20261126T010203Z-0123456789abcdef--1.meta",
		"compacted_20261326T010203Z-0123456789abcdef-0.meta", "compacted_20261126T010203Z-0123456789abcdef-0.lease"} {
		if _, ok := ParseCompactedName(bad); ok {
			t.Errorf("%q parsed", bad)
		}
	}
}

// FuzzParseCompactedName checks that a compacted file name read back from storage parses only
// when it is exactly what String writes.
func FuzzParseCompactedName(f *testing.F) {
	f.Add("compacted_20261126T010203Z-0123456789abcdef-7.meta")
	f.Add("compacted_20261126T010203Z-0123456789abcdef-1048576.meta")
	f.Add("compacted_-.meta")
	f.Add("transaction_0-99.meta")
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseCompactedName(s)
		if ok && n.String() != s {
			t.Fatalf("%q parsed to %+v which prints %q", s, n, n.String())
		}
	})
}

// TestNamesOnDisk pins every name the format writes: a change here renames files in
// stores that already exist.
func TestNamesOnDisk(t *testing.T) {
	for got, want := range map[string]string{
		MetadataName(&Metadata{Type: TypeEpochEnding, FirstEpoch: 3, LastEpoch: 7}):       "epoch_ending_3-7.meta",
		MetadataName(&Metadata{Type: TypeTransaction, FirstVersion: 10, LastVersion: 19}): "transaction_10-19.meta",
		MetadataName(&Metadata{Type: TypeStateSnapshot, Version: 42}):                     "state_snapshot_ver_42.meta",
		EpochEndingFolder(3, 7):                   "epoch_ending_3-7",
		TransactionFolder(10, 19):                 "transaction_10-19",
		StateSnapshotFolder(42):                   "state_snapshot_ver_42",
		EpochChunkName(5):                         "epochs-000000000005.zst",
		StateChunkName(100000):                    "state-000000100000.zst",
		StateProofName(100000):                    "state-000000100000.proof",
		TransactionChunkName(7):                   "txn-000000000007.zst",
		TransactionProofName(7):                   "txn-000000000007.proof",
		Tagged(StateChunkName(0), AttemptTag(2)):  "state-000000000000.r2.zst",
		Tagged(StateRootProofName, AttemptTag(1)): "state_root.r1.proof",
		Tagged(ManifestName, AttemptTag(1)):       "manifest.r1.json",
		Tagged(ManifestName, ""):                  "manifest.json",
		Tagged("noext", "r3"):                     "noext.r3",
		LeaseName(7):                              "lease_00000000000000000007.lease",
	} {
		if got != want {
			t.Errorf("%q, want %q", got, want)
		}
	}
	if !IsStateSnapshotFolderOf("state_snapshot_ver_42-0123abcd", 42) || IsStateSnapshotFolderOf("state_snapshot_ver_420-0123abcd", 42) ||
		!IsStateSnapshotFolderOf("prefix/state_snapshot_ver_42-x", 42) {
		t.Error("IsStateSnapshotFolderOf")
	}
	if !IsCompactedMetadataName("compacted_x.meta") || IsCompactedMetadataName("compacted_x.lease") || IsCompactedMetadataName("a.meta") {
		t.Error("IsCompactedMetadataName")
	}
}

func TestKindOf(t *testing.T) {
	for name, want := range map[string]Kind{
		StateChunkName(0):                              KindChunk,
		Tagged(StateChunkName(0), "r1"):                KindChunk,
		EpochChunkName(0):                              KindChunk,
		ManifestName:                                   KindManifest,
		Tagged(ManifestName, "r4"):                     KindManifest,
		StateRootProofName:                             KindStateRootProof,
		Tagged(StateRootProofName, "r1"):               KindStateRootProof,
		StateProofName(3):                              KindStateProof,
		Tagged(StateProofName(3), "r1"):                KindStateProof,
		TransactionProofName(3):                        KindTransactionProof,
		"manifest.txt":                                 KindUnknown,
		"other.proof":                                  KindUnknown,
		"README":                                       KindUnknown,
		MetadataName(&Metadata{Type: TypeEpochEnding}): KindUnknown,
	} {
		if got := KindOf(name); got != want {
			t.Errorf("KindOf(%q) = %d, want %d", name, got, want)
		}
	}
}

// TestIndexFolder finds listed files by the format's names with the store's own
// handles, and drops a name listed twice.
func TestIndexFolder(t *testing.T) {
	files := IndexFolder([]storage.FileInfo{
		{Handle: "opaque/x-1/" + storage.FileHandle(Tagged(StateChunkName(0), AttemptTag(1))), Size: 3},
		{Handle: storage.FileHandle(StateRootProofName), Size: 4},
		{Handle: "a/" + storage.FileHandle(StateProofName(0))},
		{Handle: "b/" + storage.FileHandle(StateProofName(0))},
	})
	if f, ok := files.Lookup("state-000000000000.r1.zst"); !ok || f.Handle != "opaque/x-1/state-000000000000.r1.zst" || f.Size != 3 {
		t.Fatalf("tagged chunk: %+v %v", f, ok)
	}
	if f, ok := files.Lookup(StateRootProofName); !ok || f.Size != 4 {
		t.Fatalf("root proof: %+v %v", f, ok)
	}
	if _, ok := files.Lookup(StateProofName(0)); ok {
		t.Fatal("a name listed twice was indexed")
	}
	if _, ok := files.Lookup(StateChunkName(0)); ok || files.Len() != 2 {
		t.Fatalf("unlisted name found or %d files", files.Len())
	}
}

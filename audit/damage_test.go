package audit_test

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/ledgervault/ledgervault/audit"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/corpora"
)

// aptosSubset copies a few backups of aptos-libra7 (gzip-wrapped by the operator's
// config) into a fresh store: epoch endings 0 and 1 and the identity.
func aptosSubset(t *testing.T) string {
	t.Helper()
	src, _, err := corpora.Aptos()
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	for _, p := range []string{"metadata/identity.meta", "metadata/epoch_ending_0-0.meta", "metadata/epoch_ending_1-1.meta"} {
		copyFile(t, filepath.Join(src, p), filepath.Join(dst, p))
	}
	for _, d := range []string{"epoch_ending_0-.0a17", "epoch_ending_1-.6882"} {
		if err := corpora.CopyTree(filepath.Join(src, d), filepath.Join(dst, d)); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// diemCopy copies one diem-0l-v5 store.
func diemCopy(t *testing.T, name string) string {
	t.Helper()
	src, err := corpora.Diem(name)
	if err != nil {
		t.Fatal(err)
	}
	dst := t.TempDir()
	if err := corpora.CopyTree(src, dst); err != nil {
		t.Fatal(err)
	}
	return dst
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

const epoch0Chunk = "epoch_ending_0-.0a17/0-.chunk"

func TestAptosSubsetClean(t *testing.T) {
	root := aptosSubset(t)
	checkFindings(t, run(t, openLocal(t, root)), nil)
	checkFindings(t, run(t, openAptosAdapter(t, root)), nil)
}

// A killed `gzip -c > FILE` leaves a prefix of the stream: every cut is partial,
// through file:// (our gzip reader) and through the adapter (the operator's gzip -cd).
func TestTruncatedGzipChunkIsPartial(t *testing.T) {
	orig := readFile(t, filepath.Join(aptosSubset(t), epoch0Chunk))
	for _, cut := range []int{1, 2, 10, 11, 100, len(orig) / 2, len(orig) - 8, len(orig) - 4, len(orig) - 1} {
		root := aptosSubset(t)
		writeFile(t, filepath.Join(root, epoch0Chunk), orig[:cut])
		for via, rep := range map[string]*audit.Report{"file": run(t, openLocal(t, root)), "adapter": run(t, openAptosAdapter(t, root))} {
			if len(rep.Findings) != 1 || rep.Findings[0].Kind != audit.Partial || rep.Findings[0].Handle != epoch0Chunk || rep.Findings[0].Backup != "epoch_ending_0-.0a17" {
				t.Fatalf("cut at %d of %d via %s: %+v", cut, len(orig), via, rep.Findings)
			}
		}
	}
}

func TestFlippedByteInGzipMember(t *testing.T) {
	root := aptosSubset(t)
	p := filepath.Join(root, epoch0Chunk)
	b := readFile(t, p)
	b[len(b)/2] ^= 0x55
	writeFile(t, p, b)
	for via, rep := range map[string]*audit.Report{"file": run(t, openLocal(t, root)), "adapter": run(t, openAptosAdapter(t, root))} {
		if len(rep.Findings) != 1 || rep.Findings[0].Kind != audit.Partial || rep.Findings[0].Handle != epoch0Chunk {
			t.Fatalf("via %s: %+v", via, rep.Findings)
		}
	}
}

// An extra record appended as a second gzip member (multi-member streams are one
// stream, as gzip -cd reads them): the file decodes, but holds one ledger info too
// many.
func TestExtraRecordInSecondGzipMember(t *testing.T) {
	root := aptosSubset(t)
	p := filepath.Join(root, epoch0Chunk)
	b := readFile(t, p)
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	if _, err := raw.ReadFrom(zr); err != nil {
		t.Fatal(err)
	}
	var member bytes.Buffer
	zw := gzip.NewWriter(&member)
	zw.Write(raw.Bytes()) // the same record once more
	zw.Close()
	writeFile(t, p, append(b, member.Bytes()...))
	for via, rep := range map[string]*audit.Report{"file": run(t, openLocal(t, root)), "adapter": run(t, openAptosAdapter(t, root))} {
		checkFindings(t, rep, []want{{audit.Mismatch, epoch0Chunk, "epoch_ending_0-.0a17", "disagrees with its manifest: read " + epoch0Chunk + ": 2 records, manifest epochs [0, 0] want 1"}})
		_ = via
	}
}

// records splits a plain chunk into its records.
func records(t *testing.T, b []byte) [][]byte {
	t.Helper()
	var out [][]byte
	for len(b) > 0 {
		n := binary.BigEndian.Uint32(b)
		out = append(out, b[4:4+n])
		b = b[4+n:]
	}
	return out
}

func frame(recs [][]byte) []byte {
	var out []byte
	for _, r := range recs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(r)))
		out = append(out, r...)
	}
	return out
}

const diem104Tx = "transaction_51738547-.2551/51738547-.chunk"
const diem104State = "state_ver_51738547.4daf/0-.chunk"

func TestExtraRecordInPlainChunk(t *testing.T) {
	root := diemCopy(t, "104")
	p := filepath.Join(root, diem104Tx)
	recs := records(t, readFile(t, p))
	writeFile(t, p, frame(append(recs, recs[0])))
	checkFindings(t, run(t, openLocal(t, root)), []want{{audit.Mismatch, diem104Tx, "transaction_51738547-.2551", "disagrees with its manifest: read " + diem104Tx + ": 2 records, manifest versions [51738547, 51738547] want 1"}})
}

func TestTruncatedPlainChunkIsPartial(t *testing.T) {
	root := diemCopy(t, "104")
	p := filepath.Join(root, diem104State)
	b := readFile(t, p)
	for _, cut := range []int{2, 4, 100, len(b) - 1} {
		writeFile(t, p, b[:cut])
		checkFindings(t, run(t, openLocal(t, root)), []want{{audit.Partial, diem104State, "state_ver_51738547.4daf", "does not decode completely"}})
		checkFindings(t, run(t, openLocalAdapter(t, root)), []want{{audit.Partial, diem104State, "state_ver_51738547.4daf", "does not decode completely"}})
	}
}

func TestSwappedStateKeys(t *testing.T) {
	root := diemCopy(t, "104")
	p := filepath.Join(root, diem104State)
	recs := records(t, readFile(t, p))
	if len(recs) != 50 {
		t.Fatalf("%d records", len(recs))
	}
	recs[10], recs[11] = recs[11], recs[10]
	writeFile(t, p, frame(recs))
	checkFindings(t, run(t, openLocal(t, root)), []want{{audit.Mismatch, diem104State, "state_ver_51738547.4daf", "disagrees with its manifest: read " + diem104State + ": record 11: key "}})

	// Swapping the first two also breaks the manifest's first key.
	recs[10], recs[11] = recs[11], recs[10]
	recs[0], recs[1] = recs[1], recs[0]
	writeFile(t, p, frame(recs))
	checkFindings(t, run(t, openLocal(t, root)), []want{{audit.Mismatch, diem104State, "state_ver_51738547.4daf", "disagrees with its manifest: read " + diem104State + ": record 1: key "}})
}

func TestManifestGone(t *testing.T) {
	root := diemCopy(t, "104")
	if err := os.Remove(filepath.Join(root, "transaction_51738547-.2551/transaction.manifest")); err != nil {
		t.Fatal(err)
	}
	// The chunk and proof left behind are no manifest's any more: unreferenced files
	// in a folder a metadata line still names.
	checkFindings(t, run(t, openLocal(t, root)), []want{
		{audit.Unreferenced, "transaction_51738547-.2551/51738547-.chunk", "transaction_51738547-.2551", "no manifest references this file"},
		{audit.Unreferenced, "transaction_51738547-.2551/51738547-51738547.proof", "transaction_51738547-.2551", "no manifest references this file"},
		{audit.Missing, "transaction_51738547-.2551/transaction.manifest", "transaction_51738547-.2551", "manifest named by metadata/transaction_51738547-51738547.meta is absent"},
	})
}

func TestZeroLengthFiles(t *testing.T) {
	root := diemCopy(t, "104")
	for _, f := range []string{diem104Tx, "state_ver_51738547.4daf/state.proof"} {
		writeFile(t, filepath.Join(root, f), nil)
	}
	wants := []want{
		{audit.Partial, "state_ver_51738547.4daf/state.proof", "state_ver_51738547.4daf", "zero-length file"},
		{audit.Partial, diem104Tx, "transaction_51738547-.2551", "zero-length file"},
	}
	checkFindings(t, run(t, openLocal(t, root)), wants)
	checkFindings(t, run(t, openLocalAdapter(t, root)), wants)

	// Through the gzip adapter a zero-length file is a failed gzip -cd.
	aroot := aptosSubset(t)
	writeFile(t, filepath.Join(aroot, epoch0Chunk), nil)
	checkFindings(t, run(t, openLocal(t, aroot)), []want{{audit.Partial, epoch0Chunk, "epoch_ending_0-.0a17", "zero-length file"}})
	checkFindings(t, run(t, openAptosAdapter(t, aroot)), []want{{audit.Partial, epoch0Chunk, "epoch_ending_0-.0a17", "does not decode completely"}})
}

// A length prefix claiming 4 GiB is refused at the record limit, not allocated.
func TestHugeLengthPrefix(t *testing.T) {
	root := diemCopy(t, "104")
	writeFile(t, filepath.Join(root, diem104Tx), []byte{0xff, 0xff, 0xff, 0xf0, 1, 2, 3})
	checkFindings(t, run(t, openLocal(t, root)), []want{{audit.Partial, diem104Tx, "transaction_51738547-.2551", "does not decode completely"}})
}

func TestUndecodableMetadataAndManifest(t *testing.T) {
	root := diemCopy(t, "104")
	writeFile(t, filepath.Join(root, "metadata/epoch_ending_104-104.meta"), []byte(`{"EpochEndingBackup":{"first_epoch":104,"last_epoch":104,"first_version":51738547,"last_version":51738547,"manifest":"epoch_ending_104-.6b46/epoch_ending.manifest","extra":1}}`+"\n"))
	writeFile(t, filepath.Join(root, "state_ver_51738547.4daf/state.manifest"), []byte(`{"version":51738547,`))
	checkFindings(t, run(t, openLocal(t, root)), []want{
		{audit.Unreferenced, "epoch_ending_104-.6b46", "epoch_ending_104-.6b46", unrefFolder},
		{audit.Partial, "metadata/epoch_ending_104-104.meta", "", "metadata file does not decode: metadata file metadata/epoch_ending_104-104.meta line 1: EpochEndingBackup: invalid backup-cli data: json: unknown field \"extra\""},
		{audit.Unreferenced, "state_ver_51738547.4daf/0-.chunk", "state_ver_51738547.4daf", "no manifest references this file"},
		{audit.Unreferenced, "state_ver_51738547.4daf/0-49.proof", "state_ver_51738547.4daf", "no manifest references this file"},
		{audit.Partial, "state_ver_51738547.4daf/state.manifest", "state_ver_51738547.4daf", "manifest does not decode"},
		{audit.Unreferenced, "state_ver_51738547.4daf/state.proof", "state_ver_51738547.4daf", "no manifest references this file"},
	})
}

func TestManifestRangeMismatch(t *testing.T) {
	root := diemCopy(t, "104")
	writeFile(t, filepath.Join(root, "metadata/transaction_51738547-51738547.meta"),
		[]byte(`{"TransactionBackup":{"first_version":51738547,"last_version":51738548,"manifest":"transaction_51738547-.2551/transaction.manifest"}}`+"\n"))
	checkFindings(t, run(t, openLocal(t, root)), []want{
		{audit.Mismatch, "transaction_51738547-.2551/transaction.manifest", "transaction_51738547-.2551", "manifest versions [51738547, 51738547], metadata metadata/transaction_51738547-51738547.meta says [51738547, 51738548]"},
	})
}

// A manifest naming a file the store cannot hold (three segments, where a local
// store holds folder/name) is a finding, not a failed audit.
func TestManifestHandleTheStoreCannotHold(t *testing.T) {
	root := diemCopy(t, "104")
	p := filepath.Join(root, "transaction_51738547-.2551/transaction.manifest")
	b := bytes.Replace(readFile(t, p), []byte(`"transactions":"transaction_51738547-.2551/51738547-.chunk"`), []byte(`"transactions":"transaction_51738547-.2551/x/51738547-.chunk"`), 1)
	writeFile(t, p, b)
	checkFindings(t, run(t, openLocal(t, root)), []want{
		{audit.Unreferenced, diem104Tx, "transaction_51738547-.2551", "no manifest references this file"},
		{audit.Missing, "transaction_51738547-.2551/x/51738547-.chunk", "transaction_51738547-.2551", "referenced by transaction_51738547-.2551/transaction.manifest with a handle this store cannot hold"},
	})
}

// A gzip bomb stops at the decompression cap: partial, memory capped.
func TestGzipBombStopsAtTheCap(t *testing.T) {
	root := aptosSubset(t)
	var bomb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&bomb, gzip.BestCompression)
	zw.Write(make([]byte, 8<<20)) // 8 MiB of zeros, about 8 KiB stored
	zw.Close()
	writeFile(t, filepath.Join(root, epoch0Chunk), bomb.Bytes())
	rep := runWith(t, openLocal(t, root), audit.Options{MaxDecompressed: 1 << 20})
	checkFindings(t, rep, []want{{audit.Partial, epoch0Chunk, "epoch_ending_0-.0a17", "does not decode completely"}})
	if !strings.Contains(rep.Findings[0].Detail, "exceeds") {
		t.Fatal(rep.Findings[0].Detail)
	}
}

func gz(t *testing.T, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := gzip.NewWriter(&out)
	zw.Write(b)
	zw.Close()
	return out.Bytes()
}

// aptosStateStore writes an Aptos-generation state snapshot (records are BCS
// (StateKey, StateValue), ordered by the StateKey's hash) the way the operator's
// config does: every file gzip-wrapped. The corpus has no such chunk (unpublished).
func aptosStateStore(t *testing.T, swap bool, hashPrefix string) string {
	t.Helper()
	root := t.TempDir()
	type rec struct {
		key  backupcli.Hash
		body []byte
	}
	var recs []rec
	for i := 0; i < 40; i++ {
		raw := []byte{2, 4, 'k', 'e', 'y', byte(i), 0, 1, byte(i)} // Raw(key<i>), then a value
		if i%2 == 1 {                                              // TableItem{handle, key}
			raw = append([]byte{1}, make([]byte, 32)...)
			raw[32] = byte(i)
			raw = append(raw, 2, 7, byte(i), 0, 3, 1, 2, 3)
		}
		k, err := backupcli.StateRecordKeyFor(raw, hashPrefix)
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rec{k, raw})
	}
	sort.Slice(recs, func(i, j int) bool { return bytes.Compare(recs[i].key[:], recs[j].key[:]) < 0 })
	first, last := recs[0].key, recs[len(recs)-1].key
	if swap {
		recs[5], recs[6] = recs[6], recs[5]
	}
	var bodies [][]byte
	for _, r := range recs {
		bodies = append(bodies, r.body)
	}
	dir := "state_epoch_1_ver_5.abcd"
	os.MkdirAll(filepath.Join(root, dir), 0o755)
	os.MkdirAll(filepath.Join(root, "metadata"), 0o755)
	manifest := fmt.Sprintf(`{"version":5,"epoch":1,"root_hash":"%s","chunks":[{"first_idx":0,"last_idx":39,"first_key":"%s","last_key":"%s","blobs":"%s/0-.chunk","proof":"%s/0-39.proof"}],"proof":"%s/state.proof"}`,
		strings.Repeat("ab", 32), first, last, dir, dir, dir)
	writeFile(t, filepath.Join(root, dir, "state.manifest"), gz(t, []byte(manifest)))
	writeFile(t, filepath.Join(root, dir, "0-.chunk"), gz(t, frame(bodies)))
	writeFile(t, filepath.Join(root, dir, "0-39.proof"), gz(t, []byte{0}))
	writeFile(t, filepath.Join(root, dir, "state.proof"), gz(t, []byte{1, 2, 3}))
	writeFile(t, filepath.Join(root, "metadata/state_snapshot_ver_5.meta"),
		gz(t, []byte(`{"StateSnapshotBackup":{"epoch":1,"version":5,"manifest":"`+dir+`/state.manifest"}}`+"\n")))
	return root
}

// TestAptosStateChunkKeyOrder checks key order under Aptos's hash prefix and under
// the "DIEM::" prefix that the libra7 chain (an Aptos-framework fork) hashes with:
// the prefix is recognised from the manifest's first key.
func TestAptosStateChunkKeyOrder(t *testing.T) {
	for _, prefix := range []string{"APTOS::", "DIEM::"} {
		t.Run(prefix, func(t *testing.T) {
			root := aptosStateStore(t, false, prefix)
			checkFindings(t, run(t, openLocal(t, root)), nil)
			checkFindings(t, run(t, openAptosAdapter(t, root)), nil)

			root = aptosStateStore(t, true, prefix)
			w := []want{{audit.Mismatch, "state_epoch_1_ver_5.abcd/0-.chunk", "state_epoch_1_ver_5.abcd", "disagrees with its manifest: read state_epoch_1_ver_5.abcd/0-.chunk: record 6: key "}}
			checkFindings(t, run(t, openLocal(t, root)), w)
			checkFindings(t, run(t, openAptosAdapter(t, root)), w)
		})
	}
}

// metadata_backup/ is where backup-cli's backup_metadata_file moves compacted
// metadata: backup-cli's own, never unreferenced (so never collected).
func TestMetadataBackupFolderIsNotGarbage(t *testing.T) {
	root := diemCopy(t, "104")
	os.MkdirAll(filepath.Join(root, "metadata_backup"), 0o755)
	writeFile(t, filepath.Join(root, "metadata_backup/epoch_ending_1-1.meta"), []byte("{}\n"))
	checkFindings(t, run(t, openLocal(t, root)), nil)
}

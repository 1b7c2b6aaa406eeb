package tamper

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

// bk is one case's copy of the good backup storage, with its manifests loaded.
type bk struct {
	t    testing.TB
	root string // storage directory

	stateDir string
	state    *native.StateSnapshot
	txnDir   string
	txn      *native.Transaction
	// epochDirs and epochs are the two epoch-ending backups, lower epochs first.
	epochDirs [2]string
	epochs    [2]*native.EpochEnding
	// metas are the metadata file names by backup type (the later epoch-ending
	// backup under "epoch_ending_2").
	metas map[string]string
	// target is the version a case restores to: "latest" unless the case sets it.
	target string
}

// openBackup loads the manifests of the backup copy in root.
func openBackup(t testing.TB, root string) *bk {
	t.Helper()
	b := &bk{t: t, root: root, metas: map[string]string{}, target: "latest"}
	es, err := os.ReadDir(filepath.Join(root, "metadata"))
	if err != nil {
		t.Fatal(err)
	}
	type epochBackup struct {
		first uint64
		dir   string
		meta  string
	}
	var eps []epochBackup
	for _, e := range es {
		data := b.read("metadata/" + e.Name())
		lines, err := native.DecodeMetadataFile(e.Name(), data)
		if err != nil || len(lines) != 1 {
			t.Fatalf("metadata %s of the good backup: %v (%d lines)", e.Name(), err, len(lines))
		}
		m := lines[0]
		dir := path.Dir(string(m.Manifest))
		mb := b.read(string(m.Manifest))
		switch m.Type {
		case native.TypeStateSnapshot:
			b.stateDir, b.metas[m.Type] = dir, e.Name()
			b.state, err = native.DecodeStateSnapshot(mb)
		case native.TypeTransaction:
			b.txnDir, b.metas[m.Type] = dir, e.Name()
			b.txn, err = native.DecodeTransaction(mb)
		case native.TypeEpochEnding:
			eps = append(eps, epochBackup{m.FirstEpoch, dir, e.Name()})
		}
		if err != nil {
			t.Fatalf("manifest %s: %v", m.Manifest, err)
		}
	}
	sort.Slice(eps, func(i, j int) bool { return eps[i].first < eps[j].first })
	if b.state == nil || b.txn == nil || len(eps) != 2 {
		t.Fatalf("good backup: want a state snapshot, a transaction backup and two epoch-ending backups, have %v", b.metas)
	}
	for i, e := range eps {
		m, err := native.DecodeEpochEnding(b.read(e.dir + "/" + "manifest.json"))
		if err != nil {
			t.Fatalf("epoch ending manifest in %s: %v", e.dir, err)
		}
		b.epochDirs[i], b.epochs[i] = e.dir, m
	}
	b.metas["epoch_ending_1"], b.metas["epoch_ending_2"] = eps[0].meta, eps[1].meta
	if len(b.state.Chunks) < 3 || len(b.txn.Chunks) < 3 || len(b.epochs[1].Chunks) < 2 {
		t.Fatalf("good backup has too few chunks: state %d, transaction %d, epoch endings %d",
			len(b.state.Chunks), len(b.txn.Chunks), len(b.epochs[1].Chunks))
	}
	return b
}

func (b *bk) path(h string) string { return filepath.Join(b.root, filepath.FromSlash(h)) }

func (b *bk) read(h string) []byte {
	b.t.Helper()
	data, err := os.ReadFile(b.path(h))
	if err != nil {
		b.t.Fatal(err)
	}
	return data
}

func (b *bk) write(h string, data []byte) {
	b.t.Helper()
	if err := os.WriteFile(b.path(h), data, 0o644); err != nil {
		b.t.Fatal(err)
	}
}

// writeFile replaces the file of f with data and updates f's size and SHA-256 (and
// its raw size to rawSize, unless negative).
func (b *bk) writeFile(f *native.File, data []byte, rawSize int64) {
	b.t.Helper()
	b.write(string(f.Handle), data)
	f.Size = int64(len(data))
	f.SHA256 = sha256.Sum256(data)
	if rawSize >= 0 {
		f.RawSize = rawSize
	}
}

// saveManifest writes m as the manifest of folder dir with the same JSON layout
// native.Encode uses, but without validating it, so that invalid manifests can be
// written too.
func (b *bk) saveManifest(dir string, m any) {
	b.t.Helper()
	data, err := json.MarshalIndent(m, "", " ")
	if err != nil {
		b.t.Fatal(err)
	}
	b.write(dir+"/manifest.json", data)
}

func (b *bk) saveState()               { b.saveManifest(b.stateDir, b.state) }
func (b *bk) saveTxn()                 { b.saveManifest(b.txnDir, b.txn) }
func (b *bk) saveEpochs(i int)         { b.saveManifest(b.epochDirs[i], b.epochs[i]) }
func base(h storage.FileHandle) string { return path.Base(string(h)) }

// decompress returns the records stream of a chunk file.
func decompress(t testing.TB, data []byte) []byte {
	t.Helper()
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	raw, err := d.DecodeAll(data, nil)
	if err != nil {
		t.Fatalf("decompress chunk: %v", err)
	}
	return raw
}

func compress(t testing.TB, raw []byte) []byte {
	t.Helper()
	e, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	return e.EncodeAll(raw, nil)
}

// readRecords decodes the records of the chunk file h with the project's chunk
// decoder.
func (b *bk) readRecords(h storage.FileHandle) [][]byte {
	b.t.Helper()
	var out [][]byte
	_, err := native.ScanChunk(context.Background(), bytes.NewReader(b.read(string(h))), h, native.Limits{}, func(rec []byte) error {
		out = append(out, bytes.Clone(rec))
		return nil
	})
	if err != nil {
		b.t.Fatalf("records of %s: %v", h, err)
	}
	return out
}

// encodeRecords frames recs with the project's writer.
func encodeRecords(t testing.TB, recs [][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := records.NewWriter(&buf)
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// writeRecords replaces the chunk of f with recs, framed and compressed, and updates
// f (size, raw size, SHA-256) so that only a check of the contents can tell.
func (b *bk) writeRecords(f *native.File, recs [][]byte) {
	b.t.Helper()
	raw := encodeRecords(b.t, recs)
	b.writeFile(f, compress(b.t, raw), int64(len(raw)))
}

// flipBit flips one bit in the middle of the file h.
func (b *bk) flipBit(h storage.FileHandle) {
	b.t.Helper()
	data := b.read(string(h))
	data[len(data)/2] ^= 0x10
	b.write(string(h), data)
}

// txnChunksAfterSnapshot returns the indexes of the transaction chunks that a restore
// to the latest version replays (after the snapshot's version).
func (b *bk) txnChunksAfterSnapshot() []int {
	b.t.Helper()
	var out []int
	for i, c := range b.txn.Chunks {
		if c.FirstVersion > b.state.Version {
			out = append(out, i)
		}
	}
	if len(out) < 2 {
		b.t.Fatalf("only %d transaction chunks after the snapshot at %d", len(out), b.state.Version)
	}
	return out
}

// checkSound asserts what a precise corruption must leave intact: every manifest
// decodes and validates, and every file it lists exists with the listed size and
// SHA-256. A case that passes this can only be caught by a deeper check (records,
// signatures, proofs, roots).
func (b *bk) checkSound() {
	b.t.Helper()
	if problems := b.soundProblems(); len(problems) > 0 {
		b.t.Fatalf("the corruption is not precise: the project's own decoders or checksums catch it:\n%s", strings.Join(problems, "\n"))
	}
}

// soundProblems lists what the project's manifest and metadata decoders and the
// manifests' sizes and SHA-256 find wrong with the backup.
func (b *bk) soundProblems() []string {
	b.t.Helper()
	var problems []string
	check := func(f native.File) {
		data, err := os.ReadFile(b.path(string(f.Handle)))
		if err != nil {
			problems = append(problems, err.Error())
			return
		}
		if int64(len(data)) != f.Size || sha256.Sum256(data) != f.SHA256 {
			problems = append(problems, fmt.Sprintf("%s: size or sha256 differs from the manifest", f.Handle))
		}
	}
	if m, err := native.DecodeStateSnapshot(b.read(b.stateDir + "/manifest.json")); err != nil {
		problems = append(problems, err.Error())
	} else {
		check(m.RootProof)
		for _, c := range m.Chunks {
			check(c.File)
			check(c.Proof)
		}
	}
	if m, err := native.DecodeTransaction(b.read(b.txnDir + "/manifest.json")); err != nil {
		problems = append(problems, err.Error())
	} else {
		for _, c := range m.Chunks {
			check(c.File)
			check(c.Proof)
		}
	}
	for _, d := range b.epochDirs {
		if m, err := native.DecodeEpochEnding(b.read(d + "/manifest.json")); err != nil {
			problems = append(problems, err.Error())
		} else {
			for _, c := range m.Chunks {
				check(c.File)
			}
		}
	}
	es, _ := os.ReadDir(filepath.Join(b.root, "metadata"))
	for _, e := range es {
		if _, err := native.DecodeMetadataFile(e.Name(), b.read("metadata/"+e.Name())); err != nil {
			problems = append(problems, err.Error())
		}
	}
	return problems
}

// recordProblems lists the chunk files whose records stream the project's chunk
// decoder rejects (the files whose handles are invalid or missing are skipped: the
// manifest checks report those).
func (b *bk) recordProblems() []string {
	b.t.Helper()
	var hs []string
	if m, err := native.DecodeStateSnapshot(b.read(b.stateDir + "/manifest.json")); err == nil {
		for _, c := range m.Chunks {
			hs = append(hs, string(c.Handle))
		}
	}
	if m, err := native.DecodeTransaction(b.read(b.txnDir + "/manifest.json")); err == nil {
		for _, c := range m.Chunks {
			hs = append(hs, string(c.Handle))
		}
	}
	for _, d := range b.epochDirs {
		if m, err := native.DecodeEpochEnding(b.read(d + "/manifest.json")); err == nil {
			for _, c := range m.Chunks {
				hs = append(hs, string(c.Handle))
			}
		}
	}
	var problems []string
	for _, h := range hs {
		data, err := os.ReadFile(b.path(h))
		if err != nil {
			continue
		}
		_, err = native.ScanChunk(context.Background(), bytes.NewReader(data), storage.FileHandle(h), native.Limits{}, func([]byte) error { return nil })
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: %v", h, err))
		}
	}
	return problems
}

// Zstd bomb. A zstd block regenerates at most 128 KiB; an RLE block does it in 4
// bytes (3 bytes of header, the byte to repeat), which is the best ratio the format
// allows (32768:1). The bomb is one frame: the records of a real chunk without their
// trailer in a raw block, then bombRecords records of bombRecordSize bytes each (a
// 6-byte raw block with the length prefix and a state item key "k", then RLE blocks
// of zeros for the value), so that the decompressed stream stays well-formed records
// of plausible state items for as long as a reader keeps reading: only a bound on the
// decompressed size stops it early.
const (
	zstdBlockMax   = 128 << 10
	bombRecordSize = 16 << 20 // below records.DefaultMaxRecordSize
	bombRecords    = 272      // 272 x 16 MiB = 4.25 GiB
)

// BombSize is the decompressed size of the bomb built by zstdBomb, without its prefix.
const bombSize = int64(bombRecords) * (4 + bombRecordSize)

func zstdBlockHeader(last bool, typ int, size int) []byte {
	v := uint32(size)<<3 | uint32(typ)<<1
	if last {
		v |= 1
	}
	return []byte{byte(v), byte(v >> 8), byte(v >> 16)}
}

// zstdBomb returns a zstd frame that decompresses to prefix followed by bombRecords
// records of bombRecordSize bytes, with no end of records stream.
func zstdBomb(prefix []byte) []byte {
	// Magic, frame header descriptor 0 (no content size, no checksum, no dictionary,
	// not single segment), window descriptor 2^(10+7) = 128 KiB.
	out := []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 7 << 3}
	for len(prefix) > 0 {
		n := min(len(prefix), zstdBlockMax)
		out = append(out, zstdBlockHeader(false, 0, n)...)
		out = append(out, prefix[:n]...)
		prefix = prefix[n:]
	}
	for r := 0; r < bombRecords; r++ {
		var head [6]byte
		binary.BigEndian.PutUint32(head[:], bombRecordSize)
		head[4], head[5] = 1, 'k' // uvarint key length 1, key "k"
		out = append(out, zstdBlockHeader(false, 0, len(head))...)
		out = append(out, head[:]...)
		for left := bombRecordSize - 2; left > 0; {
			n := min(left, zstdBlockMax)
			left -= n
			last := r == bombRecords-1 && left == 0
			out = append(out, zstdBlockHeader(last, 1, n)...)
			out = append(out, 0)
		}
	}
	return out
}

// trailerless returns the records stream of recs without its end marker and trailer.
func trailerless(t testing.TB, recs [][]byte) []byte {
	raw := encodeRecords(t, recs)
	return raw[:len(raw)-records.TrailerSize]
}

func sha256Sum(b []byte) native.Digest { return sha256.Sum256(b) }

// countDecompressed streams data through the zstd decoder, up to limit bytes, and
// returns the size of the output and its first keep bytes.
func countDecompressed(t testing.TB, data []byte, keep int, limit int64) (int64, []byte) {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(data), zstd.WithDecoderConcurrency(1))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	var head []byte
	var n int64
	buf := make([]byte, 1<<20)
	for {
		m, err := d.Read(buf)
		if len(head) < keep {
			head = append(head, buf[:min(m, keep-len(head))]...)
		}
		n += int64(m)
		if err == io.EOF || n >= limit {
			return n, head
		}
		if err != nil {
			t.Fatalf("decompress after %d bytes: %v", n, err)
		}
	}
}

// zstdFrameSize walks the blocks of a single zstd frame of raw and RLE blocks (what
// zstdBomb writes) and returns the size they regenerate.
func zstdFrameSize(t testing.TB, data []byte) int64 {
	t.Helper()
	if len(data) < 6 || !bytes.Equal(data[:4], []byte{0x28, 0xb5, 0x2f, 0xfd}) {
		t.Fatal("not a zstd frame")
	}
	var n int64
	for p := 6; ; {
		if p+3 > len(data) {
			t.Fatalf("frame ends inside a block header at %d", p)
		}
		h := uint32(data[p]) | uint32(data[p+1])<<8 | uint32(data[p+2])<<16
		p += 3
		last, typ, size := h&1 == 1, (h>>1)&3, int(h>>3)
		switch typ {
		case 0:
			p += size
		case 1:
			p++
		default:
			t.Fatalf("block type %d", typ)
		}
		n += int64(size)
		if last {
			if p != len(data) {
				t.Fatalf("%d bytes after the last block", len(data)-p)
			}
			return n
		}
	}
}

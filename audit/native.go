package audit

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"sync"
	"time"

	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

// nativeOwnFolders are the folders ledgervault keeps beside its backups.
var nativeOwnFolders = map[storage.BackupHandle]bool{"metadata": true}

// nativeFolderOf is the backup folder of a file handle of ours (what gc uses too).
func nativeFolderOf(h storage.FileHandle) storage.BackupHandle {
	return storage.BackupHandle(path.Dir(string(h)))
}

// Native audits a store in ledgervault's own format (format/native): it reads every
// metadata file (compacted ones too; lines naming the same backup twice are fine),
// every manifest they name (decoded strictly and checked against each of its
// metadata lines), and every file the manifests reference: chunks are streamed
// through the format's one chunk decoder (native.ScanChunk: zstd, record framing,
// trailer, limits) and their size, SHA-256 and decompressed size compared with the
// manifest's; their records are decoded and counted against the chunk's epoch,
// index or version range, epoch endings checked against the manifest's waypoints,
// and state items checked for ascending key hashes and the manifest's first and last
// key hash. Proofs are size- and hash-checked and decoded. Signatures and Merkle
// proofs are not verified: that is verify's job. Then it lists storage for folders
// and files no metadata reaches (an interrupted backup's folder, a manifest
// committed before its metadata, the files of a resumed state snapshot's earlier
// attempts that the final manifest does not use). The metadata folder's lease files
// are ledgervault's own and never findings. It never writes. Memory is bounded by
// o.Concurrency times the largest record and zstd window.
func Native(ctx context.Context, st storage.Store, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	w := &nativeWalk{st: st, conc: o.Concurrency, t: newTally(string(backupcli.FormatLedgerVault), o.Progress)}
	if w.conc <= 0 {
		w.conc = backupcli.DefaultConcurrency
	}
	w.lim = native.Limits{MaxRecord: o.MaxRecordSize, MaxRawSize: o.MaxDecompressed}.Normalize()
	w.refs = newReferences(nativeFolderOf)

	backups, err := w.metadata(ctx)
	if err != nil {
		return nil, err
	}
	checks, err := w.manifests(ctx, backups)
	if err != nil {
		return nil, err
	}
	w.t.expect(len(checks))
	if err := runChecks(ctx, w.conc, checks, w.check); err != nil {
		return nil, err
	}
	if err := w.t.unreferenced(ctx, st, nativeOwnFolders, w.refs, o.Now()); err != nil {
		return nil, err
	}
	w.t.rep.Sort()
	return w.t.rep, nil
}

// nativeWalk is the state of one audit of a store of ours.
type nativeWalk struct {
	st   storage.Store
	conc int
	lim  native.Limits
	t    *tally
	refs *references
}

// metaLine is one metadata line and the file it came from.
type metaLine struct {
	native.Metadata
	file storage.FileHandle
}

// nativeBackup is one manifest and the metadata lines that name it.
type nativeBackup struct {
	manifest storage.FileHandle
	lines    []metaLine
}

// metadata lists and reads every metadata file, reporting the ones that do not
// decode, and returns the backups their lines name, by manifest handle.
func (w *nativeWalk) metadata(ctx context.Context) ([]*nativeBackup, error) {
	hs, err := w.st.ListMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("list metadata: %w", err)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	var files []storage.FileHandle
	for i, h := range hs {
		switch {
		case i > 0 && h == hs[i-1]:
		case native.IsMetadataName(string(h)):
			files = append(files, h)
		default:
			if _, ok := native.ParseLeaseName(string(h)); !ok {
				w.t.add(Unreferenced, string(h), "", "neither a metadata file (%s) nor a lease: nothing in the format reads it", native.MetadataSuffix)
			}
		}
	}
	w.t.rep.MetadataFiles = len(files)
	lines := make([][]native.Metadata, len(files))
	idx := make([]int, len(files))
	for i := range idx {
		idx[i] = i
	}
	err = runChecks(ctx, w.conc, idx, func(ctx context.Context, i int) error {
		h := files[i]
		ms, _, err := native.ReadMetadataFile(ctx, w.st, h)
		switch {
		case err == nil:
			lines[i] = ms
		case errors.Is(err, storage.ErrNotFound):
			w.t.add(Missing, string(h), "", "listed metadata file vanished before it was read (compaction removes files whose lines a compacted file holds: audit again)")
		case errors.Is(err, native.ErrInvalid):
			w.t.add(Partial, string(h), "", "metadata file does not decode: %v", err)
		case errors.Is(err, storage.ErrInvalidName):
			w.t.add(Partial, string(h), "", "metadata file with a handle this store cannot hold: %v", err)
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	byManifest := map[storage.FileHandle]*nativeBackup{}
	var out []*nativeBackup
	for i, ms := range lines {
		for _, m := range ms {
			b := byManifest[m.Manifest]
			if b == nil {
				b = &nativeBackup{manifest: m.Manifest}
				byManifest[m.Manifest] = b
				out = append(out, b)
			}
			b.lines = append(b.lines, metaLine{Metadata: m, file: files[i]})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].manifest < out[j].manifest })
	w.t.rep.Backups = len(out)
	return out, nil
}

// nativeCheck is one referenced file to read and check.
type nativeCheck struct {
	f        native.File
	manifest storage.FileHandle
	// chunk, for a chunk file, decodes and checks each record (an error wrapping a
	// *contentError is a mismatch, any other a decoding failure) and done checks
	// what the records added up to; proof, for a proof file, decodes it.
	chunk func(rec []byte) error
	done  func() error
	proof func(b []byte) error
	max   int64
}

// contentError is a record that decodes but disagrees with its manifest.
type contentError struct{ err error }

func (e *contentError) Error() string { return e.err.Error() }
func (e *contentError) Unwrap() error { return e.err }

func mismatchf(format string, args ...any) error {
	return &contentError{fmt.Errorf(format, args...)}
}

// manifests reads the manifest of every backup, checks it against its metadata
// lines and returns the checks of the files it references, each file once.
func (w *nativeWalk) manifests(ctx context.Context, backups []*nativeBackup) ([]nativeCheck, error) {
	w.t.expect(len(backups))
	perBackup := make([][]nativeCheck, len(backups))
	idx := make([]int, len(backups))
	for i := range idx {
		idx[i] = i
	}
	var mu sync.Mutex // guards w.refs
	err := runChecks(ctx, w.conc, idx, func(ctx context.Context, i int) error {
		b := backups[i]
		mu.Lock()
		w.refs.add(b.manifest)
		mu.Unlock()
		cs, ok, err := w.manifest(ctx, b)
		if err != nil {
			return err
		}
		perBackup[i] = cs
		mu.Lock()
		if !ok {
			w.refs.opaque[nativeFolderOf(b.manifest)] = true
		}
		for _, c := range cs {
			w.refs.add(c.f.Handle)
		}
		mu.Unlock()
		return nil
	})
	if err != nil {
		return nil, err
	}
	var out []nativeCheck
	seen := map[native.File]bool{}
	for _, cs := range perBackup {
		for _, c := range cs {
			if !seen[c.f] {
				seen[c.f] = true
				out = append(out, c)
			}
		}
	}
	return out, nil
}

// manifest reads, decodes and checks one manifest and returns the checks of its
// files; ok is false when the manifest is absent or does not decode (reported).
func (w *nativeWalk) manifest(ctx context.Context, b *nativeBackup) (checks []nativeCheck, ok bool, err error) {
	h, folder, first := b.manifest, nativeFolderOf(b.manifest), b.lines[0]
	raw, err := native.ReadManifest(ctx, w.st, h)
	switch {
	case err == nil:
	case errors.Is(err, storage.ErrNotFound):
		w.t.read(0, false)
		w.t.add(Missing, string(h), folder, "manifest named by %s is absent", first.file)
		return nil, false, nil
	case errors.Is(err, storage.ErrInvalidName):
		w.t.read(0, false)
		w.t.add(Missing, string(h), folder, "manifest named by %s has a handle this store cannot hold: %v", first.file, err)
		return nil, false, nil
	case errors.Is(err, native.ErrInvalid):
		w.t.read(0, true)
		w.t.add(Partial, string(h), folder, "manifest does not decode: %v", err)
		return nil, false, nil
	default:
		return nil, false, err
	}
	w.t.read(int64(len(raw)), true)
	if len(raw) == 0 {
		w.t.add(Partial, string(h), folder, "zero-length manifest")
		return nil, false, nil
	}
	for _, l := range b.lines[1:] {
		if l.Type != first.Type {
			w.t.add(Mismatch, string(h), folder, "metadata %s names it as a %s backup, %s as a %s backup", first.file, first.Type, l.file, l.Type)
		}
	}
	mismatch := func(l metaLine, format string, args ...any) {
		w.t.add(Mismatch, string(h), folder, "%s (its metadata %s says %s)", fmt.Sprintf(format, args...), l.file, l.Key())
	}
	switch first.Type {
	case native.TypeEpochEnding:
		m, err := native.DecodeEpochEnding(raw)
		if err != nil {
			w.t.add(Partial, string(h), folder, "manifest does not decode: %v", err)
			return nil, false, nil
		}
		for _, l := range b.lines {
			if l.Type != first.Type {
				continue
			}
			if m.FirstEpoch != l.FirstEpoch || m.LastEpoch != l.LastEpoch {
				mismatch(l, "manifest covers epochs %d-%d", m.FirstEpoch, m.LastEpoch)
			}
			if fv, lv := m.Waypoints[0].Version, m.Waypoints[len(m.Waypoints)-1].Version; fv != l.FirstVersion || lv != l.LastVersion {
				mismatch(l, "manifest's waypoints are at versions %d-%d, metadata versions %d-%d", fv, lv, l.FirstVersion, l.LastVersion)
			}
		}
		for _, c := range m.Chunks {
			checks = append(checks, epochChunkCheck(m, c, h))
		}
	case native.TypeStateSnapshot:
		m, err := native.DecodeStateSnapshot(raw)
		if err != nil {
			w.t.add(Partial, string(h), folder, "manifest does not decode: %v", err)
			return nil, false, nil
		}
		for _, l := range b.lines {
			if l.Type == first.Type && (m.Version != l.Version || m.Epoch != l.Epoch) {
				mismatch(l, "manifest is a snapshot at version %d of epoch %d", m.Version, m.Epoch)
			}
		}
		checks = append(checks, proofCheck(m.RootProof, h, proof.MaxSize, func(b []byte) error {
			_, err := proof.DecodeStateRoot(b)
			return err
		}))
		for i := range m.Chunks {
			c := &m.Chunks[i]
			checks = append(checks, stateChunkCheck(c, h), proofCheck(c.Proof, h, smt.MaxRangeProofSize, func(b []byte) error {
				_, err := smt.DecodeRangeProof(b)
				return err
			}))
		}
	case native.TypeTransaction:
		m, err := native.DecodeTransaction(raw)
		if err != nil {
			w.t.add(Partial, string(h), folder, "manifest does not decode: %v", err)
			return nil, false, nil
		}
		for _, l := range b.lines {
			if l.Type == first.Type && (m.FirstVersion != l.FirstVersion || m.LastVersion != l.LastVersion) {
				mismatch(l, "manifest covers versions %d-%d", m.FirstVersion, m.LastVersion)
			}
		}
		for _, c := range m.Chunks {
			checks = append(checks, txnChunkCheck(c, h), proofCheck(c.Proof, h, proof.MaxSize, func(b []byte) error {
				_, err := proof.DecodeTransactionRange(b)
				return err
			}))
		}
	}
	return checks, true, nil
}

// epochChunkCheck decodes each signed ledger info and checks its epoch and its
// waypoint against the manifest (the signatures are verify's job).
func epochChunkCheck(m *native.EpochEnding, c native.EpochEndingChunk, manifest storage.FileHandle) nativeCheck {
	next := c.FirstEpoch
	return nativeCheck{f: c.File, manifest: manifest,
		chunk: func(rec []byte) error {
			li, err := ledger.DecodeLedgerInfoWithSignatures(rec)
			if err != nil {
				return err
			}
			if next > c.LastEpoch {
				return mismatchf("more ledger infos than epochs %d-%d", c.FirstEpoch, c.LastEpoch)
			}
			if li.LedgerInfo.Epoch != next {
				return mismatchf("ledger info of epoch %d where epoch %d belongs", li.LedgerInfo.Epoch, next)
			}
			if wp := ledger.NewWaypoint(&li.LedgerInfo); wp != m.Waypoints[next-m.FirstEpoch] {
				return mismatchf("ending of epoch %d has waypoint %s, the manifest says %s", next, wp, m.Waypoints[next-m.FirstEpoch])
			}
			next++
			return nil
		},
		done: func() error {
			if next != c.LastEpoch+1 {
				return mismatchf("holds %d ledger infos, the manifest says epochs %d-%d", next-c.FirstEpoch, c.FirstEpoch, c.LastEpoch)
			}
			return nil
		},
	}
}

// stateChunkCheck decodes each state item and checks the item count, that key
// hashes ascend and the manifest's first and last key hash.
func stateChunkCheck(c *native.StateSnapshotChunk, manifest storage.FileHandle) nativeCheck {
	want := c.LastIndex - c.FirstIndex + 1
	var count uint64
	var first, prev ledger.Hash
	return nativeCheck{f: c.File, manifest: manifest,
		chunk: func(rec []byte) error {
			k, v, err := records.SplitKeyValue(rec, ledger.MaxKeySize)
			if err != nil {
				return err
			}
			if len(v) > ledger.MaxValueSize {
				return fmt.Errorf("value of %d bytes exceeds the limit of %d", len(v), ledger.MaxValueSize)
			}
			if count >= want {
				return mismatchf("more than the %d items (%d-%d) of the manifest", want, c.FirstIndex, c.LastIndex)
			}
			kh := smt.KeyHash(k)
			if count == 0 {
				first = kh
			} else if string(kh[:]) <= string(prev[:]) {
				return mismatchf("item %d: key hash %s does not come after %s", c.FirstIndex+count, kh.Short(), prev.Short())
			}
			prev = kh
			count++
			return nil
		},
		done: func() error {
			if count != want {
				return mismatchf("holds %d items, the manifest says %d (items %d-%d)", count, want, c.FirstIndex, c.LastIndex)
			}
			if first != c.FirstKeyHash || prev != c.LastKeyHash {
				return mismatchf("first/last key hashes %s/%s, the manifest says %s/%s", first.Short(), prev.Short(), c.FirstKeyHash.Short(), c.LastKeyHash.Short())
			}
			return nil
		},
	}
}

// txnChunkCheck decodes each transaction with its output (which checks that its
// info commits to it) and counts them against the chunk's versions.
func txnChunkCheck(c native.TransactionChunk, manifest storage.FileHandle) nativeCheck {
	want := c.LastVersion - c.FirstVersion + 1
	var count uint64
	return nativeCheck{f: c.File, manifest: manifest,
		chunk: func(rec []byte) error {
			if _, err := ledger.DecodeTransactionWithOutput(rec); err != nil {
				return fmt.Errorf("transaction %d: %w", c.FirstVersion+count, err)
			}
			if count >= want {
				return mismatchf("more than the %d transactions of versions %d-%d", want, c.FirstVersion, c.LastVersion)
			}
			count++
			return nil
		},
		done: func() error {
			if count != want {
				return mismatchf("holds %d transactions, the manifest says %d (versions %d-%d)", count, want, c.FirstVersion, c.LastVersion)
			}
			return nil
		},
	}
}

func proofCheck(f native.File, manifest storage.FileHandle, max int64, decode func([]byte) error) nativeCheck {
	return nativeCheck{f: f, manifest: manifest, proof: decode, max: max}
}

// verdict is what a check found wrong with a file (nil: nothing).
type verdict struct {
	kind   Kind
	detail string
}

func verdictf(k Kind, format string, args ...any) *verdict {
	return &verdict{kind: k, detail: fmt.Sprintf(format, args...)}
}

// check reads one referenced file and reports what is wrong with it; it returns an
// error only when storage fails (the audit cannot complete).
func (w *nativeWalk) check(ctx context.Context, c nativeCheck) error {
	var n int64
	var v *verdict
	var err error
	if c.proof != nil {
		n, v, err = w.checkProof(ctx, c)
	} else {
		n, v, err = w.checkChunk(ctx, c)
	}
	if err != nil {
		return err
	}
	w.t.read(n, v == nil || v.kind != Missing)
	if v != nil {
		w.t.add(v.kind, string(c.f.Handle), nativeFolderOf(c.f.Handle), "%s", v.detail)
	}
	return nil
}

// absent turns an Open error into a Missing verdict, or returns it.
func absent(c nativeCheck, err error) (*verdict, error) {
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return verdictf(Missing, "referenced by %s, absent", c.manifest), nil
	case errors.Is(err, storage.ErrInvalidName):
		return verdictf(Missing, "referenced by %s with a handle this store cannot hold: %v", c.manifest, err), nil
	}
	return nil, err
}

// checkChunk streams a chunk through the format's chunk decoder, with the stored
// size capped at the manifest's and the decompressed size at its raw size, and
// compares what it read with the manifest. A chunk that fails to decode is read
// again to hash it whole, so that the verdict says whether its bytes are the ones
// the manifest describes (a file that decodes badly although its bytes are the
// manifest's is partial; one whose bytes differ is a mismatch, or partial when it
// is a truncated copy).
func (w *nativeWalk) checkChunk(ctx context.Context, c nativeCheck) (int64, *verdict, error) {
	f := c.f
	lim := w.lim
	if f.Size > 0 {
		lim.MaxStoredSize = min(f.Size, lim.MaxStoredSize)
	}
	if f.RawSize > 0 {
		lim.MaxRawSize = min(f.RawSize, lim.MaxRawSize)
	}
	rc, err := w.st.Open(ctx, f.Handle)
	if err != nil {
		v, err := absent(c, err)
		return 0, v, err
	}
	cr := &countingReader{r: rc}
	got, derr := native.ScanChunk(ctx, cr, f.Handle, lim, c.chunk)
	cerr := rc.Close()
	if err := ctx.Err(); err != nil {
		return cr.n, nil, err
	}
	if derr == nil {
		if cerr != nil {
			return cr.n, nil, fmt.Errorf("read %s: %w", f.Handle, cerr)
		}
		switch {
		case got.Size != f.Size:
			return cr.n, verdictf(Mismatch, "%d bytes, its manifest %s says %d", got.Size, c.manifest, f.Size), nil
		case got.SHA256 != f.SHA256:
			return cr.n, verdictf(Mismatch, "SHA-256 %s, its manifest %s says %s", got.SHA256, c.manifest, f.SHA256), nil
		case got.RawSize != f.RawSize:
			return cr.n, verdictf(Mismatch, "decompresses to %d bytes, its manifest %s says %d", got.RawSize, c.manifest, f.RawSize), nil
		}
		if err := c.done(); err != nil {
			return cr.n, verdictf(Mismatch, "disagrees with its manifest %s: %v", c.manifest, err), nil
		}
		return cr.n, nil, nil
	}
	// The rare path: hash the whole file to tell damage from a bad description.
	size, sum, err := hashFile(ctx, w.st, f.Handle, f.Size+1)
	if err != nil {
		v, err := absent(c, err)
		return cr.n, v, err
	}
	var content *contentError
	switch {
	case size == 0:
		return cr.n, verdictf(Partial, "zero-length file (its manifest %s says %d bytes)", c.manifest, f.Size), nil
	case size < f.Size:
		return cr.n, verdictf(Partial, "truncated: %d of the %d bytes its manifest %s says; does not decode completely: %v", size, f.Size, c.manifest, derr), nil
	case size > f.Size:
		return cr.n, verdictf(Mismatch, "larger than the %d bytes its manifest %s says", f.Size, c.manifest), nil
	case sum != f.SHA256:
		return cr.n, verdictf(Mismatch, "SHA-256 %s, its manifest %s says %s (and it does not decode: %v)", sum, c.manifest, f.SHA256, derr), nil
	case errors.As(derr, &content) || errors.Is(derr, native.ErrTooLarge):
		return cr.n, verdictf(Mismatch, "disagrees with its manifest %s: %v", c.manifest, derr), nil
	default:
		return cr.n, verdictf(Partial, "does not decode completely, although its bytes are the ones its manifest %s describes: %v", c.manifest, derr), nil
	}
}

// hashFile reads at most max bytes of h and returns their count and SHA-256.
func hashFile(ctx context.Context, st storage.Store, h storage.FileHandle, max int64) (int64, native.Digest, error) {
	rc, err := st.Open(ctx, h)
	if err != nil {
		return 0, native.Digest{}, err
	}
	defer rc.Close()
	sum := sha256.New()
	n, err := io.Copy(sum, io.LimitReader(rc, max))
	if err != nil {
		return n, native.Digest{}, fmt.Errorf("read %s: %w", h, err)
	}
	return n, native.Digest(sum.Sum(nil)), nil
}

// checkProof reads a proof file whole (bounded), compares it with the manifest and
// decodes it.
func (w *nativeWalk) checkProof(ctx context.Context, c nativeCheck) (int64, *verdict, error) {
	f := c.f
	if f.Size > c.max {
		return 0, verdictf(Mismatch, "its manifest %s says %d bytes, above the limit of %d for this kind of file", c.manifest, f.Size, c.max), nil
	}
	rc, err := w.st.Open(ctx, f.Handle)
	if err != nil {
		v, err := absent(c, err)
		return 0, v, err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, f.Size+1))
	if err != nil {
		return int64(len(b)), nil, fmt.Errorf("read %s: %w", f.Handle, err)
	}
	n := int64(len(b))
	if n <= f.Size {
		if err := rc.Close(); err != nil {
			return n, nil, fmt.Errorf("read %s: %w", f.Handle, err)
		}
	}
	switch {
	case n == 0:
		return n, verdictf(Partial, "zero-length file (its manifest %s says %d bytes)", c.manifest, f.Size), nil
	case n < f.Size:
		return n, verdictf(Partial, "truncated: %d of the %d bytes its manifest %s says", n, f.Size, c.manifest), nil
	case n > f.Size:
		return n, verdictf(Mismatch, "larger than the %d bytes its manifest %s says", f.Size, c.manifest), nil
	}
	if sum := native.Digest(sha256.Sum256(b)); sum != f.SHA256 {
		return n, verdictf(Mismatch, "SHA-256 %s, its manifest %s says %s", sum, c.manifest, f.SHA256), nil
	}
	if err := c.proof(b); err != nil {
		return n, verdictf(Partial, "does not decode, although its bytes are the ones its manifest %s describes: %v", c.manifest, err), nil
	}
	return n, nil, nil
}

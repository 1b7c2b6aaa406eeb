package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
)

// maxProofSize bounds a proof file (a few KiB in practice).
const maxProofSize = 64 << 20

// fileCheck is one referenced file to read and check.
type fileCheck struct {
	handle storage.FileHandle
	check  func(r io.Reader) (backupcli.ChunkResult, error)
}

// BackupCLI audits an Aptos/Diem backup-cli store: it reads every metadata file,
// every manifest they name and every file the manifests reference, decoding each
// completely (gzip layer, record framing, record counts, ledger info epochs and
// versions, state key order), and lists storage for folders and files no metadata
// references. It never writes. Memory is bounded by o.Concurrency times the largest
// record; files are streamed.
//
// A store that cannot list its folders (a command adapter without list_backups)
// gets a Note saying that unreferenced files were not checked; one that lists
// folders but not files gets unreferenced folders only, and a Note.
func BackupCLI(ctx context.Context, st storage.Store, o Options) (*Report, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	conc := o.Concurrency
	if conc <= 0 {
		conc = backupcli.DefaultConcurrency
	}
	t := newTally(string(backupcli.FormatBackupCLI), o.Progress)
	rep := t.rep

	// Metadata and manifests.
	view, err := backupcli.Load(ctx, st, backupcli.LoadOptions{Concurrency: conc})
	if err != nil {
		return nil, err
	}
	rep.MetadataFiles = len(view.Files)
	for _, f := range view.Files {
		switch {
		case f.Err != nil && errors.Is(f.Err, storage.ErrNotFound):
			t.add(Missing, string(f.Handle), "", "listed metadata file vanished before it was read")
		case f.Err != nil:
			t.add(Partial, string(f.Handle), "", "metadata file does not decode: %v", f.Err)
		case f.Size == 0:
			t.add(Partial, string(f.Handle), "", "zero-length metadata file (an interrupted write?); it references nothing")
		}
	}
	rep.Backups = len(view.Manifests)
	refs := newReferences(backupcli.FolderOf)
	decoded, manifests := cliManifests(t, view, refs)

	// Phase 2: every file the manifests reference, each checked once.
	checks := cliChecks(decoded, refs, backupcli.RecordLimits{MaxRecordSize: o.MaxRecordSize})
	t.expect(len(manifests) + len(checks))
	err = runChecks(ctx, conc, checks, func(ctx context.Context, c fileCheck) error {
		n, err := checkFile(ctx, st, c, o.MaxDecompressed)
		t.read(n, err == nil || !(errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidName)))
		folder := backupcli.FolderOf(c.handle)
		switch {
		case err == nil:
		case errors.Is(err, storage.ErrNotFound):
			t.add(Missing, string(c.handle), folder, "referenced by %s, absent", manifestOf(c.handle, decoded, manifests))
		case errors.Is(err, storage.ErrInvalidName):
			t.add(Missing, string(c.handle), folder, "referenced by %s with a handle this store cannot hold: %v", manifestOf(c.handle, decoded, manifests), err)
		case errors.Is(err, errZeroLength):
			t.add(Partial, string(c.handle), folder, "zero-length file")
		case backupcli.IsDecodeError(err):
			t.add(Partial, string(c.handle), folder, "does not decode completely: %v", err)
		case backupcli.IsMismatch(err):
			t.add(Mismatch, string(c.handle), folder, "disagrees with its manifest: %v", err)
		default:
			return err
		}
		return nil
	})
	if err != nil {
		return nil, err
	}

	// Phase 3: what storage holds that nothing references.
	if err := t.unreferenced(ctx, st, backupCLIOwnFolders, refs, o.Now()); err != nil {
		return nil, err
	}
	rep.Sort()
	return rep, nil
}

// manifestOf names the manifest that references h, for a finding's detail.
func manifestOf(h storage.FileHandle, decoded []*backupcli.Manifest, manifests []storage.FileHandle) storage.FileHandle {
	for i, m := range decoded {
		if m == nil {
			continue
		}
		for _, f := range m.Files() {
			if f == h {
				return manifests[i]
			}
		}
	}
	return "a manifest"
}

var errZeroLength = errors.New("zero-length file")

// checkFile opens, decodes and checks one referenced file; it returns the bytes
// read from the store.
func checkFile(ctx context.Context, st storage.Store, c fileCheck, maxDecompressed int64) (int64, error) {
	rc, err := st.Open(ctx, c.handle)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", c.handle, err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	r, _, err := backupcli.Decompress(cr, maxDecompressed)
	if err == nil {
		_, err = c.check(r)
	}
	if cr.n == 0 && (err == nil || backupcli.IsDecodeError(err) || backupcli.IsMismatch(err)) {
		return 0, errZeroLength
	}
	if err != nil {
		return cr.n, fmt.Errorf("read %s: %w", c.handle, err)
	}
	// The check read to the end of its data; the store's reader may still report a
	// failure (a command adapter's exit status) at EOF or on Close.
	if _, err := io.Copy(io.Discard, cr); err != nil {
		return cr.n, fmt.Errorf("read %s: %w", c.handle, err)
	}
	if err := rc.Close(); err != nil {
		return cr.n, fmt.Errorf("read %s: %w", c.handle, err)
	}
	return cr.n, nil
}

// cliManifests records the manifests of view in refs and reports those that are
// absent, do not decode or disagree with their metadata lines; it returns each
// manifest (nil where it did not decode) beside its handle.
func cliManifests(t *tally, view *backupcli.View, refs *references) ([]*backupcli.Manifest, []storage.FileHandle) {
	decoded := make([]*backupcli.Manifest, len(view.Manifests))
	manifests := make([]storage.FileHandle, len(view.Manifests))
	for i, mf := range view.Manifests {
		h, b := mf.Handle, mf.Lines[0]
		manifests[i] = h
		refs.add(h)
		if mf.Err != nil && errors.Is(mf.Err, storage.ErrNotFound) {
			t.add(Missing, string(h), b.Folder, "manifest named by %s is absent", b.MetadataFile)
			continue
		}
		if mf.Err != nil && errors.Is(mf.Err, storage.ErrInvalidName) {
			t.add(Missing, string(h), b.Folder, "manifest named by %s has a handle this store cannot hold: %v", b.MetadataFile, mf.Err)
			continue
		}
		t.read(mf.Size, true)
		if mf.Err != nil {
			t.add(Partial, string(h), b.Folder, "manifest does not decode: %v", mf.Err)
			continue
		}
		m := mf.Manifest
		decoded[i] = m
		if err := m.Verify(); err != nil {
			t.add(Mismatch, string(h), b.Folder, "manifest is inconsistent: %v", err)
		}
		for _, line := range mf.Lines {
			if err := m.CheckAgainst(line); err != nil {
				t.add(Mismatch, string(h), b.Folder, "%v", err)
			}
		}
	}

	return decoded, manifests
}

// cliChecks lists the check of every file the decoded manifests reference, each
// once, and records them in refs.
func cliChecks(decoded []*backupcli.Manifest, refs *references, lim backupcli.RecordLimits) []fileCheck {
	var checks []fileCheck
	seen := map[storage.FileHandle]bool{}
	addCheck := func(h storage.FileHandle, fn func(io.Reader) (backupcli.ChunkResult, error)) {
		refs.add(h)
		if seen[h] {
			return
		}
		seen[h] = true
		checks = append(checks, fileCheck{handle: h, check: fn})
	}
	proof := func(r io.Reader) (backupcli.ChunkResult, error) { return backupcli.CheckProof(r, maxProofSize) }
	for _, m := range decoded {
		switch {
		case m == nil:
		case m.EpochEnding != nil:
			e := m.EpochEnding
			for _, c := range e.Chunks {
				addCheck(c.LedgerInfos, func(r io.Reader) (backupcli.ChunkResult, error) {
					return backupcli.CheckEpochEndingChunk(r, c, e.FirstEpoch, e.Waypoints, lim)
				})
			}
		case m.StateSnapshot != nil:
			for _, c := range m.StateSnapshot.Chunks {
				addCheck(c.Blobs, func(r io.Reader) (backupcli.ChunkResult, error) { return backupcli.CheckStateChunk(r, c, lim) })
				addCheck(c.Proof, proof)
			}
			addCheck(m.StateSnapshot.Proof, proof)
		case m.Transaction != nil:
			for _, c := range m.Transaction.Chunks {
				addCheck(c.Transactions, func(r io.Reader) (backupcli.ChunkResult, error) { return backupcli.CheckTransactionChunk(r, c, lim) })
				addCheck(c.Proof, proof)
			}
		}
	}
	return checks
}

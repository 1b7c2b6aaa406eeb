package audit

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/internal/bytesize"
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
	rep := &Report{Format: string(backupcli.FormatBackupCLI), Ages: map[string]UnreferencedItem{}}
	var mu sync.Mutex // guards rep.Findings, rep.Files, rep.Bytes
	add := func(k Kind, h string, b storage.BackupHandle, format string, args ...any) {
		mu.Lock()
		rep.Findings = append(rep.Findings, Finding{Kind: k, Handle: h, Backup: string(b), Detail: fmt.Sprintf(format, args...)})
		mu.Unlock()
	}

	// Metadata and manifests.
	view, err := backupcli.Load(ctx, st, backupcli.LoadOptions{Concurrency: conc})
	if err != nil {
		return nil, err
	}
	rep.MetadataFiles = len(view.Files)
	for _, f := range view.Files {
		switch {
		case f.Err != nil && errors.Is(f.Err, storage.ErrNotFound):
			add(Missing, string(f.Handle), "", "listed metadata file vanished before it was read")
		case f.Err != nil:
			add(Partial, string(f.Handle), "", "metadata file does not decode: %v", f.Err)
		case f.Size == 0:
			add(Partial, string(f.Handle), "", "zero-length metadata file (an interrupted write?); it references nothing")
		}
	}
	rep.Backups = len(view.Manifests)
	referenced := map[storage.FileHandle]bool{}
	referencedFolders := map[storage.BackupHandle]bool{}
	var filesDone atomic.Int64
	var bytesRead atomic.Int64
	progress := func(total int) {
		if o.Progress != nil {
			o.Progress(int(filesDone.Load()), total, bytesRead.Load())
		}
	}
	decoded := make([]*backupcli.Manifest, len(view.Manifests))
	manifests := make([]storage.FileHandle, len(view.Manifests))
	for i, mf := range view.Manifests {
		h, b := mf.Handle, mf.Lines[0]
		manifests[i] = h
		referenced[h] = true
		referencedFolders[backupcli.FolderOf(h)] = true
		if mf.Err != nil && errors.Is(mf.Err, storage.ErrNotFound) {
			add(Missing, string(h), b.Folder, "manifest named by %s is absent", b.MetadataFile)
			continue
		}
		if mf.Err != nil && errors.Is(mf.Err, storage.ErrInvalidName) {
			add(Missing, string(h), b.Folder, "manifest named by %s has a handle this store cannot hold: %v", b.MetadataFile, mf.Err)
			continue
		}
		rep.Files++
		rep.Bytes += mf.Size
		bytesRead.Add(mf.Size)
		filesDone.Add(1)
		if mf.Err != nil {
			add(Partial, string(h), b.Folder, "manifest does not decode: %v", mf.Err)
			continue
		}
		m := mf.Manifest
		decoded[i] = m
		if err := m.Verify(); err != nil {
			add(Mismatch, string(h), b.Folder, "manifest is inconsistent: %v", err)
		}
		for _, line := range mf.Lines {
			if err := m.CheckAgainst(line); err != nil {
				add(Mismatch, string(h), b.Folder, "%v", err)
			}
		}
	}

	// Phase 2: every file the manifests reference, each checked once.
	var checks []fileCheck
	seen := map[storage.FileHandle]bool{}
	addCheck := func(h storage.FileHandle, fn func(io.Reader) (backupcli.ChunkResult, error)) {
		referenced[h] = true
		referencedFolders[backupcli.FolderOf(h)] = true
		if seen[h] {
			return
		}
		seen[h] = true
		checks = append(checks, fileCheck{handle: h, check: fn})
	}
	lim := backupcli.RecordLimits{MaxRecordSize: o.MaxRecordSize}
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
	total := len(manifests) + len(checks)
	progress(total)
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(conc)
	for _, c := range checks {
		g.Go(func() error {
			n, err := checkFile(gctx, st, c, o.MaxDecompressed)
			mu.Lock()
			if err == nil || !(errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidName)) {
				rep.Files++
				rep.Bytes += n
			}
			mu.Unlock()
			bytesRead.Add(n)
			filesDone.Add(1)
			progress(total)
			folder := backupcli.FolderOf(c.handle)
			switch {
			case err == nil:
			case errors.Is(err, storage.ErrNotFound):
				add(Missing, string(c.handle), folder, "referenced by %s, absent", manifestOf(c.handle, decoded, manifests))
			case errors.Is(err, storage.ErrInvalidName):
				add(Missing, string(c.handle), folder, "referenced by %s with a handle this store cannot hold: %v", manifestOf(c.handle, decoded, manifests), err)
			case errors.Is(err, errZeroLength):
				add(Partial, string(c.handle), folder, "zero-length file")
			case backupcli.IsDecodeError(err):
				add(Partial, string(c.handle), folder, "does not decode completely: %v", err)
			case backupcli.IsMismatch(err):
				add(Mismatch, string(c.handle), folder, "disagrees with its manifest: %v", err)
			default:
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	// Phase 3: what storage holds that nothing references.
	inv, err := listStorage(ctx, st)
	switch {
	case errors.Is(err, errCannotList):
		rep.Notes = append(rep.Notes, "unreferenced files and folders were not checked: "+err.Error())
	case err != nil:
		return nil, err
	default:
		rep.UnreferencedChecked = true
		if inv.files == nil {
			note := "the store lists folders but not files: unreferenced files inside referenced folders were not checked"
			if inv.filesErr != nil {
				note += " (" + inv.filesErr.Error() + ")"
			}
			rep.Notes = append(rep.Notes, note)
		}
		now := o.Now()
		for _, f := range inv.folders {
			if !referencedFolders[f.Handle] {
				n := len(inv.files[f.Handle])
				what := "folder"
				if inv.files != nil {
					what = fmt.Sprintf("folder of %d files", n)
				}
				add(Unreferenced, string(f.Handle), f.Handle, "no metadata references this %s, %s, last modified %s (age %s)",
					what, bytesize.Format(f.Size), f.ModTime.UTC().Format(time.RFC3339), age(now, f.ModTime))
				rep.Ages[string(f.Handle)] = UnreferencedItem{Folder: f.Handle, ModTime: f.ModTime, Size: f.Size}
				continue
			}
			for _, fi := range inv.files[f.Handle] {
				if !referenced[fi.Handle] {
					add(Unreferenced, string(fi.Handle), f.Handle, "no manifest references this file, %s, last modified %s (age %s)",
						bytesize.Format(fi.Size), fi.ModTime.UTC().Format(time.RFC3339), age(now, fi.ModTime))
					rep.Ages[string(fi.Handle)] = UnreferencedItem{File: fi.Handle, ModTime: fi.ModTime, Size: fi.Size}
				}
			}
		}
	}
	rep.Sort()
	return rep, nil
}

func age(now, t time.Time) time.Duration {
	d := now.Sub(t).Truncate(time.Second)
	if d < 0 {
		return 0
	}
	return d
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

// countingReader counts the bytes the store returned.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

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

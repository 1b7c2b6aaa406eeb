package backup

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/ledgervault/ledgervault/format/native"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

// ResumeStateSnapshot continues an interrupted state snapshot backup in its own
// folder. Nothing but committed files is needed: chunk files are named by their
// first item index (state-<index>.zst, proofs state-<index>.proof), and a file is
// visible only once complete. Starting at each work unit's first item, the resumed
// attempt opens the chunk an earlier attempt wrote there, re-reads it (its records
// give the leaves the verifier needs, its bytes the size and SHA-256 for the
// manifest), reads its proof, reuses it and goes on at the item after its last;
// items no chunk covers are fetched and written. Every reused chunk is verified
// against the state root like a new one before the manifest is written.
//
// Every write is create-only, so the files of resumed attempt k carry the tag rk
// (state-<index>.rk.zst, state_root.rk.proof, manifest.rk.json); the root proof of
// each attempt marks it, and a later attempt lists the folder's committed files
// through the store (handles are the store's, never composed) and looks among them
// for chunks under every earlier attempt's names, newest first.

// MaxResumeAttempts bounds the attempts in one folder; beyond it a resume starts a
// new folder.
const MaxResumeAttempts = 64

// attempt is one state snapshot attempt: the names it writes and the files of
// earlier attempts in its folder that it may reuse. A fresh attempt (freshAttempt)
// has no folder yet, untagged names and nothing earlier to reuse.
type attempt struct {
	folder  storage.BackupHandle // "": create a new folder
	tag     string
	earlier []string           // tags of the earlier attempts, newest first ("" is the first)
	files   native.FolderFiles // the folder's committed files, as the store listed them
	reused  func(native.StateSnapshotChunk)

	mu    sync.Mutex
	count int
	bytes int64
}

// freshAttempt is the first attempt of a state snapshot, in a new folder.
func freshAttempt() *attempt { return &attempt{} }

// name returns the file name of this attempt: name with the attempt's tag before its
// extension (name itself for the first attempt).
func (a *attempt) name(name string) string { return native.Tagged(name, a.tag) }

// reuseRange reuses the chunks of earlier attempts from item first on, as long as
// they follow each other within [first, end). It returns them and the first item
// index not reused.
func (a *attempt) reuseRange(ctx context.Context, st storage.Store, first, end uint64, o *Options) ([]stateChunk, uint64, error) {
	var out []stateChunk
	idx := first
	for idx < end && len(a.earlier) > 0 {
		c, ok, err := a.reuse(ctx, st, idx, end, o)
		if err != nil {
			return nil, first, err
		}
		if !ok {
			break
		}
		out = append(out, c)
		idx = c.desc.LastIndex + 1
	}
	return out, idx, nil
}

// reuse looks for a chunk of an earlier attempt that starts at item idx, among the
// folder's listed files, and checks it. ok is false when there is none that checks
// out (the items are then written again); err is set only when ctx is done.
func (a *attempt) reuse(ctx context.Context, st storage.Store, idx, end uint64, o *Options) (stateChunk, bool, error) {
	for _, tag := range a.earlier {
		chunk, ok := a.files.Lookup(native.Tagged(native.StateChunkName(idx), tag))
		if !ok {
			continue
		}
		proof, ok := a.files.Lookup(native.Tagged(native.StateProofName(idx), tag))
		if !ok {
			continue // the attempt stopped between the chunk and its proof
		}
		c, err := check(ctx, st, chunk.Handle, proof.Handle, idx, end)
		if ctx.Err() != nil {
			return stateChunk{}, false, ctx.Err()
		}
		if errors.Is(err, storage.ErrNotFound) {
			continue
		}
		if err != nil {
			o.Logger.Warn("chunk of an interrupted attempt not reused", "chunk", chunk.Handle, "err", err)
			continue
		}
		a.mu.Lock()
		a.count++
		a.bytes += c.desc.Size + c.desc.Proof.Size
		a.mu.Unlock()
		if a.reused != nil {
			a.reused(c.desc)
		}
		if o.Progress != nil {
			o.Progress.Add(int64(len(c.leaves)), c.desc.RawSize, 0) // items done, nothing stored
		}
		return c, true, nil
	}
	return stateChunk{}, false, nil
}

// check re-reads a chunk and its proof and describes them for the manifest.
func check(ctx context.Context, st storage.Store, chunk, proofHandle storage.FileHandle, idx, end uint64) (stateChunk, error) {
	leaves, f, err := readStateChunk(ctx, st, chunk, end-idx)
	if err != nil {
		return stateChunk{}, err
	}
	proofBytes, err := readSmall(ctx, st, proofHandle, smt.MaxRangeProofSize)
	if err != nil {
		return stateChunk{}, err
	}
	proof, err := smt.DecodeRangeProof(proofBytes)
	if err != nil {
		return stateChunk{}, fmt.Errorf("proof %s: %w", proofHandle, err)
	}
	d := native.StateSnapshotChunk{
		FirstIndex: idx, LastIndex: idx + uint64(len(leaves)) - 1,
		FirstKeyHash: leaves[0].KeyHash, LastKeyHash: leaves[len(leaves)-1].KeyHash,
		File:  f,
		Proof: native.File{Handle: proofHandle, Size: int64(len(proofBytes)), RawSize: int64(len(proofBytes)), SHA256: sha256.Sum256(proofBytes)},
	}
	return stateChunk{desc: d, leaves: leaves, proof: proof}, nil
}

// readSmall reads a whole file of at most limit bytes.
func readSmall(ctx context.Context, st storage.Store, h storage.FileHandle, limit int) ([]byte, error) {
	r, err := st.Open(ctx, h)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return native.ReadLimited(r, limit, string(h))
}

// readStateChunk re-reads a committed state chunk of at most maxItems items and
// returns the leaves of its items and its description (size, raw size, SHA-256).
func readStateChunk(ctx context.Context, st storage.Store, h storage.FileHandle, maxItems uint64) ([]smt.Leaf, native.File, error) {
	r, err := st.Open(ctx, h)
	if err != nil {
		return nil, native.File{}, err
	}
	defer r.Close()
	return decodeStateChunk(ctx, r, h, maxItems)
}

// decodeStateChunk reads a state chunk file from r (see readStateChunk) through the
// format's chunk decoder.
func decodeStateChunk(ctx context.Context, r io.Reader, h storage.FileHandle, maxItems uint64) ([]smt.Leaf, native.File, error) {
	var leaves []smt.Leaf
	f, err := native.ScanChunk(ctx, r, h, native.Limits{}, func(rec []byte) error {
		if uint64(len(leaves)) == maxItems {
			return fmt.Errorf("more than %d items", maxItems)
		}
		k, v, err := records.SplitKeyValue(rec, ledger.MaxKeySize)
		if err != nil {
			return fmt.Errorf("item %d: %w", len(leaves), err)
		}
		leaves = append(leaves, smt.Leaf{KeyHash: smt.KeyHash(k), ValueHash: smt.ValueHash(v)})
		return nil
	})
	if err != nil {
		return nil, native.File{}, err
	}
	if len(leaves) == 0 {
		return nil, native.File{}, fmt.Errorf("chunk %s: no items", h)
	}
	return leaves, f, nil
}

// FindResumableStateSnapshot looks for the folder of an interrupted state snapshot
// backup of version: named state_snapshot_ver_<version>-..., not referenced by any
// metadata file, written to within maxAge. It returns the most recent one. Folders
// are matched by the format's name rule (native.IsStateSnapshotFolderOf) on the
// handles ListBackups returns. A store that cannot list folders yields an error
// matching storage.ErrNotSupported: the caller then starts afresh.
func FindResumableStateSnapshot(ctx context.Context, st storage.Store, version uint64, maxAge time.Duration) (storage.BackupHandle, bool, error) {
	infos, err := st.ListBackups(ctx)
	if err != nil {
		return "", false, fmt.Errorf("list backup folders: %w", err)
	}
	var cands []storage.BackupInfo
	for _, in := range infos {
		if native.IsStateSnapshotFolderOf(in.Handle, version) && time.Since(in.ModTime) <= maxAge {
			cands = append(cands, in)
		}
	}
	if len(cands) == 0 {
		return "", false, nil
	}
	// A folder referenced by metadata (its own file or a line of a compacted one) is
	// a completed backup, not to be touched.
	err = checkNotBackedUp(ctx, st, native.MetadataName(&native.Metadata{Type: native.TypeStateSnapshot, Version: version}))
	if errors.Is(err, ErrAlreadyBackedUp) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].ModTime.After(cands[j].ModTime) })
	return cands[0].Handle, true, nil
}

// Resumed says what a resumed state snapshot reused.
type Resumed struct {
	// Chunks is the number of chunks reused; Bytes their stored size with proofs.
	Chunks int
	Bytes  int64
}

// ResumeStateSnapshot continues the interrupted state snapshot backup of version in
// folder (found with FindResumableStateSnapshot): it lists the folder's committed
// files (storage.Store.ListFiles), reuses the chunks of earlier attempts that check
// out and writes the others; then the manifest and the metadata file are written as
// for StateSnapshot. reused, if not nil, is called for each chunk reused. A store
// that cannot list files yields an error matching storage.ErrNotSupported before
// anything is written: the caller then starts afresh with StateSnapshot.
func ResumeStateSnapshot(ctx context.Context, svc StateSource, st storage.Store, folder storage.BackupHandle, version uint64, opts Options, reused func(native.StateSnapshotChunk)) (*Result, Resumed, error) {
	if err := storage.ValidateHandle(string(folder)); err != nil {
		return nil, Resumed{}, fmt.Errorf("resume folder: %w", err)
	}
	listed, err := st.ListFiles(ctx, folder)
	if err != nil {
		return nil, Resumed{}, fmt.Errorf("resume folder %s: list its files: %w", folder, err)
	}
	a := &attempt{folder: folder, reused: reused, earlier: []string{""}, files: native.IndexFolder(listed)}
	// Attempt k >= 1 wrote state_root.rk.proof first; the first k not listed is ours.
	for k := 1; ; k++ {
		if k > MaxResumeAttempts {
			res, err := StateSnapshot(ctx, svc, st, version, opts)
			return res, Resumed{}, err
		}
		tag := native.AttemptTag(k)
		if _, ok := a.files.Lookup(native.Tagged(native.StateRootProofName, tag)); !ok {
			a.tag = tag
			break
		}
		a.earlier = append([]string{tag}, a.earlier...)
	}
	res, err := stateSnapshot(ctx, svc, st, version, opts, a)
	a.mu.Lock()
	defer a.mu.Unlock()
	return res, Resumed{Chunks: a.count, Bytes: a.bytes}, err
}

// reusedBytes is the stored size of the reused chunks and proofs.
func (a *attempt) reusedBytes() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.bytes
}

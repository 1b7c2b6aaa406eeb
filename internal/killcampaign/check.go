package killcampaign

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"github.com/ledgervault/ledgervault/format/native"

	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/storage"
)

// Limits of the storage check's decoders: files come from storage written by a
// process that was killed, so nothing in them is trusted.
// Chunk files are decoded by the format's chunk decoder, with its limits.
const (
	// maxSmallFile bounds proofs, leases and folder markers.
	maxSmallFile = 64 << 20
)

// metadataDir is the folder that holds metadata files in every layout checked here.
const metadataDir = "metadata"

// folderMarker is the object the object-store backends write into every backup folder.
const folderMarker = ".ledgervault-backup"

// StorageCheck is what a walk over every file of a store found.
type StorageCheck struct {
	// Files is the number of files under a final name that were checked.
	Files int
	// Partial counts files under a final name that are not complete: a chunk that does
	// not decode to its trailer, a manifest, metadata, proof or lease that does not
	// parse, or a manifest-listed file whose size or SHA-256 differs from the manifest.
	Partial int
	// Missing counts files a referenced manifest lists that are not in storage.
	Missing int
	// TempAsFinal counts handles in metadata or manifests that name a temporary file
	// (a name starting with a dot): a temporary file mistaken for a final one.
	TempAsFinal int
	// Temp counts temporary files present (not visible under a final name).
	Temp int
	// OpenUploads counts incomplete multipart uploads (object stores).
	OpenUploads int
	// Unknown counts files under a final name whose kind the check cannot tell from
	// the name (so it could not decode them); UnknownFiles names the first ones.
	Unknown      int
	UnknownFiles []string
	// Metadata counts metadata lines (backups made discoverable).
	Metadata int
	// Referenced and Unreferenced count backup folders with and without metadata.
	Referenced, Unreferenced int
	// Problems describes the first problems found.
	Problems []string
}

// Bad is the number of visible partial files the check found (partial, missing and
// temp-as-final files together).
func (c *StorageCheck) Bad() int { return c.Partial + c.Missing + c.TempAsFinal }

const maxProblems = 20

func (c *StorageCheck) problem(format string, args ...any) {
	if len(c.Problems) < maxProblems {
		c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
	}
}

// isTemp reports whether a file or folder name is temporary (hidden): every backend
// and configuration here writes temporary files under a name starting with a dot, and
// storage.ValidateName refuses such names for final files.
func isTemp(name string) bool { return strings.HasPrefix(name, ".") }

// checker checks a store again and again (after every kill). Files under a final name
// are immutable (create-only), so a file found complete once is not read again unless
// what is expected of it changes (a manifest that now references it).
type checker struct {
	st rawStore
	ok map[string]string // key -> what it was found to satisfy
}

func newChecker(st rawStore) *checker { return &checker{st: st, ok: map[string]string{}} }

// run walks every file of the store and checks that everything under a final name is
// complete (see StorageCheck).
func (ck *checker) run(ctx context.Context) (*StorageCheck, error) {
	return checkStorage(ctx, ck.st, ck.ok)
}

// CheckDir walks every file of the store kept in the local directory root (the
// layout of the local backend and of WriteShellConfig's commands) and checks that
// everything under a final name is complete (see StorageCheck).
func CheckDir(ctx context.Context, root string) (*StorageCheck, error) {
	return checkStorage(ctx, dirStore{root}, nil)
}

// checkStorage walks every file of st and checks that everything under a final name
// is complete (see StorageCheck). cache (may be nil) remembers files found complete.
func checkStorage(ctx context.Context, st rawStore, cache map[string]string) (*StorageCheck, error) {
	objs, err := st.list(ctx)
	if err != nil {
		return nil, err
	}
	c := &StorageCheck{}
	if c.OpenUploads, err = st.openUploads(ctx); err != nil {
		return nil, err
	}
	sizes := map[string]int64{}
	var metaKeys []string
	for _, o := range objs {
		sizes[o.Key] = o.Size
		dir, name := path.Split(o.Key)
		dir = strings.TrimSuffix(dir, "/")
		if dir == metadataDir && native.IsMetadataName(name) && !isTemp(name) {
			metaKeys = append(metaKeys, o.Key)
		}
	}
	sort.Strings(metaKeys)

	expected, referenced, err := readManifests(ctx, st, c, metaKeys, sizes)
	if err != nil {
		return nil, err
	}

	folders := map[string]bool{}
	for _, o := range objs {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		dir, name := path.Split(o.Key)
		dir = strings.TrimSuffix(dir, "/")
		top, _, _ := strings.Cut(o.Key, "/")
		switch {
		case isTemp(top) || isTemp(name) && name != folderMarker:
			c.Temp++
			continue
		case dir == "" || strings.Contains(dir, "/"):
			c.Partial++
			c.problem("unexpected file %s outside any backup folder", o.Key)
			continue
		}
		if dir != metadataDir {
			folders[dir] = true
		}
		c.Files++
		var err error
		f, ok := expected[o.Key]
		want := fmt.Sprintf("decoded %d", o.Size)
		if ok {
			want = fmt.Sprintf("matched %d %s", f.Size, f.SHA256)
		}
		if cache != nil && cache[o.Key] == want {
			continue
		}
		if ok {
			err = matchFile(ctx, st, o, f)
		} else {
			err = checkFile(ctx, st, o)
		}
		if errors.Is(err, errUnknownKind) {
			c.Unknown++
			if len(c.UnknownFiles) < maxProblems {
				c.UnknownFiles = append(c.UnknownFiles, o.Key)
			}
			continue
		}
		if err == nil && cache != nil {
			cache[o.Key] = want
		}
		if err != nil {
			c.Partial++
			c.problem("%s: %v", o.Key, err)
		}
	}
	for f := range folders {
		if referenced[f] {
			c.Referenced++
		} else {
			c.Unreferenced++
		}
	}
	return c, nil
}

// readManifests reads the metadata files metaKeys and the manifests they reference
// (sizes holds every file of st) and returns the files those manifests describe (key
// -> expected size and digest) and the referenced folders, counting what is missing
// or temporary in c.
func readManifests(ctx context.Context, st rawStore, c *StorageCheck, metaKeys []string, sizes map[string]int64) (expected map[string]native.File, referenced map[string]bool, err error) {
	expected = map[string]native.File{}
	referenced = map[string]bool{}
	for _, k := range metaKeys {
		b, err := readAll(ctx, st, k, native.MaxMetadataSize)
		if err != nil {
			return nil, nil, err
		}
		lines, err := native.DecodeMetadataFile(k, b)
		if err != nil {
			continue // counted with the other files below
		}
		for _, m := range lines {
			c.Metadata++
			mh := string(m.Manifest)
			folder := path.Dir(mh)
			if isTemp(path.Base(mh)) || isTemp(folder) {
				c.TempAsFinal++
				c.problem("metadata %s names a temporary manifest %s", k, mh)
			}
			if referenced[folder] {
				continue
			}
			referenced[folder] = true
			if _, ok := sizes[mh]; !ok {
				c.Missing++
				c.problem("metadata %s: manifest %s missing", k, mh)
				continue
			}
			files, err := manifestFiles(ctx, st, m.Type, mh)
			if err != nil {
				c.Partial++
				c.problem("manifest %s: %v", mh, err)
				continue
			}
			for _, f := range files {
				h := string(f.Handle)
				if isTemp(path.Base(h)) {
					c.TempAsFinal++
					c.problem("manifest %s lists a temporary file %s", mh, h)
				}
				if _, ok := sizes[h]; !ok {
					c.Missing++
					c.problem("manifest %s: file %s missing", mh, h)
					continue
				}
				expected[h] = f
			}
		}
	}
	return expected, referenced, nil
}

// manifestFiles reads and decodes a manifest and returns every file it lists.
func manifestFiles(ctx context.Context, st rawStore, typ, key string) ([]native.File, error) {
	b, err := readAll(ctx, st, key, native.MaxManifestSize)
	if err != nil {
		return nil, err
	}
	var files []native.File
	switch typ {
	case native.TypeEpochEnding:
		m, err := native.DecodeEpochEnding(b)
		if err != nil {
			return nil, err
		}
		for _, c := range m.Chunks {
			files = append(files, c.File)
		}
	case native.TypeStateSnapshot:
		m, err := native.DecodeStateSnapshot(b)
		if err != nil {
			return nil, err
		}
		files = append(files, m.RootProof)
		for _, c := range m.Chunks {
			files = append(files, c.File, c.Proof)
		}
	case native.TypeTransaction:
		m, err := native.DecodeTransaction(b)
		if err != nil {
			return nil, err
		}
		for _, c := range m.Chunks {
			files = append(files, c.File, c.Proof)
		}
	default:
		return nil, fmt.Errorf("unknown backup type %q", typ)
	}
	return files, nil
}

// matchFile checks a manifest-listed file's size and SHA-256.
func matchFile(ctx context.Context, st rawStore, o rawObject, f native.File) error {
	if o.Size != f.Size {
		return fmt.Errorf("size %d, manifest says %d", o.Size, f.Size)
	}
	r, err := st.open(ctx, o.Key)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, io.LimitReader(r, f.Size+1))
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if n != f.Size {
		return fmt.Errorf("read %d bytes, manifest says %d", n, f.Size)
	}
	if got := native.Digest(h.Sum(nil)); got != f.SHA256 {
		return fmt.Errorf("sha256 %s, manifest says %s", got, f.SHA256)
	}
	return nil
}

// checkFile checks a file no referenced manifest describes by decoding it fully. It
// returns errUnknownKind for a file whose kind it cannot tell from its name.
func checkFile(ctx context.Context, st rawStore, o rawObject) error {
	name := path.Base(o.Key)
	if native.IsChunkName(name) {
		if o.Size > native.DefaultMaxStoredSize {
			return fmt.Errorf("chunk of %d bytes exceeds the limit of %d", o.Size, native.DefaultMaxStoredSize)
		}
		r, err := st.open(ctx, o.Key)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = decodeChunk(ctx, r, o.Key)
		return err
	}
	b, err := readAll(ctx, st, o.Key, native.MaxManifestSize)
	if err != nil {
		return err
	}
	return checkSmallFile(path.Base(path.Dir(o.Key)), name, b)
}

// errUnknownKind reports a file whose kind the check cannot tell from its name.
var errUnknownKind = errors.New("unknown kind of file")

// checkSmallFile decodes a non-chunk file by its name: metadata, lease, folder
// marker, manifest or proof. folder is the name of the folder holding it. A resumed
// attempt's files carry a tag between the base name and the extension
// (manifest.r1.json, state_root.r1.proof): native.KindOf reads the kind from the
// part before the first dot and the extension.
func checkSmallFile(folder, name string, b []byte) error {
	switch {
	case folder == metadataDir && native.IsMetadataName(name):
		_, err := native.DecodeMetadataFile(name, b)
		return err
	case folder == metadataDir && strings.HasSuffix(name, native.LeaseSuffix), name == folderMarker:
		if len(b) > maxSmallFile || !json.Valid(b) {
			return errors.New("not one complete JSON value")
		}
		return nil
	case folder == metadataDir:
		return errUnknownKind
	}
	switch native.KindOf(name) {
	case native.KindManifest:
		_, err1 := native.DecodeEpochEnding(b)
		_, err2 := native.DecodeStateSnapshot(b)
		_, err3 := native.DecodeTransaction(b)
		if err1 != nil && err2 != nil && err3 != nil {
			return fmt.Errorf("not a complete manifest: %w", firstRelevant(b, err1, err2, err3))
		}
		return nil
	case native.KindStateRootProof:
		_, err := proof.DecodeStateRoot(b)
		return err
	case native.KindStateProof:
		if len(b) > smt.MaxRangeProofSize {
			return fmt.Errorf("range proof of %d bytes exceeds %d", len(b), smt.MaxRangeProofSize)
		}
		_, err := smt.DecodeRangeProof(b)
		return err
	case native.KindTransactionProof:
		_, err := proof.DecodeTransactionRange(b)
		return err
	default:
		return errUnknownKind
	}
}

// firstRelevant picks the manifest decoding error of the type the file claims to be.
func firstRelevant(b []byte, eEpoch, eState, eTxn error) error {
	switch {
	case bytes.Contains(b, []byte(`"root_hash"`)):
		return eState
	case bytes.Contains(b, []byte(`"waypoints"`)):
		return eEpoch
	default:
		return eTxn
	}
}

// decodeChunk decodes the chunk key with the format's chunk decoder, to its trailer;
// it returns the number of records.
func decodeChunk(ctx context.Context, r io.Reader, key string) (uint64, error) {
	var n uint64
	_, err := native.ScanChunk(ctx, r, storage.FileHandle(key), native.Limits{}, func([]byte) error {
		n++
		return nil
	})
	return n, err
}

// readAll reads a whole file of at most limit bytes.
func readAll(ctx context.Context, st rawStore, key string, limit int) ([]byte, error) {
	r, err := st.open(ctx, key)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return native.ReadLimited(r, limit, key)
}

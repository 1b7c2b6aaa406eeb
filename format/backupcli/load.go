package backupcli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"golang.org/x/sync/errgroup"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/storage"
)

// DefaultConcurrency is how many files the loader reads at once.
const DefaultConcurrency = 8

// Source is what reading a store needs: storage.Store satisfies it.
type Source interface {
	Open(ctx context.Context, h storage.FileHandle) (io.ReadCloser, error)
	ListMetadata(ctx context.Context) ([]storage.FileHandle, error)
}

// MetadataFile is one metadata file as read.
type MetadataFile struct {
	Handle storage.FileHandle
	// Size is how many bytes the store returned (after any gzip layer of its own).
	Size int64
	// Gzipped says the file carried a gzip layer that was removed here.
	Gzipped bool
	// Lines are the decoded lines (nil when Err is set).
	Lines []Metadata
	// Err says why the file did not decode: an error matching ErrPartial, ErrCorrupt,
	// ErrTooLarge or ErrInvalid (a *MetadataError names the line), or
	// storage.ErrNotFound when it vanished after the listing.
	Err error
}

// LoadOptions tune LoadMetadata; zero fields take the defaults.
type LoadOptions struct {
	// Concurrency bounds the files read at once.
	Concurrency int
}

// LoadMetadata lists the store's metadata files and reads and decodes each, at most
// o.Concurrency at once, in listing order (sorted by handle). A file that does not
// decode is returned with its Err set; a storage failure (not a decoding one) stops
// the load and is returned.
func LoadMetadata(ctx context.Context, src Source, o LoadOptions) ([]MetadataFile, error) {
	hs, err := src.ListMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("list metadata: %w", err)
	}
	sort.Slice(hs, func(i, j int) bool { return hs[i] < hs[j] })
	files := make([]MetadataFile, len(hs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(o.Concurrency))
	for i, h := range hs {
		files[i].Handle = h
		g.Go(func() error {
			return readMetadataFile(gctx, src, &files[i])
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return files, nil
}

func concurrency(n int) int {
	if n <= 0 {
		return DefaultConcurrency
	}
	return n
}

func readMetadataFile(ctx context.Context, src Source, f *MetadataFile) error {
	if err := storage.ValidateHandle(string(f.Handle)); err != nil {
		f.Err = fmt.Errorf("%w: listed metadata handle: %v", ErrInvalid, err)
		return nil
	}
	data, gz, err := ReadFile(ctx, src, f.Handle, MaxMetadataFileSize)
	f.Size, f.Gzipped = int64(len(data)), gz
	if err != nil {
		if IsDecodeError(err) || errors.Is(err, storage.ErrNotFound) {
			f.Err = err
			return nil
		}
		return err
	}
	f.Lines, f.Err = DecodeMetadataFile(f.Handle, data)
	return nil
}

// ReadFile reads a whole small file (a metadata file or a manifest) through the gzip
// layer, at most max bytes of it. Errors name the file.
func ReadFile(ctx context.Context, src Source, h storage.FileHandle, max int64) (data []byte, gzipped bool, err error) {
	rc, err := src.Open(ctx, h)
	if err != nil {
		return nil, false, fmt.Errorf("open %s: %w", h, err)
	}
	defer rc.Close()
	r, gz, err := Decompress(rc, max+1)
	if err != nil {
		return nil, gz, fmt.Errorf("read %s: %w", h, err)
	}
	data, err = io.ReadAll(io.LimitReader(r, max+1))
	if err == nil && int64(len(data)) > max {
		err = fmt.Errorf("%w: larger than %d bytes", ErrTooLarge, max)
	}
	if err == nil {
		err = rc.Close()
	}
	if err != nil {
		return data, gz, fmt.Errorf("read %s: %w", h, err)
	}
	return data, gz, nil
}

// gzipMessages are what `gzip -cd` prints for a stream that does not decode; a read
// command of a command adapter that fails with one of them read a damaged file.
var gzipMessages = []string{
	"unexpected end of file", "crc error", "invalid compressed data", "not in gzip format",
	"trailing garbage", "format violated", "length error", "corrupt input",
}

// IsDecodeError reports whether err says that a file's content does not decode (as
// opposed to the store failing to deliver it): a truncated or corrupt gzip stream,
// framing, a limit, invalid data, or a command adapter's read command failing with
// one of gzip's decoding messages on stderr (the operator's `gzip -cd` found the file
// damaged).
func IsDecodeError(err error) bool {
	if errors.Is(err, ErrPartial) || errors.Is(err, ErrCorrupt) || errors.Is(err, ErrTooLarge) || errors.Is(err, ErrInvalid) {
		return true
	}
	var me *MetadataError
	if errors.As(err, &me) {
		return true
	}
	var ee *proc.ExitError
	if errors.As(err, &ee) && !ee.Killed && !errors.Is(err, storage.ErrNotFound) {
		s := strings.ToLower(ee.Stderr)
		for _, m := range gzipMessages {
			if strings.Contains(s, m) {
				return true
			}
		}
	}
	return false
}

// BackupType names the three backup types, as ledgervault's own listing does.
const (
	TypeEpochEnding   = "epoch_ending"
	TypeStateSnapshot = "state_snapshot"
	TypeTransaction   = "transaction"
)

// Backup is one backup a metadata line describes.
type Backup struct {
	// Type is TypeEpochEnding, TypeStateSnapshot or TypeTransaction.
	Type string
	// First and Last are the range: epochs for epoch endings, versions for
	// transactions, the version twice for state snapshots.
	First, Last uint64
	// FirstVersion and LastVersion are an epoch-ending backup's ledger info versions.
	FirstVersion, LastVersion uint64
	// Epoch is a state snapshot's epoch (nil in the Diem 1.x generation).
	Epoch *uint64
	// Manifest is the manifest's handle; Folder its backup folder (first segment).
	Manifest storage.FileHandle
	Folder   storage.BackupHandle
	// MetadataFile is the file the line came from.
	MetadataFile storage.FileHandle
}

// Key identifies what a backup covers, for finding duplicates.
func (b *Backup) Key() string { return fmt.Sprintf("%s/%d-%d", b.Type, b.First, b.Last) }

// FolderOf returns the backup folder of a file handle: its first segment, as
// backup-cli names files "<folder>/<name>".
func FolderOf(h storage.FileHandle) storage.BackupHandle {
	s := string(h)
	if i := strings.IndexByte(s, '/'); i >= 0 {
		return storage.BackupHandle(s[:i])
	}
	return storage.BackupHandle(path.Clean(s))
}

// Gap is a range no backup of a type covers, between covered ranges.
type Gap struct {
	Type        string
	First, Last uint64
}

// View is a store's metadata, typed: every backup (duplicates too), the distinct
// backups by type and range, the duplicates, the gaps, and the other lines.
type View struct {
	Files []MetadataFile
	// All holds every backup line in file order.
	All []Backup
	// Backups holds one backup per distinct type and range (the first seen), sorted by
	// type and range; Duplicates the lines describing one already in Backups.
	Backups    []Backup
	Duplicates []Backup
	Gaps       []Gap
	// Identities are the Identity lines' ids; Compactions counts CompactionTimestamps
	// lines.
	Identities  []string
	Compactions int
	// Manifests holds every distinct manifest the lines name, sorted by handle; only
	// Load fills it.
	Manifests []ManifestFile
}

// ManifestFile is one manifest as read.
type ManifestFile struct {
	Handle storage.FileHandle
	// Lines are the metadata lines naming it (the first decides its type).
	Lines []*Backup
	// Size is how many bytes the store returned.
	Size int64
	// Manifest is the decoded manifest (nil when Err is set).
	Manifest *Manifest
	// Err says why it could not be decoded: storage.ErrNotFound when absent,
	// storage.ErrInvalidName when the store cannot hold such a handle, else an error
	// matching ErrPartial, ErrCorrupt, ErrTooLarge or ErrInvalid.
	Err error
}

// Load reads a store's metadata (LoadMetadata) and every manifest the lines name,
// at most o.Concurrency files at once, into a view. Files that do not decode are in
// the view with their Err; a storage failure stops the load and is returned.
func Load(ctx context.Context, src Source, o LoadOptions) (*View, error) {
	files, err := LoadMetadata(ctx, src, o)
	if err != nil {
		return nil, err
	}
	v := NewView(files)
	idx := map[storage.FileHandle]int{}
	for i := range v.All {
		b := &v.All[i]
		j, ok := idx[b.Manifest]
		if !ok {
			j = len(v.Manifests)
			idx[b.Manifest] = j
			v.Manifests = append(v.Manifests, ManifestFile{Handle: b.Manifest})
		}
		v.Manifests[j].Lines = append(v.Manifests[j].Lines, b)
	}
	sort.Slice(v.Manifests, func(i, j int) bool { return v.Manifests[i].Handle < v.Manifests[j].Handle })
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(concurrency(o.Concurrency))
	for i := range v.Manifests {
		g.Go(func() error { return readManifest(gctx, src, &v.Manifests[i]) })
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return v, nil
}

func readManifest(ctx context.Context, src Source, m *ManifestFile) error {
	data, _, err := ReadFile(ctx, src, m.Handle, MaxManifestSize)
	m.Size = int64(len(data))
	switch {
	case err != nil && (errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrInvalidName) || IsDecodeError(err)):
		m.Err = err
	case err != nil:
		return err
	case len(data) == 0:
		m.Err = fmt.Errorf("%w: zero-length manifest", ErrPartial)
	default:
		m.Manifest, m.Err = DecodeManifest(m.Lines[0].Type, data)
	}
	return nil
}

// NewView builds the view of decoded metadata files (files with Err are skipped:
// the caller decides what an undecodable file means).
func NewView(files []MetadataFile) *View {
	v := &View{Files: files}
	for _, f := range files {
		for _, m := range f.Lines {
			b, ok := backupOf(m)
			if !ok {
				switch m.Kind {
				case KindIdentity:
					v.Identities = append(v.Identities, m.Identity.ID)
				case KindCompactionTimestamps:
					v.Compactions++
				}
				continue
			}
			b.MetadataFile = f.Handle
			v.All = append(v.All, b)
		}
	}
	seen := map[string]bool{}
	for _, b := range v.All {
		if seen[b.Key()] {
			v.Duplicates = append(v.Duplicates, b)
			continue
		}
		seen[b.Key()] = true
		v.Backups = append(v.Backups, b)
	}
	sort.SliceStable(v.Backups, func(i, j int) bool {
		a, b := v.Backups[i], v.Backups[j]
		if a.Type != b.Type {
			return a.Type < b.Type
		}
		if a.First != b.First {
			return a.First < b.First
		}
		return a.Last < b.Last
	})
	for _, typ := range []string{TypeEpochEnding, TypeTransaction} {
		var next uint64 // first epoch or version not yet covered
		for _, b := range v.Backups {
			if b.Type != typ {
				continue
			}
			if b.First > next {
				v.Gaps = append(v.Gaps, Gap{Type: typ, First: next, Last: b.First - 1})
			}
			if b.Last+1 > next {
				next = b.Last + 1
			}
		}
	}
	return v
}

func backupOf(m Metadata) (Backup, bool) {
	var b Backup
	switch m.Kind {
	case KindEpochEnding:
		e := m.EpochEnding
		b = Backup{Type: TypeEpochEnding, First: e.FirstEpoch, Last: e.LastEpoch, FirstVersion: e.FirstVersion, LastVersion: e.LastVersion, Manifest: e.Manifest}
	case KindStateSnapshot:
		s := m.StateSnapshot
		b = Backup{Type: TypeStateSnapshot, First: s.Version, Last: s.Version, Epoch: s.Epoch, Manifest: s.Manifest}
	case KindTransaction:
		t := m.Transaction
		b = Backup{Type: TypeTransaction, First: t.FirstVersion, Last: t.LastVersion, Manifest: t.Manifest}
	default:
		return b, false
	}
	b.Folder = FolderOf(b.Manifest)
	return b, true
}

// Manifest is a decoded manifest of one of the three types; exactly the field of
// Type is set.
type Manifest struct {
	Type          string
	EpochEnding   *EpochEndingManifest
	StateSnapshot *StateSnapshotManifest
	Transaction   *TransactionManifest
}

// DecodeManifest decodes a manifest of the given backup type.
func DecodeManifest(typ string, b []byte) (*Manifest, error) {
	m := &Manifest{Type: typ}
	var err error
	switch typ {
	case TypeEpochEnding:
		m.EpochEnding, err = DecodeEpochEndingManifest(b)
	case TypeStateSnapshot:
		m.StateSnapshot, err = DecodeStateSnapshotManifest(b)
	case TypeTransaction:
		m.Transaction, err = DecodeTransactionManifest(b)
	default:
		return nil, fmt.Errorf("%w: backup type %q", ErrInvalid, typ)
	}
	if err != nil {
		return nil, err
	}
	return m, nil
}

// Files returns every file handle the manifest references, in manifest order.
func (m *Manifest) Files() []storage.FileHandle {
	var out []storage.FileHandle
	switch {
	case m.EpochEnding != nil:
		for _, c := range m.EpochEnding.Chunks {
			out = append(out, c.LedgerInfos)
		}
	case m.StateSnapshot != nil:
		for _, c := range m.StateSnapshot.Chunks {
			out = append(out, c.Blobs, c.Proof)
		}
		out = append(out, m.StateSnapshot.Proof)
	case m.Transaction != nil:
		for _, c := range m.Transaction.Chunks {
			out = append(out, c.Transactions, c.Proof)
		}
	}
	return out
}

// Verify checks the manifest in itself (its chunks tile its range).
func (m *Manifest) Verify() error {
	switch {
	case m.EpochEnding != nil:
		return m.EpochEnding.Verify()
	case m.StateSnapshot != nil:
		return m.StateSnapshot.Verify()
	case m.Transaction != nil:
		return m.Transaction.Verify()
	}
	return manifestErrorf("empty manifest")
}

// CheckAgainst checks that the manifest covers exactly what metadata line b says.
func (m *Manifest) CheckAgainst(b *Backup) error {
	switch {
	case m.EpochEnding != nil:
		e := m.EpochEnding
		if e.FirstEpoch != b.First || e.LastEpoch != b.Last {
			return manifestErrorf("manifest epochs [%d, %d], metadata %s says [%d, %d]", e.FirstEpoch, e.LastEpoch, b.MetadataFile, b.First, b.Last)
		}
		if n := len(e.Waypoints); n > 0 && (e.Waypoints[0].Version != b.FirstVersion || e.Waypoints[n-1].Version != b.LastVersion) {
			return manifestErrorf("manifest waypoints at versions %d..%d, metadata %s says %d..%d", e.Waypoints[0].Version, e.Waypoints[n-1].Version, b.MetadataFile, b.FirstVersion, b.LastVersion)
		}
	case m.StateSnapshot != nil:
		s := m.StateSnapshot
		if s.Version != b.First {
			return manifestErrorf("manifest version %d, metadata %s says %d", s.Version, b.MetadataFile, b.First)
		}
		if s.Epoch != nil && b.Epoch != nil && *s.Epoch != *b.Epoch {
			return manifestErrorf("manifest epoch %d, metadata %s says %d", *s.Epoch, b.MetadataFile, *b.Epoch)
		}
	case m.Transaction != nil:
		t := m.Transaction
		if t.FirstVersion != b.First || t.LastVersion != b.Last {
			return manifestErrorf("manifest versions [%d, %d], metadata %s says [%d, %d]", t.FirstVersion, t.LastVersion, b.MetadataFile, b.First, b.Last)
		}
	}
	return nil
}

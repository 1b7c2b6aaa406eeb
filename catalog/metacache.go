// Package catalog is what a backup store holds, as its metadata says: the metadata
// files read through a verified local cache (this file) and the inventory built from
// them (inventory.go, plan.go): backups of each type with their ranges and sizes, the
// gaps between them, and restore plans.
//
// Metadata files are read optionally through a local cache directory so that
// planning a restore does not download every metadata file again.
//
// Metadata files are create-only and immutable, so a cached copy never needs
// refreshing; it only has to be dropped once its file is no longer listed (compacted
// or removed). Storage stays the source of truth: every cached copy is checked (header,
// handle, checksum, decode) when read, and one that fails the check is deleted and
// downloaded again.
//
// One cache directory belongs to one store: the cache is keyed by file handle, and two
// stores can use the same handles for different files.
package catalog

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"golang.org/x/sync/errgroup"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

// Entry is one metadata line and the metadata file it came from.
type Entry struct {
	native.Metadata
	// File is the handle of the metadata file that holds the line.
	File storage.FileHandle
}

// Concurrency is the most metadata files downloaded at once.
const Concurrency = 8

// staleTempAge is how old a leftover temporary cache file must be before Load removes
// it (younger ones may belong to another process writing the same cache).
const staleTempAge = time.Hour

// header starts every cache file: magic, checksum of the body, escaped handle.
const magic = "ledgervault-metacache-v1"

// Load lists the metadata files of st and returns their lines. With dir != "" it keeps
// a local cache there: files already cached are read from disk, new ones downloaded
// (concurrently, bounded) and written atomically, cached files no longer in storage
// removed. A malformed metadata file is an error naming it. Entries come in the order
// of the sorted file handles, lines in file order.
//
// A file that was listed but is gone when read (metadata compaction deletes small
// files once a compacted file holding their lines exists) makes Load list again, up
// to MaxRelists times, rather than fail or drop lines.
func LoadEntries(ctx context.Context, st storage.Store, dir string) ([]Entry, error) {
	for attempt := 0; ; attempt++ {
		out, err := load(ctx, st, dir)
		if err == nil || !errors.Is(err, storage.ErrNotFound) || attempt == MaxRelists || ctx.Err() != nil {
			return out, err
		}
	}
}

// MaxRelists bounds how often Load lists again after a listed file vanished.
const MaxRelists = 5

func load(ctx context.Context, st storage.Store, dir string) ([]Entry, error) {
	hs, err := st.ListMetadata(ctx)
	if err != nil {
		return nil, fmt.Errorf("list metadata: %w", err)
	}
	var files []storage.FileHandle
	seen := make(map[storage.FileHandle]bool, len(hs))
	for _, h := range hs {
		if !native.IsMetadataName(string(h)) {
			continue
		}
		if err := storage.ValidateHandle(string(h)); err != nil {
			return nil, fmt.Errorf("metadata handle %q: %w", h, err)
		}
		if seen[h] {
			continue
		}
		seen[h] = true
		files = append(files, h)
	}
	sort.Slice(files, func(i, j int) bool { return files[i] < files[j] })

	var c *cache
	if dir != "" {
		if c, err = openCache(dir); err != nil {
			return nil, err
		}
	}
	lines := make([][]native.Metadata, len(files))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(Concurrency)
	for i, h := range files {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error {
			ms, err := loadFile(gctx, st, c, h)
			if err != nil {
				return err
			}
			lines[i] = ms
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if c != nil {
		if err := c.prune(files); err != nil {
			return nil, err
		}
	}
	var out []Entry
	for i, ms := range lines {
		for _, m := range ms {
			out = append(out, Entry{Metadata: m, File: files[i]})
		}
	}
	return out, nil
}

// loadFile returns the lines of one metadata file, from the cache when it holds a
// sound copy, else from storage (caching what it downloaded).
func loadFile(ctx context.Context, st storage.Store, c *cache, h storage.FileHandle) ([]native.Metadata, error) {
	if c != nil {
		if ms, ok := c.get(h); ok {
			return ms, nil
		}
	}
	ms, b, err := native.ReadMetadataFile(ctx, st, h)
	if err != nil {
		return nil, err
	}
	if c != nil {
		if err := c.put(h, b); err != nil {
			return nil, err
		}
	}
	return ms, nil
}

// cache is a directory of verified copies of metadata files.
type cache struct{ dir string }

func openCache(dir string) (*cache, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metadata cache directory %s: %w", dir, err)
	}
	return &cache{dir: dir}, nil
}

// fileName is the cache file of handle h: a hash, so that no handle can name a path
// outside the directory or exceed the file name limit.
func fileName(h storage.FileHandle) string {
	sum := sha256.Sum256([]byte(h))
	return hex.EncodeToString(sum[:]) + native.MetadataSuffix
}

// encode returns the cache file for the bytes b of metadata file h.
func encode(h storage.FileHandle, b []byte) []byte {
	sum := sha256.Sum256(b)
	out := make([]byte, 0, len(b)+len(magic)+len(h)+80)
	out = fmt.Appendf(out, "%s %s %s\n", magic, hex.EncodeToString(sum[:]), url.QueryEscape(string(h)))
	return append(out, b...)
}

// decode checks a cache file (header, handle, checksum) and decodes its body.
func decode(h storage.FileHandle, f []byte) ([]native.Metadata, error) {
	nl := bytes.IndexByte(f, '\n')
	if nl < 0 {
		return nil, errors.New("no header")
	}
	fields := strings.Fields(string(f[:nl]))
	if len(fields) != 3 || fields[0] != magic {
		return nil, errors.New("bad header")
	}
	if name, err := url.QueryUnescape(fields[2]); err != nil || name != string(h) {
		return nil, fmt.Errorf("cached for handle %q", fields[2])
	}
	body := f[nl+1:]
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != fields[1] {
		return nil, errors.New("checksum mismatch")
	}
	return native.DecodeMetadataFile(string(h), body)
}

// get returns the cached lines of h; a missing, unreadable or unsound copy is a miss
// (and an unsound one is deleted).
func (c *cache) get(h storage.FileHandle) ([]native.Metadata, bool) {
	p := filepath.Join(c.dir, fileName(h))
	f, err := os.Open(p)
	if err != nil {
		return nil, false
	}
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		// Not ours to delete; put reports it when it cannot replace it.
		f.Close()
		return nil, false
	}
	b, err := native.ReadLimited(f, native.MaxMetadataSize+len(magic)+3*storage.MaxHandleLen+80, p)
	f.Close()
	if err == nil {
		var ms []native.Metadata
		if ms, err = decode(h, b); err == nil {
			return ms, true
		}
	}
	// Storage is the source of truth: drop the bad copy, the caller downloads again.
	_ = os.Remove(p)
	return nil, false
}

// put stores the bytes b of metadata file h atomically.
func (c *cache) put(h storage.FileHandle, b []byte) error {
	p := filepath.Join(c.dir, fileName(h))
	if err := renameio.WriteFile(p, encode(h, b), 0o644); err != nil {
		return fmt.Errorf("cache metadata %s: %w", h, err)
	}
	return nil
}

// prune removes the cached copies of files not in keep, and temporary files left by
// interrupted writes once they are old enough to belong to no running process.
func (c *cache) prune(keep []storage.FileHandle) error {
	want := make(map[string]bool, len(keep))
	for _, h := range keep {
		want[fileName(h)] = true
	}
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("metadata cache directory %s: %w", c.dir, err)
	}
	for _, e := range ents {
		name := e.Name()
		var remove bool
		switch {
		case isCacheName(name):
			remove = !want[name]
		case strings.HasPrefix(name, ".") && len(name) > 1+cacheNameLen && isCacheName(name[1:1+cacheNameLen]):
			info, err := e.Info()
			remove = err == nil && time.Since(info.ModTime()) > staleTempAge
		}
		if !remove || !e.Type().IsRegular() {
			continue
		}
		if err := os.Remove(filepath.Join(c.dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("remove stale metadata cache file: %w", err)
		}
	}
	return nil
}

const cacheNameLen = 2*sha256.Size + len(native.MetadataSuffix)

// isCacheName reports whether name is a cache file name (hex hash + native.MetadataSuffix).
func isCacheName(name string) bool {
	if len(name) != cacheNameLen || !strings.HasSuffix(name, native.MetadataSuffix) {
		return false
	}
	for _, c := range name[:2*sha256.Size] {
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

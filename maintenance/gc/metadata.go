package gc

import (
	"context"
	"errors"
	"fmt"
	"path"
	"sync"

	"golang.org/x/sync/errgroup"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

// maxRelists bounds how often a metadata read restarts because a listed file vanished
// before it was read (compaction removed it; its lines are in a compacted file that a
// fresh listing shows).
const maxRelists = 5

// readConcurrency bounds the metadata files read at once.
const readConcurrency = 8

// references is what GC knows from metadata: the files read so far and the backup
// folders their lines reference. Metadata files are create-only and immutable, so a
// file once read never needs reading again; a refresh reads only new names.
type references struct {
	files   map[storage.FileHandle]bool
	folders map[storage.BackupHandle]bool
}

func newReferences() *references {
	return &references{files: map[storage.FileHandle]bool{}, folders: map[storage.BackupHandle]bool{}}
}

// refresh lists metadata and reads every file not read before. A file that fails to
// read or decode is an error naming it: the caller must not delete anything on
// partial knowledge. A file listed and then gone (ErrNotFound) restarts the listing,
// because whatever removed it (compaction) keeps its lines in a file that exists.
// It returns the number of new files read.
func (r *references) refresh(ctx context.Context, st storage.Store) (int, error) {
	read := 0
	for attempt := 0; ; attempt++ {
		hs, err := st.ListMetadata(ctx)
		if err != nil {
			return read, fmt.Errorf("list metadata: %w", err)
		}
		var fresh []storage.FileHandle
		for _, h := range hs {
			if native.IsMetadataName(string(h)) && !r.files[h] {
				fresh = append(fresh, h)
			}
		}
		vanished, err := r.readFiles(ctx, st, fresh)
		read += len(fresh) - len(vanished)
		if err != nil {
			return read, err
		}
		if len(vanished) == 0 {
			return read, nil
		}
		if attempt+1 >= maxRelists {
			return read, fmt.Errorf("read metadata: %s and %d more vanished between listing and reading %d times in a row; metadata keeps changing, not deleting anything", vanished[0], len(vanished)-1, maxRelists)
		}
	}
}

// readFiles reads and decodes hs concurrently, recording their folders. It returns
// the handles that were listed but no longer exist.
func (r *references) readFiles(ctx context.Context, st storage.Store, hs []storage.FileHandle) ([]storage.FileHandle, error) {
	var mu sync.Mutex
	var vanished []storage.FileHandle
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(readConcurrency)
	for _, h := range hs {
		g.Go(func() error {
			ms, _, err := native.ReadMetadataFile(gctx, st, h)
			mu.Lock()
			defer mu.Unlock()
			if errors.Is(err, storage.ErrNotFound) {
				vanished = append(vanished, h)
				return nil
			}
			if err != nil {
				return err
			}
			r.files[h] = true
			// The metadata folder itself is never garbage, whatever a backend lists.
			r.folders[folderOf(h)] = true
			for _, m := range ms {
				r.folders[folderOf(m.Manifest)] = true
			}
			return nil
		})
	}
	err := g.Wait()
	return vanished, err
}

// folderOf returns the backup folder of a manifest handle.
func folderOf(h storage.FileHandle) storage.BackupHandle {
	return storage.BackupHandle(path.Dir(string(h)))
}

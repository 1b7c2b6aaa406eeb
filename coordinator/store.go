package coordinator

import (
	"context"
	"sync"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

// meteredStore counts what is committed to the store it wraps: bytes of every
// committed file and metadata file, and chunk files (names ending in .zst).
type meteredStore struct {
	storage.Store
	m *Metrics
}

func (s meteredStore) Create(ctx context.Context, b storage.BackupHandle, name string) (storage.Writer, error) {
	w, err := s.Store.Create(ctx, b, name)
	if err != nil {
		return nil, err
	}
	return &meteredWriter{Writer: w, m: s.m, chunk: native.IsChunkName(name)}, nil
}

func (s meteredStore) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	h, err := s.Store.SaveMetadata(ctx, name, data)
	if err == nil {
		s.m.bytesWritten.Add(float64(len(data)))
	}
	return h, err
}

type meteredWriter struct {
	storage.Writer
	m     *Metrics
	chunk bool

	mu      sync.Mutex
	n       int64
	counted bool
}

func (w *meteredWriter) Write(p []byte) (int, error) {
	n, err := w.Writer.Write(p)
	w.mu.Lock()
	w.n += int64(n)
	w.mu.Unlock()
	return n, err
}

func (w *meteredWriter) Commit() error {
	if err := w.Writer.Commit(); err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.counted {
		w.counted = true
		w.m.bytesWritten.Add(float64(w.n))
		if w.chunk {
			w.m.chunksWritten.Inc()
		}
	}
	return nil
}

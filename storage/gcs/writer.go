package gcs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"

	gcs "cloud.google.com/go/storage"

	"github.com/ledgervault/ledgervault/storage"
)

// errClosed reports a write to a writer that was committed or aborted.
var errClosed = errors.New("writer is closed")

// writer wraps a GCS resumable upload whose context is cancelled before it is
// closed on every path but Commit.
type writer struct {
	ctx    context.Context // the caller's
	cancel context.CancelFunc
	w      *gcs.Writer
	handle storage.FileHandle

	mu     sync.Mutex
	done   bool  // committed or aborted
	opened bool  // a Write reached the GCS writer, which then runs a goroutine
	werr   error // the first Write error: such a writer never commits
}

func (w *writer) Handle() storage.FileHandle { return w.handle }

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, fmt.Errorf("write %s: %w", w.handle, errClosed)
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.handle, err)
	}
	if w.werr != nil {
		return 0, w.werr
	}
	w.opened = true
	n, err := w.w.Write(p)
	if err != nil {
		w.werr = fmt.Errorf("write %s: %w", w.handle, mapErr(err))
		return n, w.werr
	}
	return n, nil
}

func (w *writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		if w.w.Attrs() != nil {
			return nil // already committed
		}
		return fmt.Errorf("commit %s: %w", w.handle, errClosed)
	}
	if err := cmp.Or(w.ctx.Err(), w.werr); err != nil {
		w.abortLocked()
		return fmt.Errorf("commit %s: %w", w.handle, err)
	}
	w.done = true
	err := w.w.Close()
	w.cancel()
	if err != nil {
		return fmt.Errorf("commit %s: %w", w.handle, mapErr(err))
	}
	return nil
}

func (w *writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.abortLocked()
	}
	return nil
}

// abortLocked cancels the upload's context first and only then closes the writer,
// so the upload fails instead of committing the partial data; Close waits for the
// writer's goroutine. A writer that never received a Write has started nothing.
func (w *writer) abortLocked() {
	w.done = true
	w.cancel()
	if w.opened {
		_ = w.w.Close() // fails with the cancelled context: nothing is committed
	}
}

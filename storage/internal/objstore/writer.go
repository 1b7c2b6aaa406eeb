package objstore

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/ledgervault/ledgervault/storage"
)

// ErrClosed reports a write to a writer that was committed or aborted.
var ErrClosed = errors.New("writer is closed")

// Upload is what a backend does for one object being written by a Writer.
type Upload interface {
	// PutIfAbsent writes a whole object smaller than one part, create-only.
	PutIfAbsent(ctx context.Context, data []byte) error
	// Complete makes the uploaded parts (their IDs in order) visible, create-only.
	Complete(ctx context.Context, parts []string) error
	// Discard removes what an uncommitted upload left behind; ctx is a fresh,
	// short-deadline context and started tells whether any part was uploaded. It never
	// touches a committed object of the same name.
	Discard(ctx context.Context, started bool) error
}

type writerState int

const (
	writerOpen writerState = iota
	writerCommitted
	writerAborted
)

// Writer is the storage.Writer of the object stores: parts stream through Parts, a
// small object is put at Commit, a large one completed from its parts; any failure
// or Abort stops the parts and discards the upload on a fresh context.
type Writer struct {
	ctx    context.Context
	handle storage.FileHandle
	parts  *Parts
	up     Upload

	mu    sync.Mutex
	state writerState
	werr  error // the first Write error: such a writer never commits
}

// NewWriter returns a writer of handle whose parts go through parts and whose object
// is made visible or discarded by up.
func NewWriter(ctx context.Context, handle storage.FileHandle, parts *Parts, up Upload) *Writer {
	return &Writer{ctx: ctx, handle: handle, parts: parts, up: up}
}

// Handle returns the file's handle.
func (w *Writer) Handle() storage.FileHandle { return w.handle }

// Write buffers p and uploads full parts.
func (w *Writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return 0, fmt.Errorf("write %s: %w", w.handle, ErrClosed)
	}
	if w.werr != nil {
		return 0, w.werr
	}
	if err := w.ctx.Err(); err != nil {
		return 0, fmt.Errorf("write %s: %w", w.handle, err)
	}
	n, err := w.parts.Write(p)
	if err != nil {
		w.werr = fmt.Errorf("write %s: %w", w.handle, err)
		return n, w.werr
	}
	return n, nil
}

// Settle waits until every part dispatched so far has finished uploading, without
// committing; bytes not yet dispatched stay buffered. After Settle the writer has no
// request in flight, as if its process had died: the conformance suite uses it to
// stand for a killed writer, whose late part would otherwise race a stale-upload
// sweep (an Azure block staged after the sweep recreates the blob it removed).
func (w *Writer) Settle() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return nil
	}
	if _, err := w.parts.Wait(); err != nil {
		return fmt.Errorf("settle %s: %w", w.handle, err)
	}
	return nil
}

// Commit makes the object visible; on failure it aborts.
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case writerCommitted:
		return nil
	case writerAborted:
		return fmt.Errorf("commit %s: %w", w.handle, ErrClosed)
	}
	if err := w.commit(); err != nil {
		if aerr := w.abortLocked(); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return fmt.Errorf("commit %s: %w", w.handle, err)
	}
	w.state = writerCommitted
	w.parts.Stop(AbortTimeout)
	return nil
}

func (w *Writer) commit() error {
	if err := cmp.Or(w.ctx.Err(), w.werr); err != nil {
		return err
	}
	if !w.parts.Started() {
		return w.up.PutIfAbsent(w.ctx, w.parts.Buffered())
	}
	if err := w.parts.Flush(); err != nil {
		return err
	}
	ids, err := w.parts.Wait()
	if err != nil {
		return err
	}
	if err := w.ctx.Err(); err != nil {
		return err
	}
	return w.up.Complete(w.ctx, ids)
}

// Abort discards the upload; it is a no-op after Commit.
func (w *Writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != writerOpen {
		return nil
	}
	if err := w.abortLocked(); err != nil {
		return fmt.Errorf("abort %s: %w", w.handle, err)
	}
	return nil
}

// abortLocked stops the part uploads (in-flight ones finish first, so a late request
// cannot recreate what is discarded) and discards the upload on a fresh context.
func (w *Writer) abortLocked() error {
	w.state = writerAborted
	started := w.parts.Started()
	w.parts.Stop(AbortTimeout)
	ctx, cancel := AbortContext(w.ctx)
	defer cancel()
	return w.up.Discard(ctx, started)
}

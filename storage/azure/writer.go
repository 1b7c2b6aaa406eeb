package azure

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/internal/objstore"
)

// errClosed reports a write to a writer that was committed or aborted.
var errClosed = errors.New("writer is closed")

type state int

const (
	open state = iota
	committed
	aborted
)

// newWriterID returns a random prefix for a writer's block IDs, so that two writers
// racing on one name never stage blocks under each other's IDs.
func newWriterID() (string, error) {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random block id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// writer streams one blob: a single create-only Upload at Commit for files smaller
// than one block, staged blocks and a create-only CommitBlockList otherwise.
type writer struct {
	s      *Store
	ctx    context.Context
	handle storage.FileHandle
	key    string
	bb     *blockblob.Client
	id     string
	parts  *objstore.Parts

	mu    sync.Mutex
	state state
	werr  error // the first Write error: such a writer never commits
}

func (w *writer) Handle() storage.FileHandle { return w.handle }

// blockID returns the base64 ID of block num; all IDs of a blob have one length.
func (w *writer) blockID(num int) string {
	return base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "%s-%08d", w.id, num))
}

func (w *writer) stageBlock(ctx context.Context, num int, data []byte) (string, error) {
	id := w.blockID(num)
	if _, err := w.bb.StageBlock(ctx, id, streaming.NopCloser(bytes.NewReader(data)), nil); err != nil {
		return "", mapErr(err)
	}
	return id, nil
}

func (w *writer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != open {
		return 0, fmt.Errorf("write %s: %w", w.handle, errClosed)
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

func (w *writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	switch w.state {
	case committed:
		return nil
	case aborted:
		return fmt.Errorf("commit %s: %w", w.handle, errClosed)
	}
	if err := w.commit(); err != nil {
		if aerr := w.abortLocked(); aerr != nil {
			err = errors.Join(err, aerr)
		}
		return fmt.Errorf("commit %s: %w", w.handle, err)
	}
	w.state = committed
	w.parts.Stop(objstore.AbortTimeout)
	return nil
}

func (w *writer) commit() error {
	if err := cmp.Or(w.ctx.Err(), w.werr); err != nil {
		return err
	}
	if !w.parts.Started() {
		return w.s.putIfAbsent(w.ctx, w.key, w.parts.Buffered())
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
	_, err = w.bb.CommitBlockList(w.ctx, ids, &blockblob.CommitBlockListOptions{AccessConditions: ifAbsent()})
	if err != nil {
		return fmt.Errorf("commit block list: %w", mapErr(err))
	}
	return nil
}

func (w *writer) Abort() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.state != open {
		return nil
	}
	if err := w.abortLocked(); err != nil {
		return fmt.Errorf("abort %s: %w", w.handle, err)
	}
	return nil
}

// abortLocked stops the block uploads and, if blocks were staged, discards the
// uncommitted blob on a fresh, short-deadline context where the service allows it.
// A committed blob of the same name (a concurrent writer that won) is never touched.
func (w *writer) abortLocked() error {
	w.state = aborted
	staged := w.parts.Started()
	w.parts.Stop(objstore.AbortTimeout)
	if !staged {
		return nil
	}
	ctx, cancel := objstore.AbortContext(w.ctx)
	defer cancel()
	_, err := w.s.discardUncommitted(ctx, w.key)
	return err
}

package azure

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
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

// writer is one blob being written: a single create-only Upload at Commit for files
// smaller than one block, staged blocks and a create-only CommitBlockList otherwise. It
// implements objstore.Upload; objstore.Writer serialises its calls.
type writer struct {
	s   *Store
	key string
	bb  *blockblob.Client
	id  string
}

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

// PutIfAbsent writes a small blob with one create-only Upload.
func (w *writer) PutIfAbsent(ctx context.Context, data []byte) error {
	return w.s.putIfAbsent(ctx, w.key, data)
}

// Complete commits the staged blocks create-only (If-None-Match: *).
func (w *writer) Complete(ctx context.Context, ids []string) error {
	_, err := w.bb.CommitBlockList(ctx, ids, &blockblob.CommitBlockListOptions{AccessConditions: ifAbsent()})
	if err != nil {
		return fmt.Errorf("commit block list: %w", mapErr(err))
	}
	return nil
}

// Discard removes the uncommitted blob if blocks were staged, where the service
// allows it. A committed blob of the same name (a concurrent writer that won) is never
// touched.
func (w *writer) Discard(ctx context.Context, staged bool) error {
	if !staged {
		return nil
	}
	_, err := w.s.discardUncommitted(ctx, w.key)
	return err
}

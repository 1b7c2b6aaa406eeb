package objstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ledgervault/ledgervault/storage"
)

// PutFunc writes a small object under key in one request, create-only, failing with
// storage.ErrAlreadyExists when the key is taken.
type PutFunc func(ctx context.Context, key string, data []byte) error

// CreateBackup reserves a new backup folder: a unique handle whose marker object is
// written create-only with put, retrying a (very unlikely) name collision a few times.
func (l Layout) CreateBackup(ctx context.Context, name string, now func() time.Time, put PutFunc) (storage.BackupHandle, error) {
	for attempt := 0; ; attempt++ {
		t := now()
		h, err := NewBackupHandle(name, t)
		if err != nil {
			return "", err
		}
		err = put(ctx, l.BackupPrefix(h)+MarkerName, MarkerBody(h, t))
		if errors.Is(err, storage.ErrAlreadyExists) && attempt < 3 {
			continue
		}
		if err != nil {
			return "", fmt.Errorf("create backup folder %s: %w", h, err)
		}
		return h, nil
	}
}

// SaveMetadata writes metadata file name create-only with put.
func (l Layout) SaveMetadata(ctx context.Context, name string, data []byte, put PutFunc) (storage.FileHandle, error) {
	h, err := MetadataHandle(name)
	if err != nil {
		return "", err
	}
	if err := put(ctx, l.Key(string(h)), data); err != nil {
		return "", fmt.Errorf("save metadata %s: %w", name, err)
	}
	return h, nil
}

package storage

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"path"
)

// A create-only write can have an ambiguous outcome: it may commit and still
// report an error (a timeout after the last byte, a dropped response), or report
// ErrAlreadyExists because a client retried its own first attempt, which had
// committed. The rule for every such write (metadata lines, compacted metadata,
// leases, chunks, manifests) is to read back what is there and decide:
//
//   - the same bytes (by SHA-256) are ours: the write succeeded;
//   - other bytes are someone else's: a real conflict (ErrAlreadyExists);
//   - nothing there: the write did not happen, the original error stands;
//   - unreadable: the outcome is unknown, a transient error to retry.
//
// ConfirmMetadata and ConfirmFile apply it; leases compare their records' holder
// instead of bytes (see coordinator/lease).

// Opener is the part of a Store that reads files back.
type Opener interface {
	Open(ctx context.Context, h FileHandle) (io.ReadCloser, error)
}

// ConfirmMetadata decides the outcome of a SaveMetadata(name, data) that failed
// with werr by reading back the metadata file called name. It returns the file's
// handle and nil when the file holds exactly data, an error wrapping
// ErrAlreadyExists when it holds other bytes, werr when no such file is listed,
// and werr joined with the read error when the outcome cannot be read.
func ConfirmMetadata(ctx context.Context, st Store, name string, data []byte, werr error) (FileHandle, error) {
	hs, err := st.ListMetadata(ctx)
	if err != nil {
		return "", fmt.Errorf("%w (reading back metadata %s: list: %w)", werr, name, err)
	}
	for _, h := range hs {
		if path.Base(string(h)) != name {
			continue
		}
		same, err := holds(ctx, st, h, int64(len(data)), sha256.Sum256(data))
		switch {
		case errors.Is(err, ErrNotFound):
			return "", werr
		case err != nil:
			return "", fmt.Errorf("%w (reading back metadata %s: %w)", werr, h, err)
		case same:
			return h, nil
		default:
			return "", fmt.Errorf("metadata %s holds other bytes: %w", h, ErrAlreadyExists)
		}
	}
	return "", werr
}

// ConfirmFile decides the outcome of a file write to h (size bytes with SHA-256
// sum) whose Commit failed with werr, by reading the file back: nil when it holds
// exactly those bytes, an error wrapping ErrAlreadyExists when it holds others,
// werr when it does not exist, and werr joined with the read error when it cannot
// be read.
func ConfirmFile(ctx context.Context, st Opener, h FileHandle, size int64, sum [32]byte, werr error) error {
	same, err := holds(ctx, st, h, size, sum)
	switch {
	case errors.Is(err, ErrNotFound):
		return werr
	case err != nil:
		return fmt.Errorf("%w (reading back %s: %w)", werr, h, err)
	case same:
		return nil
	default:
		return fmt.Errorf("file %s holds other bytes: %w", h, ErrAlreadyExists)
	}
}

// holds reports whether file h has exactly size bytes with SHA-256 sum; it reads at
// most size+1 bytes.
func holds(ctx context.Context, st Opener, h FileHandle, size int64, sum [32]byte) (bool, error) {
	if err := ValidateHandle(string(h)); err != nil {
		return false, err
	}
	r, err := st.Open(ctx, h)
	if err != nil {
		return false, err
	}
	defer r.Close()
	hash := sha256.New()
	n, err := io.Copy(hash, io.LimitReader(r, size+1))
	if err != nil {
		return false, err
	}
	return n == size && bytes.Equal(hash.Sum(nil), sum[:]), nil
}

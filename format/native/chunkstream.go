package native

import (
	"bufio"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
)

// streamBuffer is the read buffer between storage and the decoder in StreamChunk.
const streamBuffer = 256 << 10

// StreamChunk reads and decodes the chunk file f with the checks and limits of
// ReadChunk, without holding the stored file in memory: records reach fn as they are
// decompressed, and the file's size and SHA-256 are checked once it has been read to
// its end. fn therefore sees the records of a file not yet checked: a caller must
// treat what it received as unverified, and discard it, unless StreamChunk returns
// nil. A file whose size or hash differs from f returns an error wrapping ErrMismatch,
// whatever its decoding reported on the way (a changed byte usually breaks the
// decoding first); an error of fn is returned as it is when the file is intact.
func StreamChunk(ctx context.Context, st FileOpener, f File, lim Limits, fn func(rec []byte) error) (stored int64, err error) {
	lim = lim.Normalize()
	h := f.Handle
	if err := checkFileDesc(f, lim.MaxStoredSize); err != nil {
		return 0, err
	}
	if err := checkRawSize(string(h), f, lim); err != nil {
		return 0, err
	}
	r, err := st.Open(ctx, h)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", h, err)
	}
	defer r.Close()
	// One byte more than the manifest says tells a larger file from an intact one.
	sum := sha256.New()
	cr := &countingReader{r: io.TeeReader(io.LimitReader(r, f.Size+1), sum)}
	br := bufio.NewReaderSize(cr, streamBuffer)
	derr := decodeChunkFrom(ctx, string(h), br, f, lim, fn)
	if cerr := ctx.Err(); cerr != nil {
		return 0, cerr
	}
	// Read what the decoder left (nothing, for an intact chunk), so that the hash
	// covers the whole file, and check it before what the decoding said.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return 0, fmt.Errorf("read %s: %w", h, err)
	}
	if cr.err != nil {
		return 0, fmt.Errorf("read %s: %w", h, cr.err)
	}
	if err := checkStoredSize(f, cr.n); err != nil {
		return 0, err
	}
	var got [sha256.Size]byte
	sum.Sum(got[:0])
	if err := checkStoredSum(f, got); err != nil {
		return 0, err
	}
	if derr != nil {
		return 0, derr
	}
	return cr.n, nil
}

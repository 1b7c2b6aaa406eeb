package native

import (
	"bufio"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	"github.com/ledgervault/ledgervault/storage"
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
	if f.RawSize < 0 || f.RawSize > lim.MaxRawSize {
		return 0, fmt.Errorf("chunk %s: raw size %d in its manifest is outside [0, %d]: %w", h, f.RawSize, lim.MaxRawSize, ErrTooLarge)
	}
	r, err := st.Open(ctx, h)
	if err != nil {
		return 0, fmt.Errorf("open %s: %w", h, err)
	}
	defer r.Close()
	// One byte more than the manifest says tells a larger file from an intact one.
	hr := &hashingReader{r: io.LimitReader(r, f.Size+1), sum: sha256.New()}
	br := bufio.NewReaderSize(hr, streamBuffer)
	raw, derr := decodeRecords(ctx, string(h), br, f.RawSize, lim, fn)
	if cerr := ctx.Err(); cerr != nil {
		return 0, cerr
	}
	// Read what the decoder left (nothing, for an intact chunk), so that the hash
	// covers the whole file, and check it before what the decoding said.
	if _, err := io.Copy(io.Discard, br); err != nil {
		return 0, fmt.Errorf("read %s: %w", h, err)
	}
	if hr.err != nil {
		return 0, fmt.Errorf("read %s: %w", h, hr.err)
	}
	switch {
	case hr.n > f.Size:
		return 0, fmt.Errorf("file %s: larger than the %d bytes its manifest says: %w", h, f.Size, ErrMismatch)
	case hr.n != f.Size:
		return 0, fmt.Errorf("file %s: %d bytes, its manifest says %d (truncated): %w", h, hr.n, f.Size, ErrMismatch)
	}
	var sum [sha256.Size]byte
	hr.sum.Sum(sum[:0])
	if sum != f.SHA256 {
		return 0, fmt.Errorf("file %s: SHA-256 %x, its manifest says %s: %w", h, sum, f.SHA256, ErrMismatch)
	}
	if errors.Is(derr, errRawTooLarge) {
		return 0, fmt.Errorf("chunk %s: decompresses to more than the %d bytes its manifest says (stopped at the cap; a decompression bomb or a tampered chunk): %w",
			h, f.RawSize, ErrTooLarge)
	}
	if derr != nil {
		return 0, derr
	}
	if raw != f.RawSize {
		return 0, fmt.Errorf("chunk %s: decompresses to %d bytes, its manifest says %d: %w", h, raw, f.RawSize, ErrMismatch)
	}
	return hr.n, nil
}

// checkFileDesc checks the handle and size of a file's manifest description before the
// file is opened.
func checkFileDesc(f File, max int64) error {
	h := f.Handle
	if err := storage.ValidateHandle(string(h)); err != nil {
		return fmt.Errorf("file %q: %w", h, err)
	}
	if f.Size < 0 {
		return fmt.Errorf("file %s: manifest gives a negative size %d: %w", h, f.Size, ErrMismatch)
	}
	if f.Size > max {
		return fmt.Errorf("file %s: manifest size %d bytes exceeds the limit of %d: %w", h, f.Size, max, ErrTooLarge)
	}
	return nil
}

// hashingReader hashes and counts what is read through it and keeps the first read
// error other than io.EOF.
type hashingReader struct {
	r   io.Reader
	sum hash.Hash
	n   int64
	err error
}

func (h *hashingReader) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	h.sum.Write(p[:n])
	h.n += int64(n)
	if err != nil && err != io.EOF && h.err == nil {
		h.err = err
	}
	return n, err
}

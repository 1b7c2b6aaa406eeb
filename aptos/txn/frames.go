package txn

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// ErrTruncated is wrapped by the error of a chunk that ends inside a record frame.
var ErrTruncated = errors.New("chunk ends inside a record")

// FrameReader reads the records of a backup-cli chunk file: each a big-endian u32
// length then that many bytes, with nothing after the last record. It is not safe for
// concurrent use.
type FrameReader struct {
	r   *bufio.Reader
	max int
	n   int // records read
	hdr [4]byte
}

// NewFrameReader returns a FrameReader over the decompressed chunk bytes r, accepting
// records of at most maxRecord bytes (MaxRecordSize when maxRecord <= 0).
func NewFrameReader(r io.Reader, maxRecord int) *FrameReader {
	if maxRecord <= 0 || maxRecord > MaxRecordSize {
		maxRecord = MaxRecordSize
	}
	return &FrameReader{r: bufio.NewReaderSize(r, 256<<10), max: maxRecord}
}

// Next returns the next record in a newly allocated slice, or io.EOF after the last one.
// A stream that ends inside a length or a record is an error wrapping ErrTruncated; a
// length above the limit is an error before anything of it is allocated.
func (f *FrameReader) Next() ([]byte, error) {
	b, err := f.Append(nil)
	if err != nil {
		return nil, err
	}
	if b == nil {
		b = []byte{}
	}
	return b, nil
}

// Append reads the next record and appends it to dst, returning the extended slice (the
// record is its last bytes), or dst and io.EOF after the last record. Errors are as for
// Next.
func (f *FrameReader) Append(dst []byte) ([]byte, error) {
	n, err := io.ReadFull(f.r, f.hdr[:])
	if err == io.EOF {
		return dst, io.EOF
	}
	if err != nil {
		if err == io.ErrUnexpectedEOF {
			return dst, fmt.Errorf("record %d: length prefix has %d of 4 bytes: %w", f.n, n, ErrTruncated)
		}
		return dst, fmt.Errorf("record %d: read length: %w", f.n, err)
	}
	size := binary.BigEndian.Uint32(f.hdr[:])
	if uint64(size) > uint64(f.max) {
		return dst, fmt.Errorf("record %d: length %d above the limit %d", f.n, size, f.max)
	}
	start := len(dst)
	dst = slices.Grow(dst, int(size))[:start+int(size)]
	if got, err := io.ReadFull(f.r, dst[start:]); err != nil {
		if err == io.ErrUnexpectedEOF || err == io.EOF {
			return dst[:start], fmt.Errorf("record %d: %d of %d bytes: %w", f.n, got, size, ErrTruncated)
		}
		return dst[:start], fmt.Errorf("record %d: read: %w", f.n, err)
	}
	f.n++
	return dst, nil
}

// Records returns the number of records read so far.
func (f *FrameReader) Records() int { return f.n }

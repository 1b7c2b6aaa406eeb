package txn

import (
	"errors"
	"fmt"
	"io"

	"github.com/ledgervault/ledgervault/format/backupcli"
)

// ErrTruncated is wrapped by the error of a chunk that ends inside a record frame
// (together with backupcli.ErrPartial).
var ErrTruncated = errors.New("chunk ends inside a record")

// FrameReader reads the records of a backup-cli chunk file: each a big-endian u32
// length then that many bytes, with nothing after the last record. It is the framing
// reader of package backupcli (backupcli.Records, the one every package uses) with
// this package's limit and errors. It is not safe for concurrent use.
type FrameReader struct {
	recs *backupcli.Records
}

// NewFrameReader returns a FrameReader over the decompressed chunk bytes r, accepting
// records of at most maxRecord bytes (MaxRecordSize when maxRecord <= 0).
func NewFrameReader(r io.Reader, maxRecord int) *FrameReader {
	if maxRecord <= 0 || maxRecord > MaxRecordSize {
		maxRecord = MaxRecordSize
	}
	return &FrameReader{recs: backupcli.NewRecords(r, backupcli.RecordLimits{MaxRecordSize: maxRecord})}
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
	if !f.recs.Next() {
		err := f.recs.Err()
		switch {
		case err == nil:
			return dst, io.EOF
		case errors.Is(err, backupcli.ErrPartial):
			return dst, fmt.Errorf("%w: %w", ErrTruncated, err)
		}
		return dst, err
	}
	return append(dst, f.recs.Record()...), nil
}

// Records returns the number of records read so far.
func (f *FrameReader) Records() int { return f.recs.Count() }

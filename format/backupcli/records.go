package backupcli

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
)

// Default limits on chunk records.
const (
	// DefaultMaxRecordSize bounds one record. backup-cli cuts chunks at 128 MiB by
	// default and a record never spans chunks; one state value or transaction is far
	// smaller in practice.
	DefaultMaxRecordSize = 128 << 20
	// DefaultMaxRecords bounds the records of one chunk file.
	DefaultMaxRecords = 1 << 26
)

// ErrPartial reports data that ends before its framing says it should: a truncated
// length prefix or record, or a truncated gzip stream. It is what a killed
// `gzip -c > FILE` upload leaves.
var ErrPartial = errors.New("partial file")

// ErrTooLarge reports data over a decoding limit (a record size, a record count, a
// decompressed size).
var ErrTooLarge = errors.New("over the decoding limit")

// RecordLimits bound decoding a record stream; zero fields take the defaults.
type RecordLimits struct {
	// MaxRecordSize bounds one record (default DefaultMaxRecordSize).
	MaxRecordSize int
	// MaxRecords bounds the records of one file (default DefaultMaxRecords).
	MaxRecords int
}

func (l RecordLimits) normalize() RecordLimits {
	if l.MaxRecordSize <= 0 {
		l.MaxRecordSize = DefaultMaxRecordSize
	}
	if l.MaxRecords <= 0 {
		l.MaxRecords = DefaultMaxRecords
	}
	return l
}

// Records iterates over a chunk's records: each a big-endian u32 length then that
// many bytes. The input must be consumed exactly: a stream that ends inside a length
// prefix or a record yields ErrPartial. Memory is bounded by the largest record.
//
//	it := NewRecords(r, RecordLimits{})
//	for it.Next() { use(it.Record()) }
//	if err := it.Err(); err != nil { ... }
type Records struct {
	r      *bufio.Reader
	lim    RecordLimits
	buf    []byte
	rec    []byte
	n      int
	offset int64
	err    error
}

// NewRecords returns an iterator over the records read from r.
func NewRecords(r io.Reader, lim RecordLimits) *Records {
	return &Records{r: bufio.NewReaderSize(r, 64<<10), lim: lim.normalize()}
}

// Next reads the next record; it returns false at the end of the input or on an
// error (see Err).
func (it *Records) Next() bool {
	if it.err != nil {
		return false
	}
	var hdr [4]byte
	n, err := io.ReadFull(it.r, hdr[:])
	if err == io.EOF {
		it.err = io.EOF
		return false
	}
	if err != nil {
		it.fail(err, fmt.Sprintf("length prefix of record %d at offset %d: %d of 4 bytes", it.n, it.offset, n))
		return false
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if uint64(size) > uint64(it.lim.MaxRecordSize) {
		it.err = fmt.Errorf("%w: record %d at offset %d: length %d exceeds %d", ErrTooLarge, it.n, it.offset, size, it.lim.MaxRecordSize)
		return false
	}
	if it.n >= it.lim.MaxRecords {
		it.err = fmt.Errorf("%w: more than %d records", ErrTooLarge, it.lim.MaxRecords)
		return false
	}
	// Read in steps, so a lying length prefix on a short file does not allocate its
	// whole claim before the input runs out.
	it.buf = it.buf[:0]
	for remaining := int(size); remaining > 0; {
		step := min(remaining, 1<<20)
		it.buf = slices.Grow(it.buf, step)
		m, err := io.ReadFull(it.r, it.buf[len(it.buf):len(it.buf)+step])
		it.buf = it.buf[:len(it.buf)+m]
		remaining -= m
		if err != nil {
			it.fail(err, fmt.Sprintf("record %d at offset %d: %d of %d bytes", it.n, it.offset, len(it.buf), size))
			return false
		}
	}
	it.rec = it.buf
	it.n++
	it.offset += 4 + int64(size)
	return true
}

func (it *Records) fail(err error, what string) {
	if errors.Is(err, io.ErrUnexpectedEOF) || err == io.EOF {
		it.err = fmt.Errorf("%w: input ends inside the %s", ErrPartial, what)
		return
	}
	it.err = fmt.Errorf("read %s: %w", what, err)
}

// Record returns the current record; it is valid until the next call of Next.
func (it *Records) Record() []byte { return it.rec }

// Count returns how many records were read.
func (it *Records) Count() int { return it.n }

// Offset returns how many bytes the records read so far take.
func (it *Records) Offset() int64 { return it.offset }

// Err returns the error that stopped the iteration, nil at a clean end.
func (it *Records) Err() error {
	if it.err == io.EOF {
		return nil
	}
	return it.err
}

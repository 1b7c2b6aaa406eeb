// Package records frames a stream of opaque records: each record is a 4-byte
// big-endian length followed by that many bytes, and a stream ends with an end
// marker and a trailer (the record count and a CRC-32C of everything before the
// marker), so that a reader tells a complete stream from a truncated one.
//
// Wire format:
//
//	stream  = *record end
//	record  = len:u32be payload:len bytes        (len <= max record size, len != 0xFFFFFFFF)
//	end     = 0xFFFFFFFF count:u64be crc:u32be  (count = number of records,
//	                                              crc = CRC-32C (Castagnoli) of every byte before the marker)
//
// Nothing may follow the trailer. The backup service streams and the backup chunks
// (zstd-compressed) use this framing; see docs/backup-service.md.
package records

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
)

const (
	// DefaultMaxRecordSize is the largest record a Reader accepts by default: the
	// largest encoded transaction (16 MiB) plus room for framing of the payload.
	DefaultMaxRecordSize = 16<<20 + 64<<10
	// HardMaxRecordSize is the largest record the format can carry.
	HardMaxRecordSize = 1<<31 - 1
	// PrefixSize is the length prefix each record adds to its payload in a stream.
	PrefixSize = 4
	// TrailerSize is the size of the end marker and trailer.
	TrailerSize = 4 + 8 + 4

	endMarker         = 0xFFFFFFFF
	defaultBufferSize = 64 << 10
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrTruncated reports a stream that ended before its end marker and trailer.
	ErrTruncated = errors.New("records: stream truncated (no end marker)")
	// ErrRecordTooLarge reports a length prefix above the reader's limit.
	ErrRecordTooLarge = errors.New("records: record too large")
	// ErrCorrupt reports a trailer that does not match the records read, or data
	// after the trailer.
	ErrCorrupt = errors.New("records: corrupt stream")
)

// Writer writes records to an underlying writer through a buffer. It is not safe for
// concurrent use. Close writes the end marker and trailer; a stream not closed is
// seen as truncated by a Reader.
type Writer struct {
	w     io.Writer
	buf   []byte // buffered bytes are buf[:n]
	n     int
	crc   uint32
	count uint64
	err   error
	done  bool
	size  int // normal buffer size
}

// NewWriter returns a Writer with a 64 KiB buffer.
func NewWriter(w io.Writer) *Writer { return NewWriterSize(w, defaultBufferSize) }

// NewWriterSize returns a Writer with a buffer of size bytes (at least 64).
func NewWriterSize(w io.Writer, size int) *Writer {
	size = max(size, 64)
	return &Writer{w: w, buf: make([]byte, size), size: size}
}

// Count returns the number of records written so far.
func (w *Writer) Count() uint64 { return w.count }

// Buffered returns the number of bytes waiting in the buffer.
func (w *Writer) Buffered() int { return w.n }

// WriteRecord writes one record (a copy of p).
func (w *Writer) WriteRecord(p []byte) error {
	if len(p)+4 > len(w.buf)-w.n && len(p)+4 > len(w.buf) {
		// Larger than the whole buffer: flush, then write header and payload through.
		if err := w.check(len(p)); err != nil {
			return err
		}
		if err := w.Flush(); err != nil {
			return err
		}
		var h [4]byte
		binary.BigEndian.PutUint32(h[:], uint32(len(p)))
		w.crc = crc32.Update(w.crc, castagnoli, h[:])
		w.crc = crc32.Update(w.crc, castagnoli, p)
		if _, err := w.w.Write(h[:]); err != nil {
			w.err = fmt.Errorf("records: write: %w", err)
			return w.err
		}
		if _, err := w.w.Write(p); err != nil {
			w.err = fmt.Errorf("records: write: %w", err)
			return w.err
		}
		w.count++
		return nil
	}
	b, err := w.Reserve(len(p))
	if err != nil {
		return err
	}
	copy(b, p)
	return nil
}

func (w *Writer) check(n int) error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return errors.New("records: write after Close")
	}
	if n < 0 || n > HardMaxRecordSize {
		return fmt.Errorf("%w: %d bytes", ErrRecordTooLarge, n)
	}
	return nil
}

// Reserve adds a record of n bytes and returns its payload, to be filled by the caller
// before the next call on w. It avoids a copy for records built in place.
func (w *Writer) Reserve(n int) ([]byte, error) {
	if err := w.check(n); err != nil {
		return nil, err
	}
	if n+4 > len(w.buf)-w.n {
		if err := w.Flush(); err != nil {
			return nil, err
		}
		if n+4 > len(w.buf) {
			w.buf = make([]byte, n+4)
		}
	}
	binary.BigEndian.PutUint32(w.buf[w.n:], uint32(n))
	b := w.buf[w.n+4 : w.n+4+n]
	w.n += 4 + n
	w.count++
	return b, nil
}

// Flush writes the buffered bytes to the underlying writer.
func (w *Writer) Flush() error {
	if w.err != nil {
		return w.err
	}
	if w.n == 0 {
		return nil
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf[:w.n])
	_, err := w.w.Write(w.buf[:w.n])
	w.n = 0
	if len(w.buf) > w.size {
		w.buf = make([]byte, w.size) // give back a buffer grown for one large record
	}
	if err != nil {
		w.err = fmt.Errorf("records: write: %w", err)
		return w.err
	}
	return nil
}

// Close writes the end marker and trailer and flushes. It does not close the
// underlying writer. Calling it again is a no-op.
func (w *Writer) Close() error {
	if w.err != nil {
		return w.err
	}
	if w.done {
		return nil
	}
	if TrailerSize > len(w.buf)-w.n {
		if err := w.Flush(); err != nil {
			return err
		}
	}
	w.crc = crc32.Update(w.crc, castagnoli, w.buf[:w.n])
	t := w.buf[w.n : w.n+TrailerSize]
	binary.BigEndian.PutUint32(t, endMarker)
	binary.BigEndian.PutUint64(t[4:], w.count)
	binary.BigEndian.PutUint32(t[12:], w.crc)
	_, err := w.w.Write(w.buf[:w.n+TrailerSize])
	w.n = 0
	w.done = true
	if err != nil {
		w.err = fmt.Errorf("records: write end of stream: %w", err)
		return w.err
	}
	return nil
}

// Reader reads records written by a Writer. Record returns a slice of the reader's
// buffer, valid until the next call to Next: reading does not allocate per record.
type Reader struct {
	r       io.Reader
	buf     []byte
	start   int // unread bytes are buf[start:end]
	end     int
	crcFrom int // consumed bytes buf[crcFrom:start] are not yet in crc
	crc     uint32
	max     int
	count   uint64
	offset  int64 // stream offset of buf[0]
	rec     []byte
	err     error
	done    bool
}

// NewReader returns a Reader that accepts records up to maxRecord bytes (0: the
// DefaultMaxRecordSize).
func NewReader(r io.Reader, maxRecord int) *Reader {
	if maxRecord <= 0 {
		maxRecord = DefaultMaxRecordSize
	}
	maxRecord = min(maxRecord, HardMaxRecordSize)
	return &Reader{r: r, buf: make([]byte, defaultBufferSize), max: maxRecord}
}

// Next reads the next record. It returns false at the end of the stream (Err is nil
// once the trailer checked out) or on an error (Err says which).
func (r *Reader) Next() bool {
	r.rec = nil
	if r.err != nil || r.done {
		return false
	}
	if err := r.fill(4); err != nil {
		r.fail(err)
		return false
	}
	n := binary.BigEndian.Uint32(r.buf[r.start:])
	if n == endMarker {
		r.finish()
		return false
	}
	if int64(n) > int64(r.max) {
		r.fail(fmt.Errorf("%w: record %d at offset %d has a length prefix of %d bytes, the limit is %d",
			ErrRecordTooLarge, r.count, r.offset+int64(r.start), n, r.max))
		return false
	}
	if err := r.fill(4 + int(n)); err != nil {
		r.fail(err)
		return false
	}
	r.rec = r.buf[r.start+4 : r.start+4+int(n) : r.start+4+int(n)]
	r.start += 4 + int(n)
	r.count++
	return true
}

// Record returns the current record's payload, valid until the next call to Next.
func (r *Reader) Record() []byte { return r.rec }

// Count returns the number of records read so far.
func (r *Reader) Count() uint64 { return r.count }

// Err returns the error that stopped Next, or nil after a complete stream.
func (r *Reader) Err() error { return r.err }

// Done reports whether the end marker was read and the trailer checked out.
func (r *Reader) Done() bool { return r.done }

func (r *Reader) fail(err error) { r.err = err; r.rec = nil }

// finish checks the trailer at buf[start:] and that nothing follows it.
func (r *Reader) finish() {
	r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcFrom:r.start])
	r.crcFrom = r.start
	if err := r.fill(TrailerSize); err != nil {
		r.fail(fmt.Errorf("read trailer: %w", err))
		return
	}
	t := r.buf[r.start : r.start+TrailerSize]
	count := binary.BigEndian.Uint64(t[4:])
	sum := binary.BigEndian.Uint32(t[12:])
	r.start += TrailerSize
	r.crcFrom = r.start
	if count != r.count {
		r.fail(fmt.Errorf("%w: trailer counts %d records, read %d", ErrCorrupt, count, r.count))
		return
	}
	if sum != r.crc {
		r.fail(fmt.Errorf("%w: checksum mismatch after %d records", ErrCorrupt, r.count))
		return
	}
	if r.end > r.start {
		r.fail(fmt.Errorf("%w: data after the end of stream", ErrCorrupt))
		return
	}
	var one [1]byte
	for {
		n, err := r.r.Read(one[:])
		if n > 0 {
			r.fail(fmt.Errorf("%w: data after the end of stream", ErrCorrupt))
			return
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.fail(fmt.Errorf("records: read after trailer: %w", err))
			return
		}
	}
	r.done = true
}

// fill makes at least n unread bytes available in buf[start:end].
func (r *Reader) fill(n int) error {
	if r.end-r.start >= n {
		return nil
	}
	if r.start+n > len(r.buf) {
		// Move the unread bytes to the front (after checksumming the consumed ones),
		// growing the buffer if the record does not fit.
		r.crc = crc32.Update(r.crc, castagnoli, r.buf[r.crcFrom:r.start])
		buf := r.buf
		if n > len(buf) {
			buf = make([]byte, n)
		}
		copy(buf, r.buf[r.start:r.end])
		r.offset += int64(r.start)
		r.end -= r.start
		r.start, r.crcFrom = 0, 0
		r.buf = buf
	}
	for r.end-r.start < n {
		m, err := r.r.Read(r.buf[r.end:])
		r.end += m
		if r.end-r.start >= n {
			return nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				if r.end == r.start {
					return fmt.Errorf("%w: stream ended after %d records", ErrTruncated, r.count)
				}
				return fmt.Errorf("%w: stream ended inside record %d (%w)", ErrTruncated, r.count, io.ErrUnexpectedEOF)
			}
			return fmt.Errorf("records: read after %d records: %w", r.count, err)
		}
		if m == 0 {
			continue
		}
	}
	return nil
}

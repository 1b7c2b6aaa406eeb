package native

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

// MaxChunkSize is the largest raw size a writer may cut chunks at (a single larger
// record gets a chunk of its own, see ChunkWriter.Fits).
const MaxChunkSize = 1 << 30

// Default limits of the chunk decoder, the same for every reader.
const (
	// DefaultMaxStoredSize bounds the stored (compressed) size of one chunk file.
	DefaultMaxStoredSize = MaxChunkSize + 64<<20
	// DefaultMaxRawSize bounds the decompressed size of one chunk: the largest chunk
	// size a backup accepts plus room for one record that got a chunk of its own.
	DefaultMaxRawSize = MaxChunkSize + 64<<20
	// DefaultMaxWindow bounds the zstd window a frame may ask for (the writers use 8 MiB
	// or less); it bounds the decoder's memory whatever the frame header says.
	DefaultMaxWindow = 64 << 20
)

// Limits bound what decoding one chunk may cost. Zero fields take the defaults.
type Limits struct {
	// MaxStoredSize is the largest stored chunk file accepted.
	MaxStoredSize int64
	// MaxRawSize is the largest decompressed chunk accepted (the manifest's RawSize is
	// also enforced).
	MaxRawSize int64
	// MaxRecord is the largest record accepted (default records.DefaultMaxRecordSize).
	MaxRecord int
	// MaxWindow is the largest zstd window accepted.
	MaxWindow uint64
}

// Normalize returns l with its zero fields set to the defaults.
func (l Limits) Normalize() Limits {
	if l.MaxStoredSize <= 0 {
		l.MaxStoredSize = DefaultMaxStoredSize
	}
	if l.MaxRawSize <= 0 {
		l.MaxRawSize = DefaultMaxRawSize
	}
	if l.MaxRecord <= 0 {
		l.MaxRecord = records.DefaultMaxRecordSize
	}
	if l.MaxWindow == 0 {
		l.MaxWindow = DefaultMaxWindow
	}
	return l
}

// ErrMismatch marks a file whose size or SHA-256 differs from its manifest.
var ErrMismatch = errors.New("file does not match its manifest")

// ErrTooLarge marks a file or a decompressed chunk above its limit.
var ErrTooLarge = errors.New("above the size limit")

// ReadFile reads the file f describes, at most max bytes, and checks that its size and
// SHA-256 equal the manifest's. Errors name the handle and say what differs.
func ReadFile(ctx context.Context, st FileOpener, f File, max int64) ([]byte, error) {
	h := f.Handle
	if err := checkFileDesc(f, max); err != nil {
		return nil, err
	}
	r, err := st.Open(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", h, err)
	}
	defer r.Close()
	buf := make([]byte, f.Size+1)
	n, err := io.ReadFull(r, buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read %s: %w", h, err)
	}
	if err := checkStoredSize(f, int64(n)); err != nil {
		return nil, err
	}
	buf = buf[:n]
	if err := checkStoredSum(f, sha256.Sum256(buf)); err != nil {
		return nil, err
	}
	return buf, nil
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

// checkStoredSize checks the n bytes read of the file f describes, read up to one byte
// past its manifest size, against that size.
func checkStoredSize(f File, n int64) error {
	switch {
	case n > f.Size:
		return fmt.Errorf("file %s: larger than the %d bytes its manifest says: %w", f.Handle, f.Size, ErrMismatch)
	case n != f.Size:
		return fmt.Errorf("file %s: %d bytes, its manifest says %d (truncated): %w", f.Handle, n, f.Size, ErrMismatch)
	}
	return nil
}

// checkStoredSum checks the SHA-256 of the file f describes against its manifest's.
func checkStoredSum(f File, sum [sha256.Size]byte) error {
	if sum != f.SHA256 {
		return fmt.Errorf("file %s: SHA-256 %x, its manifest says %s: %w", f.Handle, sum, f.SHA256, ErrMismatch)
	}
	return nil
}

// ReadManifest reads a manifest file (at most MaxManifestSize bytes). Its
// content is checked by the manifest decoders.
func ReadManifest(ctx context.Context, st FileOpener, h storage.FileHandle) ([]byte, error) {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return nil, fmt.Errorf("manifest %q: %w", h, err)
	}
	r, err := st.Open(ctx, h)
	if err != nil {
		return nil, fmt.Errorf("open manifest %s: %w", h, err)
	}
	defer r.Close()
	return ReadLimited(r, MaxManifestSize, "manifest "+string(h))
}

// decoders pools zstd stream decoders by window limit. Concurrency 1 makes a decoder
// decode synchronously in Read: it starts no goroutine, so a pooled or dropped
// decoder leaves nothing running.
var decoders sync.Map // uint64 -> *sync.Pool

func getDecoder(window uint64, r io.Reader) (*zstd.Decoder, error) {
	p, _ := decoders.LoadOrStore(window, &sync.Pool{})
	if d, ok := p.(*sync.Pool).Get().(*zstd.Decoder); ok {
		if err := d.Reset(r); err != nil {
			return nil, err
		}
		return d, nil
	}
	return zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(window),
		zstd.WithDecoderMaxMemory(window), zstd.WithDecoderLowmem(true))
}

func putDecoder(window uint64, d *zstd.Decoder) {
	if err := d.Reset(nil); err != nil {
		d.Close()
		return
	}
	p, _ := decoders.Load(window)
	p.(*sync.Pool).Put(d)
}

// cappedReader fails with errRawTooLarge once more than max bytes come out of r.
type cappedReader struct {
	r   io.Reader
	n   int64
	max int64
}

var errRawTooLarge = errors.New("decompressed data above the cap")

func (c *cappedReader) Read(p []byte) (int, error) {
	if c.n > c.max {
		return 0, errRawTooLarge
	}
	if int64(len(p)) > c.max-c.n+1 {
		p = p[:c.max-c.n+1]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.n > c.max {
		return n, errRawTooLarge
	}
	return n, err
}

// DecodeChunk decompresses a chunk's stored bytes (already checked with ReadFile) and
// calls fn with each record, in order; rec is valid only during the call. The output is
// capped at the manifest's RawSize (and lim.MaxRawSize): a chunk that decompresses to
// more stops at the cap with an error. The records trailer must check out and the
// decompressed size must equal RawSize. name is used in errors (the chunk's handle).
func DecodeChunk(name string, stored []byte, f File, lim Limits, fn func(rec []byte) error) error {
	return decodeChunk(context.Background(), name, stored, f, lim, fn)
}

func decodeChunk(ctx context.Context, name string, stored []byte, f File, lim Limits, fn func(rec []byte) error) error {
	lim = lim.Normalize()
	if err := checkRawSize(name, f, lim); err != nil {
		return err
	}
	return decodeChunkFrom(ctx, name, &byteReader{b: stored}, f, lim, fn)
}

// checkRawSize checks a chunk's manifest raw size against the limit before decoding.
func checkRawSize(name string, f File, lim Limits) error {
	if f.RawSize < 0 || f.RawSize > lim.MaxRawSize {
		return fmt.Errorf("chunk %s: raw size %d in its manifest is outside [0, %d]: %w", name, f.RawSize, lim.MaxRawSize, ErrTooLarge)
	}
	return nil
}

// decodeChunkFrom decodes the chunk f describes from src (its raw size checked with
// checkRawSize, lim normalized), as DecodeChunk does.
func decodeChunkFrom(ctx context.Context, name string, src io.Reader, f File, lim Limits, fn func(rec []byte) error) error {
	raw, err := decodeRecords(ctx, name, src, f.RawSize, lim, fn)
	if errors.Is(err, errRawTooLarge) {
		return fmt.Errorf("chunk %s: decompresses to more than the %d bytes its manifest says (stopped at the cap; a decompression bomb or a tampered chunk): %w",
			name, f.RawSize, ErrTooLarge)
	}
	if err != nil {
		return err
	}
	if raw != f.RawSize {
		return fmt.Errorf("chunk %s: decompresses to %d bytes, its manifest says %d: %w", name, raw, f.RawSize, ErrMismatch)
	}
	return nil
}

// decodeRecords is the one chunk decoding path: it decompresses src (zstd, window and
// memory bounded by lim.MaxWindow) with the output capped at rawCap bytes (an error
// wrapping errRawTooLarge beyond it), reads the records stream (records of at most
// lim.MaxRecord bytes, its trailer checked, nothing after it) and calls fn with each
// record. It returns the decompressed size.
func decodeRecords(ctx context.Context, name string, src io.Reader, rawCap int64, lim Limits, fn func(rec []byte) error) (int64, error) {
	dec, err := getDecoder(lim.MaxWindow, src)
	if err != nil {
		return 0, fmt.Errorf("chunk %s: zstd: %w", name, err)
	}
	defer putDecoder(lim.MaxWindow, dec)
	cr := &cappedReader{r: dec, max: rawCap}
	rr := records.NewReader(cr, lim.MaxRecord)
	for rr.Next() {
		if err := fn(rr.Record()); err != nil {
			return cr.n, fmt.Errorf("chunk %s record %d: %w", name, rr.Count()-1, err)
		}
		if rr.Count()&1023 == 0 && ctx.Err() != nil {
			return cr.n, ctx.Err()
		}
	}
	if err := rr.Err(); err != nil {
		if errors.Is(err, errRawTooLarge) {
			return cr.n, errRawTooLarge
		}
		return cr.n, fmt.Errorf("chunk %s: %w", name, err)
	}
	return cr.n, nil
}

// ScanChunk decodes a chunk file that no manifest describes yet (one an interrupted
// attempt wrote, or one found in storage) from r and returns its description: the
// stored size and SHA-256 of everything r held and the decompressed size. It applies
// the limits of lim (stored size, decompressed size, window, records) and calls fn
// with each record, in order; rec is valid only during the call. As nothing vouches
// for the bytes, fn must treat its records as untrusted until the caller has checked
// them (against a proof). h is the chunk's handle, used in errors and the description.
func ScanChunk(ctx context.Context, r io.Reader, h storage.FileHandle, lim Limits, fn func(rec []byte) error) (File, error) {
	lim = lim.Normalize()
	sum := sha256.New()
	stored := &countingReader{r: io.TeeReader(io.LimitReader(r, lim.MaxStoredSize+1), sum)}
	raw, err := decodeRecords(ctx, string(h), stored, lim.MaxRawSize, lim, fn)
	if err != nil && stored.n > lim.MaxStoredSize {
		return File{}, fmt.Errorf("chunk %s: larger than the limit of %d bytes: %w", h, lim.MaxStoredSize, ErrTooLarge)
	}
	if errors.Is(err, errRawTooLarge) {
		return File{}, fmt.Errorf("chunk %s: decompresses to more than the limit of %d bytes (stopped at the cap): %w", h, lim.MaxRawSize, ErrTooLarge)
	}
	if err != nil {
		return File{}, err
	}
	// Read to the end so that the hash covers the whole file (a zstd frame followed
	// by anything is not a chunk the writer wrote).
	if n, err := io.Copy(io.Discard, stored); err != nil || n != 0 {
		return File{}, fmt.Errorf("chunk %s: data after the records stream (%d bytes, %v)", h, n, err)
	}
	if stored.n > lim.MaxStoredSize {
		return File{}, fmt.Errorf("chunk %s: larger than the limit of %d bytes: %w", h, lim.MaxStoredSize, ErrTooLarge)
	}
	f := File{Handle: h, Size: stored.n, RawSize: raw}
	copy(f.SHA256[:], sum.Sum(nil))
	return f, nil
}

// countingReader counts what passes through it and keeps the first read error other
// than io.EOF (a decoder may report it as something else, or not at all).
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && err != io.EOF && c.err == nil {
		c.err = err
	}
	return n, err
}

// byteReader is a bytes.Reader without the seek methods (the decoder must stream).
type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// ReadChunk reads the chunk file f (ReadFile, capped at lim.MaxStoredSize) and decodes
// it (DecodeChunk). The whole stored file is hash-checked before any record reaches fn.
func ReadChunk(ctx context.Context, st FileOpener, f File, lim Limits, fn func(rec []byte) error) (stored int64, err error) {
	lim = lim.Normalize()
	b, err := ReadFile(ctx, st, f, lim.MaxStoredSize)
	if err != nil {
		return 0, err
	}
	return int64(len(b)), decodeChunk(ctx, string(f.Handle), b, f, lim, fn)
}

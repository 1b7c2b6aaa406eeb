package native

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

// DefaultCompressionLevel is the zstd level of a chunk when ChunkOptions.Level is zero.
const DefaultCompressionLevel = zstd.SpeedFastest

// encoderPools hold zstd encoders by level, reused across chunks (one encoder per
// chunk in use, never one per record).
var encoderPools sync.Map // zstd.EncoderLevel -> *sync.Pool

func getEncoder(level zstd.EncoderLevel, w io.Writer) (*zstd.Encoder, error) {
	p, _ := encoderPools.LoadOrStore(level, &sync.Pool{})
	if e, ok := p.(*sync.Pool).Get().(*zstd.Encoder); ok {
		e.Reset(w)
		return e, nil
	}
	// Concurrency 1: the encoder compresses synchronously in Write and starts no
	// goroutine, so an abandoned encoder leaves nothing running.
	//
	// At the fastest level the literals are not Huffman-coded: ledger records are
	// mostly hashes and random-looking values, whose literals that coding does not
	// shrink (state and transaction chunks of the devnet: 0.820 and 0.807 of the raw
	// size either way) while it took a third of the compression time (239 -> 332 MB/s
	// per core on a state chunk). The higher levels keep it.
	return zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(false),
		zstd.WithNoEntropyCompression(level == zstd.SpeedFastest))
}

func putEncoder(level zstd.EncoderLevel, e *zstd.Encoder) {
	e.Reset(nil)
	p, _ := encoderPools.Load(level)
	p.(*sync.Pool).Put(e)
}

// WriteStats are the counters the chunk and file writers add to, safe for concurrent
// updates.
type WriteStats struct {
	// Items is the number of records (state items, transactions, ledger infos) written.
	Items atomic.Int64
	// RawBytes is the size of the records streams before compression.
	RawBytes atomic.Int64
	// StoredBytes is the size of everything written to storage (chunks, proofs, manifest).
	StoredBytes atomic.Int64
	// Files is the number of files committed.
	Files atomic.Int64
	// CompressNanos is the time spent in the zstd encoder (framing included).
	CompressNanos atomic.Int64
	// HashNanos is the time spent computing SHA-256 of stored bytes.
	HashNanos atomic.Int64
	// WriteNanos is the time spent in storage writes and commits.
	WriteNanos atomic.Int64
}

// Progress receives increments of work done; it must be safe for concurrent use.
type Progress interface {
	Add(items, rawBytes, storedBytes int64)
}

// ChunkOptions configures a chunk writer. The zero value takes the defaults.
type ChunkOptions struct {
	// Level is the zstd level (default DefaultCompressionLevel).
	Level zstd.EncoderLevel
	// Stats receives the time spent creating, hashing, compressing and writing (a
	// fresh one is used when nil).
	Stats *WriteStats
	// Progress, if not nil, receives progress increments while records are written.
	Progress Progress
}

// storedSink is the bottom of a chunk writer: it hashes and counts what reaches the
// storage writer, timing both.
type storedSink struct {
	w      storage.Writer
	h      hash.Hash
	n      int64
	stats  *WriteStats
	inside time.Duration // time spent below the encoder, subtracted from its time
}

func (s *storedSink) Write(p []byte) (int, error) {
	t0 := time.Now()
	s.h.Write(p)
	t1 := time.Now()
	n, err := s.w.Write(p)
	t2 := time.Now()
	s.n += int64(n)
	s.stats.HashNanos.Add(int64(t1.Sub(t0)))
	s.stats.WriteNanos.Add(int64(t2.Sub(t1)))
	s.inside += t2.Sub(t0)
	if err == nil && n != len(p) {
		err = io.ErrShortWrite
	}
	return n, err
}

// timedEncoder measures the time spent in the zstd encoder alone.
type timedEncoder struct {
	enc  *zstd.Encoder
	sink *storedSink
	st   *WriteStats
}

func (t *timedEncoder) Write(p []byte) (int, error) {
	t0 := time.Now()
	before := t.sink.inside
	n, err := t.enc.Write(p)
	t.st.CompressNanos.Add(int64(time.Since(t0) - (t.sink.inside - before)))
	return n, err
}

// FileCreator creates files in a backup folder (storage.Store has this method).
type FileCreator interface {
	Create(ctx context.Context, backup storage.BackupHandle, name string) (storage.Writer, error)
}

// ChunkWriter writes one chunk file: records, framed (package records), compressed
// with zstd, hashed with SHA-256 and streamed into a storage writer. Nothing is
// visible in storage until Commit returns; Abort (always deferred) discards it.
// It is not safe for concurrent use.
type ChunkWriter struct {
	w        storage.Writer
	sink     *storedSink
	enc      *zstd.Encoder
	level    zstd.EncoderLevel
	rw       *records.Writer
	raw      int64
	progress Progress
	reported [3]int64
	done     bool
	// ctx and st are the creating call's, for reading back an ambiguous commit.
	ctx context.Context
	st  FileCreator
}

// CreateChunk starts the chunk file name in backup, with the compression level,
// counters and progress of o.
func CreateChunk(ctx context.Context, st FileCreator, backup storage.BackupHandle, name string, o ChunkOptions) (*ChunkWriter, error) {
	if o.Level == 0 {
		o.Level = DefaultCompressionLevel
	}
	if o.Stats == nil {
		o.Stats = new(WriteStats)
	}
	t0 := time.Now()
	w, err := st.Create(ctx, backup, name)
	o.Stats.WriteNanos.Add(int64(time.Since(t0)))
	if err != nil {
		return nil, fmt.Errorf("create chunk %s: %w", name, err)
	}
	sink := &storedSink{w: w, h: sha256.New(), stats: o.Stats}
	enc, err := getEncoder(o.Level, sink)
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("create chunk %s: zstd encoder: %w", name, err)
	}
	c := &ChunkWriter{w: w, sink: sink, enc: enc, level: o.Level, progress: o.Progress, ctx: ctx, st: st}
	c.rw = records.NewWriterSize(&timedEncoder{enc: enc, sink: sink, st: o.Stats}, 256<<10)
	return c, nil
}

// RawSize returns the size of the chunk's records stream so far (without trailer).
func (c *ChunkWriter) RawSize() int64 { return c.raw }

// Count returns the number of records written.
func (c *ChunkWriter) Count() uint64 { return c.rw.Count() }

// Fits reports whether a record of n bytes can be added without the chunk's raw size
// (trailer included) exceeding max. An empty chunk always takes one record.
func (c *ChunkWriter) Fits(n int, max int64) bool {
	return c.rw.Count() == 0 || c.raw+int64(records.PrefixSize+n)+records.TrailerSize <= max
}

// WriteRecord appends one record.
func (c *ChunkWriter) WriteRecord(p []byte) error {
	if err := c.rw.WriteRecord(p); err != nil {
		return fmt.Errorf("write chunk %s: %w", c.w.Handle(), err)
	}
	c.raw += int64(records.PrefixSize + len(p))
	if c.raw-c.reported[1] >= 1<<20 {
		c.report()
	}
	return nil
}

func (c *ChunkWriter) report() {
	items, raw, stored := int64(c.rw.Count()), c.raw, c.sink.n
	if c.progress != nil {
		c.progress.Add(items-c.reported[0], raw-c.reported[1], stored-c.reported[2])
	}
	c.reported = [3]int64{items, raw, stored}
}

// Commit finishes the records stream and the zstd frame and commits the file; the
// file's counters go to st. It returns the file's description for the manifest.
func (c *ChunkWriter) Commit(st *WriteStats) (File, error) {
	if c.done {
		return File{}, errors.New("chunk writer already finished")
	}
	h := c.w.Handle()
	if err := c.rw.Close(); err != nil {
		return File{}, fmt.Errorf("write chunk %s: %w", h, err)
	}
	c.raw += records.TrailerSize
	t0 := time.Now()
	before := c.sink.inside
	err := c.enc.Close()
	st.CompressNanos.Add(int64(time.Since(t0) - (c.sink.inside - before)))
	if err != nil {
		return File{}, fmt.Errorf("compress chunk %s: %w", h, err)
	}
	f := File{Handle: h, Size: c.sink.n, RawSize: c.raw}
	copy(f.SHA256[:], c.sink.h.Sum(nil))
	t0 = time.Now()
	err = c.w.Commit()
	if err != nil {
		err = confirm(c.ctx, c.st, f, err)
	}
	st.WriteNanos.Add(int64(time.Since(t0)))
	if err != nil {
		return File{}, fmt.Errorf("commit chunk %s: %w", h, err)
	}
	c.release()
	c.report()
	st.Items.Add(int64(c.rw.Count()))
	st.RawBytes.Add(c.raw)
	st.StoredBytes.Add(c.sink.n)
	st.Files.Add(1)
	return f, nil
}

// Abort discards the chunk; it is a no-op after Commit and safe to call twice.
func (c *ChunkWriter) Abort() {
	if c.done {
		return
	}
	c.w.Abort()
	c.release()
}

func (c *ChunkWriter) release() {
	if c.done {
		return
	}
	c.done = true
	putEncoder(c.level, c.enc)
	c.enc = nil
}

// WriteFile writes a small uncompressed file (a proof or the manifest) named name in
// backup and commits it; its counters go to stats. It returns the file's description
// for the manifest.
func WriteFile(ctx context.Context, st FileCreator, backup storage.BackupHandle, name string, data []byte, stats *WriteStats) (File, error) {
	t0 := time.Now()
	defer func() { stats.WriteNanos.Add(int64(time.Since(t0))) }()
	w, err := st.Create(ctx, backup, name)
	if err != nil {
		return File{}, fmt.Errorf("create %s: %w", name, err)
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return File{}, fmt.Errorf("write %s: %w", w.Handle(), err)
	}
	f := File{Handle: w.Handle(), Size: int64(len(data)), RawSize: int64(len(data)), SHA256: sha256.Sum256(data)}
	if err := w.Commit(); err != nil {
		if err = confirm(ctx, st, f, err); err != nil {
			return File{}, fmt.Errorf("commit %s: %w", w.Handle(), err)
		}
	}
	stats.StoredBytes.Add(f.Size)
	stats.Files.Add(1)
	return f, nil
}

// confirm decides the outcome of a commit of f that failed with werr by reading the
// file back (storage.ConfirmFile), when st can open files: the same bytes mean the
// commit happened. Without a way to read, werr stands.
func confirm(ctx context.Context, st FileCreator, f File, werr error) error {
	op, ok := st.(storage.Opener)
	if !ok {
		return werr
	}
	return storage.ConfirmFile(ctx, op, f.Handle, f.Size, f.SHA256, werr)
}

package backup

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

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

// recordOverhead is the framing each record adds to its payload in a chunk.
const recordOverhead = 4

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
	return zstd.NewWriter(w, zstd.WithEncoderLevel(level), zstd.WithEncoderConcurrency(1), zstd.WithLowerEncoderMem(false))
}

func putEncoder(level zstd.EncoderLevel, e *zstd.Encoder) {
	e.Reset(nil)
	p, _ := encoderPools.Load(level)
	p.(*sync.Pool).Put(e)
}

// Stats are cumulative counters of one backup, safe for concurrent updates.
type Stats struct {
	// Items is the number of records (state items, transactions, ledger infos) written.
	Items atomic.Int64
	// RawBytes is the size of the records streams before compression.
	RawBytes atomic.Int64
	// StoredBytes is the size of everything written to storage (chunks, proofs, manifest).
	StoredBytes atomic.Int64
	// Files is the number of files committed.
	Files atomic.Int64
	// FetchNanos is the time spent waiting for the backup service (its scan and
	// encoding, and the transfer), summed over workers.
	FetchNanos atomic.Int64
	// CompressNanos is the time spent in the zstd encoder (framing included).
	CompressNanos atomic.Int64
	// HashNanos is the time spent computing SHA-256 of stored bytes.
	HashNanos atomic.Int64
	// WriteNanos is the time spent in storage writes and commits.
	WriteNanos atomic.Int64
	// VerifyNanos is the time spent verifying data against proofs before writing.
	VerifyNanos atomic.Int64
}

// Summary is a plain copy of Stats.
type Summary struct {
	Items       int64         `json:"items"`
	RawBytes    int64         `json:"raw_bytes"`
	StoredBytes int64         `json:"stored_bytes"`
	Files       int64         `json:"files"`
	Fetch       time.Duration `json:"fetch_ns"`
	Compress    time.Duration `json:"compress_ns"`
	Hash        time.Duration `json:"hash_ns"`
	Write       time.Duration `json:"write_ns"`
	Verify      time.Duration `json:"verify_ns"`
}

// Summary returns a snapshot of the counters.
func (s *Stats) Summary() Summary {
	return Summary{
		Items: s.Items.Load(), RawBytes: s.RawBytes.Load(), StoredBytes: s.StoredBytes.Load(), Files: s.Files.Load(),
		Fetch: time.Duration(s.FetchNanos.Load()), Compress: time.Duration(s.CompressNanos.Load()),
		Hash: time.Duration(s.HashNanos.Load()), Write: time.Duration(s.WriteNanos.Load()), Verify: time.Duration(s.VerifyNanos.Load()),
	}
}

// storedSink is the bottom of a chunk writer: it hashes and counts what reaches the
// storage writer, timing both.
type storedSink struct {
	w      storage.Writer
	h      hash.Hash
	n      int64
	stats  *Stats
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
	st   *Stats
}

func (t *timedEncoder) Write(p []byte) (int, error) {
	t0 := time.Now()
	before := t.sink.inside
	n, err := t.enc.Write(p)
	t.st.CompressNanos.Add(int64(time.Since(t0) - (t.sink.inside - before)))
	return n, err
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
}

// CreateChunk starts the chunk file name in backup, with the compression level,
// counters and progress of o (zero fields take their defaults).
func CreateChunk(ctx context.Context, st storage.Store, backup storage.BackupHandle, name string, o *Options) (*ChunkWriter, error) {
	if o.Stats == nil || o.CompressionLevel == 0 {
		n, err := o.normalize()
		if err != nil {
			return nil, err
		}
		o = n
	}
	t0 := time.Now()
	w, err := st.Create(ctx, backup, name)
	o.stats().WriteNanos.Add(int64(time.Since(t0)))
	if err != nil {
		return nil, fmt.Errorf("create chunk %s: %w", name, err)
	}
	sink := &storedSink{w: w, h: sha256.New(), stats: o.stats()}
	enc, err := getEncoder(o.level(), sink)
	if err != nil {
		w.Abort()
		return nil, fmt.Errorf("create chunk %s: zstd encoder: %w", name, err)
	}
	c := &ChunkWriter{w: w, sink: sink, enc: enc, level: o.level(), progress: o.Progress}
	c.rw = records.NewWriterSize(&timedEncoder{enc: enc, sink: sink, st: o.stats()}, 256<<10)
	return c, nil
}

// RawSize returns the size of the chunk's records stream so far (without trailer).
func (c *ChunkWriter) RawSize() int64 { return c.raw }

// Count returns the number of records written.
func (c *ChunkWriter) Count() uint64 { return c.rw.Count() }

// Fits reports whether a record of n bytes can be added without the chunk's raw size
// (trailer included) exceeding max. An empty chunk always takes one record.
func (c *ChunkWriter) Fits(n int, max int64) bool {
	return c.rw.Count() == 0 || c.raw+int64(recordOverhead+n)+records.TrailerSize <= max
}

// WriteRecord appends one record.
func (c *ChunkWriter) WriteRecord(p []byte) error {
	if err := c.rw.WriteRecord(p); err != nil {
		return fmt.Errorf("write chunk %s: %w", c.w.Handle(), err)
	}
	c.raw += int64(recordOverhead + len(p))
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

// Commit finishes the records stream and the zstd frame and commits the file. It
// returns the file's description for the manifest.
func (c *ChunkWriter) Commit(st *Stats) (native.File, error) {
	if c.done {
		return native.File{}, errors.New("chunk writer already finished")
	}
	h := c.w.Handle()
	if err := c.rw.Close(); err != nil {
		return native.File{}, fmt.Errorf("write chunk %s: %w", h, err)
	}
	c.raw += records.TrailerSize
	t0 := time.Now()
	before := c.sink.inside
	err := c.enc.Close()
	st.CompressNanos.Add(int64(time.Since(t0) - (c.sink.inside - before)))
	if err != nil {
		return native.File{}, fmt.Errorf("compress chunk %s: %w", h, err)
	}
	t0 = time.Now()
	err = c.w.Commit()
	st.WriteNanos.Add(int64(time.Since(t0)))
	if err != nil {
		return native.File{}, fmt.Errorf("commit chunk %s: %w", h, err)
	}
	c.release()
	f := native.File{Handle: h, Size: c.sink.n, RawSize: c.raw}
	copy(f.SHA256[:], c.sink.h.Sum(nil))
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

// writeFile writes a small uncompressed file (a proof or the manifest) and commits it.
func writeFile(ctx context.Context, st storage.Store, backup storage.BackupHandle, name string, data []byte, stats *Stats) (native.File, error) {
	t0 := time.Now()
	defer func() { stats.WriteNanos.Add(int64(time.Since(t0))) }()
	w, err := st.Create(ctx, backup, name)
	if err != nil {
		return native.File{}, fmt.Errorf("create %s: %w", name, err)
	}
	defer w.Abort()
	if _, err := w.Write(data); err != nil {
		return native.File{}, fmt.Errorf("write %s: %w", w.Handle(), err)
	}
	if err := w.Commit(); err != nil {
		return native.File{}, fmt.Errorf("commit %s: %w", w.Handle(), err)
	}
	f := native.File{Handle: w.Handle(), Size: int64(len(data)), RawSize: int64(len(data)), SHA256: sha256.Sum256(data)}
	stats.StoredBytes.Add(f.Size)
	stats.Files.Add(1)
	return f, nil
}

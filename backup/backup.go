// Package backup writes the three backup types (epoch endings, state snapshots and
// transactions) from a node's backup service into backup storage.
//
// Each backup goes into a new folder with a random suffix. Its chunks are
// zstd-compressed streams of length-prefixed records (package records) written
// through native.ChunkWriter, with proof files alongside; then a JSON manifest (package
// format/native) lists every file with its range, sizes and SHA-256; then, last,
// one create-only metadata file makes the backup discoverable. Data is verified
// against the proofs the service serves before it is committed, chunks are fetched
// and written concurrently through internal/pipeline, and on any error every open
// writer is aborted, nothing more is started and no metadata is written: the call
// returns only after everything it started has returned. The format is described in
// docs/backup-format.md.
package backup

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

// Defaults of Options.
const (
	DefaultMaxChunkSize           = 64 << 20
	DefaultConcurrentDataRequests = 4
	DefaultStateRequestItems      = 100_000
	DefaultTransactionRequest     = 10_000
	// MinChunkSize is the smallest accepted MaxChunkSize.
	MinChunkSize = 1 << 10
	// MaxChunkSizeLimit is the largest accepted MaxChunkSize: the largest the
	// format's chunk decoder reads back.
	MaxChunkSizeLimit = native.MaxChunkSize
)

// ErrAlreadyBackedUp reports that a backup of the same range is already
// discoverable: its metadata file exists. The folder of this attempt is left to gc.
var ErrAlreadyBackedUp = errors.New("already backed up")

// ErrRangeBeyondNode reports a backup range past what the node has: an epoch that
// has not ended. Nothing is written for it.
var ErrRangeBeyondNode = errors.New("range beyond the node")

// Progress receives increments of work done; it must be safe for concurrent use.
type Progress = native.Progress

// ProgressTotal is implemented by a Progress that shows how much is left: each
// writer calls Total with the number of items its backup writes (ledger infos,
// state items, transactions), once the range is checked with the node and before
// the first Add (items a resumed snapshot reuses are added too).
type ProgressTotal interface {
	Total(items int64)
}

// reportTotal tells p the total, if p wants it.
func reportTotal(p Progress, items uint64) {
	if t, ok := p.(ProgressTotal); ok {
		t.Total(int64(items))
	}
}

// Options configures a backup. The zero value takes the defaults.
type Options struct {
	// MaxChunkSize caps the raw (uncompressed) size of a chunk's records stream
	// (default DefaultMaxChunkSize). A single record larger than it gets a chunk of
	// its own.
	MaxChunkSize int64
	// Concurrency is the number of data requests (and chunk writers) in flight
	// (default DefaultConcurrentDataRequests).
	Concurrency int
	// CompressionLevel is the zstd level (default native.DefaultCompressionLevel).
	CompressionLevel zstd.EncoderLevel
	// StateRequestItems is the number of state items one worker requests at once
	// (default DefaultStateRequestItems); a request may produce several chunks.
	StateRequestItems uint64
	// TransactionRequest is the number of transactions one worker requests at once
	// (default DefaultTransactionRequest).
	TransactionRequest uint64
	// Progress, if not nil, receives progress increments.
	Progress Progress
	// Logger receives progress messages (default: discard).
	Logger *slog.Logger
	// Stats, if not nil, receives the counters of the backup (a fresh one is used
	// otherwise); it is also returned in Result.
	Stats *Stats
}

func (o *Options) normalize() (*Options, error) {
	c := *o
	if c.MaxChunkSize == 0 {
		c.MaxChunkSize = DefaultMaxChunkSize
	}
	if c.MaxChunkSize < MinChunkSize || c.MaxChunkSize > MaxChunkSizeLimit {
		return nil, fmt.Errorf("max chunk size %d outside [%d, %d]", c.MaxChunkSize, MinChunkSize, MaxChunkSizeLimit)
	}
	if c.Concurrency == 0 {
		c.Concurrency = DefaultConcurrentDataRequests
	}
	if c.Concurrency < 1 || c.Concurrency > 256 {
		return nil, fmt.Errorf("concurrency %d outside [1, 256]", c.Concurrency)
	}
	if c.CompressionLevel == 0 {
		c.CompressionLevel = native.DefaultCompressionLevel
	}
	if c.StateRequestItems == 0 {
		c.StateRequestItems = DefaultStateRequestItems
	}
	if c.TransactionRequest == 0 {
		c.TransactionRequest = DefaultTransactionRequest
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Stats == nil {
		c.Stats = new(Stats)
	}
	return &c, nil
}

// Result describes a completed backup.
type Result struct {
	// Backup is the backup's folder.
	Backup storage.BackupHandle
	// Metadata is the line saved in MetadataHandle.
	Metadata native.Metadata
	// MetadataHandle is the metadata file that made the backup discoverable.
	MetadataHandle storage.FileHandle
	// Stats are the backup's counters.
	Stats Summary
	// Elapsed is the wall time of the backup.
	Elapsed time.Duration
	// Resumed reports that the backup reused files of an earlier attempt.
	Resumed bool
}

// checkNotBackedUp fails early with ErrAlreadyBackedUp when a backup of the same
// range is discoverable: its metadata file name is taken, or a compacted metadata
// file (which replaces the small files it merged, see maintenance/compact) holds a line
// for it. The create-only save at the end is what guarantees it against a
// concurrent writer.
func checkNotBackedUp(ctx context.Context, st storage.Store, name string) error {
	hs, err := st.ListMetadata(ctx)
	if err != nil {
		return fmt.Errorf("list metadata: %w", err)
	}
	for _, h := range hs {
		if base(string(h)) == name {
			return fmt.Errorf("%s: %w", name, ErrAlreadyBackedUp)
		}
	}
	for _, h := range hs {
		b := base(string(h))
		if !native.IsCompactedMetadataName(b) {
			continue
		}
		lines, _, err := native.ReadMetadataFile(ctx, st, h)
		if errors.Is(err, storage.ErrNotFound) {
			continue // compacted into a newer file, which the listing also holds
		}
		if err != nil {
			return err
		}
		for i := range lines {
			if native.MetadataName(&lines[i]) == name {
				return fmt.Errorf("%s (in %s): %w", name, h, ErrAlreadyBackedUp)
			}
		}
	}
	return nil
}

func base(h string) string {
	for i := len(h) - 1; i >= 0; i-- {
		if h[i] == '/' {
			return h[i+1:]
		}
	}
	return h
}

// finish writes the manifest, then the metadata line, create-only, last.
func finish(ctx context.Context, st storage.Store, b storage.BackupHandle, m native.Manifest, meta native.Metadata, o *Options, start time.Time) (*Result, error) {
	return finishNamed(ctx, st, b, native.ManifestName, m, meta, o, start, 0)
}

// finishNamed is finish with the manifest written under name (a resumed attempt's
// tagged name); extraSize (files of an earlier attempt that the manifest references)
// is added to the metadata's size.
func finishNamed(ctx context.Context, st storage.Store, b storage.BackupHandle, name string, m native.Manifest, meta native.Metadata, o *Options, start time.Time, extraSize int64) (*Result, error) {
	data, err := native.Encode(m)
	if err != nil {
		return nil, fmt.Errorf("encode manifest: %w", err)
	}
	mf, err := native.WriteFile(ctx, st, b, name, data, &o.Stats.WriteStats)
	if err != nil {
		return nil, err
	}
	meta.Format = native.FormatVersion
	meta.Manifest = mf.Handle
	meta.Size = o.Stats.StoredBytes.Load() + extraSize
	line, err := meta.EncodeLine()
	if err != nil {
		return nil, fmt.Errorf("encode metadata: %w", err)
	}
	metaName := native.MetadataName(&meta)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	h, err := st.SaveMetadata(ctx, metaName, line)
	if err != nil {
		// The outcome may be ambiguous (committed, then reported failure; or our own
		// retried attempt found): the same bytes under the name are ours.
		if ch, cerr := storage.ConfirmMetadata(ctx, st, metaName, line, err); cerr == nil {
			o.Logger.Warn("saving metadata reported an error but committed: it is ours", "metadata", ch, "err", err)
			h, err = ch, nil
		} else {
			err = cerr
		}
	}
	if errors.Is(err, storage.ErrAlreadyExists) {
		return nil, fmt.Errorf("save metadata %s: %w (folder %s is left for gc)", metaName, ErrAlreadyBackedUp, b)
	}
	if err != nil {
		return nil, fmt.Errorf("save metadata %s: %w", metaName, err)
	}
	// The caller logs the one "backup completed" line (the command or the coordinator).
	return &Result{Backup: b, Metadata: meta, MetadataHandle: h, Stats: o.Stats.Summary(), Elapsed: time.Since(start),
		Resumed: name != native.ManifestName || extraSize != 0}, nil
}

// timed adds the time since t0 to a counter.
func timed(c interface{ Add(int64) int64 }, t0 time.Time) { c.Add(int64(time.Since(t0))) }

package backup

import (
	"sync/atomic"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
)

// Stats are cumulative counters of one backup, safe for concurrent updates: those of
// the chunk and file writers (native.WriteStats) and the time spent on the service
// and on verification.
type Stats struct {
	native.WriteStats
	// FetchNanos is the time spent waiting for the backup service (its scan and
	// encoding, and the transfer), summed over workers.
	FetchNanos atomic.Int64
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

// chunkOptions are the chunk writer's options of a normalized o.
func (o *Options) chunkOptions() native.ChunkOptions {
	return native.ChunkOptions{Level: o.CompressionLevel, Stats: &o.Stats.WriteStats, Progress: o.Progress}
}

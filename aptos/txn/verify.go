package txn

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/internal/pipeline"
)

// LedgerInfoVerifier checks that a ledger info is true: signed by a quorum of the
// validators of its epoch, as an epoch history verified from a trusted waypoint knows
// them (package aptos).
type LedgerInfoVerifier interface {
	VerifyLedgerInfo(ctx context.Context, li *aptos.LedgerInfoWithSignatures) error
}

// LedgerInfoVerifierFunc adapts a function to a LedgerInfoVerifier.
type LedgerInfoVerifierFunc func(ctx context.Context, li *aptos.LedgerInfoWithSignatures) error

// VerifyLedgerInfo calls f.
func (f LedgerInfoVerifierFunc) VerifyLedgerInfo(ctx context.Context, li *aptos.LedgerInfoWithSignatures) error {
	return f(ctx, li)
}

// Chunk describes one chunk of a transaction backup as its manifest lists it.
type Chunk struct {
	// Name is the chunk file's handle, used in errors.
	Name string
	// ProofName is the proof file's handle, used in errors.
	ProofName string
	// FirstVersion and LastVersion are the chunk's version range, inclusive.
	FirstVersion uint64
	// LastVersion is the last version in the chunk.
	LastVersion uint64
}

// Options tune VerifyChunk.
type Options struct {
	// Domain is the chain's hash domain (the one its trusted waypoint matched); nil
	// detects it from the first record among aptos.KnownDomains.
	Domain *aptos.Domain
	// LedgerInfo checks the proof's signed ledger info. It is required: a chunk is only
	// as true as the ledger info its proof ends in.
	LedgerInfo LedgerInfoVerifier
	// Workers is the number of goroutines decoding and hashing records (default
	// GOMAXPROCS).
	Workers int
	// BatchRecords is the number of records one worker call handles (default 512).
	BatchRecords int
}

// Stats describe a verified chunk.
type Stats struct {
	// Transactions is the number of records verified.
	Transactions uint64
	// RecordBytes is the total size of the records (without framing).
	RecordBytes int64
	// Events is the number of events.
	Events int
	// WriteSetEntries is the number of write set entries.
	WriteSetEntries int
	// UserTransactions is the number of user transactions.
	UserTransactions int
	// Domain is the hash domain's prefix.
	Domain string
	// LedgerInfoEpoch and LedgerInfoVersion identify the ledger info the proof ends in.
	LedgerInfoEpoch uint64
	// LedgerInfoVersion is the version of that ledger info.
	LedgerInfoVersion uint64

	domain *aptos.Domain
}

// maxVersion bounds versions: an accumulator holds fewer than 2^63 leaves.
const maxVersion = 1<<63 - 1

// ErrMismatch is wrapped by errors of a record whose contents disagree with its
// transaction info, or a chunk whose records disagree with its manifest range.
var ErrMismatch = errors.New("mismatch")

// VerifyChunk verifies one transaction chunk: it decodes the proof file (the range
// proof and the ledger info), has opts.LedgerInfo check the ledger info, then streams the
// records of records (the decompressed chunk file), decoding each strictly and
// checking, in parallel, that its transaction hashes to the info's transaction_hash,
// its events to event_root_hash and its write set to state_change_hash; the infos'
// hashes, in version order, must then be proven by the range proof into the ledger
// info's accumulator root. The records must be exactly the versions c.FirstVersion to
// c.LastVersion. Memory is bounded by the workers times the batch size, not by the
// chunk. Every error names the chunk or proof file, and the version where it applies.
func VerifyChunk(ctx context.Context, c Chunk, records io.Reader, proof []byte, opts Options) (Stats, error) {
	var st Stats
	if c.LastVersion < c.FirstVersion || c.LastVersion >= maxVersion {
		return st, fmt.Errorf("chunk %s: versions %d-%d: %w: not a version range", c.Name, c.FirstVersion, c.LastVersion, ErrMismatch)
	}
	if opts.LedgerInfo == nil {
		return st, fmt.Errorf("chunk %s: no ledger info verifier", c.Name)
	}
	if opts.Workers <= 0 {
		opts.Workers = runtime.GOMAXPROCS(0)
	}
	if opts.BatchRecords <= 0 {
		opts.BatchRecords = 512
	}
	p, err := DecodeChunkProof(proof)
	if err != nil {
		return st, fmt.Errorf("proof %s: %w", c.ProofName, err)
	}
	li := &p.LedgerInfo.LedgerInfo
	st.LedgerInfoEpoch, st.LedgerInfoVersion = li.Epoch(), li.Version()
	if li.Version() < c.LastVersion {
		return st, fmt.Errorf("proof %s: %w: ledger info at version %d cannot prove versions up to %d", c.ProofName, ErrMismatch, li.Version(), c.LastVersion)
	}
	if err := checkProofShape(c.FirstVersion, c.LastVersion, li.Version()+1, len(p.Range.LeftSiblings), len(p.Range.RightSiblings)); err != nil {
		return st, fmt.Errorf("proof %s: versions %d-%d: %w", c.ProofName, c.FirstVersion, c.LastVersion, err)
	}
	if err := opts.LedgerInfo.VerifyLedgerInfo(ctx, &p.LedgerInfo); err != nil {
		return st, fmt.Errorf("proof %s: signed ledger info: %w", c.ProofName, err)
	}

	fr := NewFrameReader(records, MaxRecordSize)
	want := c.LastVersion - c.FirstVersion + 1
	next := c.FirstVersion // version of the next record to read
	var s *seeds
	if opts.Domain != nil {
		s = seedsOf(opts.Domain)
	}
	var rv *rangeVerifier

	type batch struct {
		first   uint64
		data    []byte
		offsets []int // record i is data[offsets[i]:offsets[i+1]]
		err     error // a failure after the batch's records
	}
	type result struct {
		leaves                []HashValue
		bytes                 int64
		events, writes, users int
		err                   error
	}
	detect := func(raw []byte) error {
		rec, err := DecodeRecord(raw)
		if err != nil {
			return err
		}
		d := DetectDomain(rec)
		if d == nil {
			return fmt.Errorf("%w: the transaction hashes to its transaction_hash %s in no known hash domain", ErrMismatch, rec.Info.TransactionHash)
		}
		s = seedsOf(d)
		return nil
	}

	// Errors travel in order: a failure found while reading becomes the last batch's
	// error, and a worker's failure its result's, so the sink reports the failure at the
	// lowest version whatever the workers' timing.
	var srcDone bool
	src := func(ctx context.Context) (batch, bool, error) {
		b := batch{first: next, offsets: []int{0}}
		if srcDone {
			return b, false, nil
		}
		if err := ctx.Err(); err != nil {
			return b, false, err
		}
		for len(b.offsets) <= opts.BatchRecords && len(b.data) < 8<<20 {
			var err error
			b.data, err = fr.Append(b.data)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.err = fmt.Errorf("chunk %s: version %d: %w", c.Name, next, err)
				break
			}
			if next-c.FirstVersion >= want {
				b.err = fmt.Errorf("chunk %s: version %d: %w: record beyond the chunk's last version %d", c.Name, next, ErrMismatch, c.LastVersion)
				break
			}
			b.offsets = append(b.offsets, len(b.data))
			if s == nil {
				if err := detect(b.data[b.offsets[len(b.offsets)-2]:]); err != nil {
					// Only the first record detects; without a domain no record is hashed.
					b.offsets = b.offsets[:len(b.offsets)-1]
					b.err = fmt.Errorf("chunk %s: version %d: %w", c.Name, next, err)
					break
				}
			}
			next++
		}
		if b.err != nil {
			srcDone = true
			return b, true, nil
		}
		if len(b.offsets) == 1 {
			return b, false, nil
		}
		if rv == nil {
			var err error
			if rv, err = newRangeVerifier(s, c.FirstVersion, p.Range.LeftSiblings, p.Range.RightSiblings); err != nil {
				b.err = fmt.Errorf("proof %s: versions %d-%d: %w", c.ProofName, c.FirstVersion, c.LastVersion, err)
				srcDone = true
			}
		}
		return b, true, nil
	}

	work := func(ctx context.Context, b batch) (result, error) {
		res := result{leaves: make([]HashValue, 0, len(b.offsets)-1)}
		x := newHasher()
		scratch := make([]HashValue, 0, 64)
		for i := 0; i+1 < len(b.offsets); i++ {
			v := b.first + uint64(i)
			raw := b.data[b.offsets[i]:b.offsets[i+1]]
			rec, err := DecodeRecord(raw)
			if err != nil {
				res.err = fmt.Errorf("chunk %s: version %d: %w", c.Name, v, err)
				return res, nil
			}
			h := x.hashes(s, rec, &scratch)
			if err := rec.check(&h); err != nil {
				res.err = fmt.Errorf("chunk %s: version %d: %w", c.Name, v, err)
				return res, nil
			}
			res.leaves = append(res.leaves, h.Info)
			res.bytes += int64(len(raw))
			res.events += len(rec.Events)
			res.writes += len(rec.WriteSet.Entries)
			if rec.Transaction.Kind == KindUser {
				res.users++
			}
		}
		res.err = b.err
		return res, nil
	}

	sink := func(_ context.Context, r result) error {
		if r.err != nil {
			return r.err
		}
		for _, l := range r.leaves {
			rv.add(l)
		}
		st.Transactions += uint64(len(r.leaves))
		st.RecordBytes += r.bytes
		st.Events += r.events
		st.WriteSetEntries += r.writes
		st.UserTransactions += r.users
		return nil
	}

	err = pipeline.Ordered(ctx, pipeline.Options{Workers: opts.Workers, Buffered: opts.Workers}, src, work, sink)
	if err != nil {
		return st, err
	}
	if st.Transactions != want {
		return st, fmt.Errorf("chunk %s: version %d: %w: chunk ends after %d records, its manifest range %d-%d has %d", c.Name, c.FirstVersion+st.Transactions, ErrMismatch, st.Transactions, c.FirstVersion, c.LastVersion, want)
	}
	st.Domain, st.domain = s.domain.Prefix(), s.domain
	root, err := rv.root()
	if err != nil {
		return st, fmt.Errorf("proof %s: versions %d-%d: %w", c.ProofName, c.FirstVersion, c.LastVersion, err)
	}
	if root != li.AccumulatorRoot() {
		return st, fmt.Errorf("proof %s: versions %d-%d: %w: infos and proof give root %s, ledger info (epoch %d, version %d) has %s", c.ProofName, c.FirstVersion, c.LastVersion, aptos.ErrProof, root, li.Epoch(), li.Version(), li.AccumulatorRoot())
	}
	return st, nil
}

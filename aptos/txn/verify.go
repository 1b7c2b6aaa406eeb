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
	v := &chunkVerifier{c: c, opts: opts}
	if err := v.checkProof(ctx, proof); err != nil {
		return v.st, err
	}
	v.fr = NewFrameReader(records, MaxRecordSize)
	v.want = c.LastVersion - c.FirstVersion + 1
	v.next = c.FirstVersion
	if v.opts.Domain != nil {
		v.s = seedsOf(v.opts.Domain)
	}
	err := pipeline.Ordered(ctx, pipeline.Options{Workers: v.opts.Workers, Buffered: v.opts.Workers}, v.source, v.work, v.sink)
	if err != nil {
		return v.st, err
	}
	return v.st, v.finish()
}

// chunkVerifier holds the state of one VerifyChunk call: the checked proof, the record
// stream, and the stats the pipeline's sink gathers.
type chunkVerifier struct {
	c    Chunk
	opts Options
	p    *ChunkProof
	li   *aptos.LedgerInfo

	fr      *FrameReader
	want    uint64 // number of records the manifest range holds
	next    uint64 // version of the next record to read
	srcDone bool   // the source has emitted its failing batch
	s       *seeds // nil until the domain is known
	rv      *rangeVerifier

	st Stats
}

// chunkBatch is a run of consecutive records the source hands to a worker.
type chunkBatch struct {
	first   uint64
	data    []byte
	offsets []int // record i is data[offsets[i]:offsets[i+1]]
	err     error // a failure after the batch's records
}

// chunkResult is what a worker found in one chunkBatch.
type chunkResult struct {
	leaves                []HashValue
	bytes                 int64
	events, writes, users int
	err                   error
}

// checkProof validates the chunk's range and the options (filling in defaults),
// decodes the proof file, checks its shape against the range and has
// opts.LedgerInfo verify its signed ledger info.
func (v *chunkVerifier) checkProof(ctx context.Context, proof []byte) error {
	c := v.c
	if c.LastVersion < c.FirstVersion || c.LastVersion >= maxVersion {
		return fmt.Errorf("chunk %s: versions %d-%d: %w: not a version range", c.Name, c.FirstVersion, c.LastVersion, ErrMismatch)
	}
	if v.opts.LedgerInfo == nil {
		return fmt.Errorf("chunk %s: no ledger info verifier", c.Name)
	}
	if v.opts.Workers <= 0 {
		v.opts.Workers = runtime.GOMAXPROCS(0)
	}
	if v.opts.BatchRecords <= 0 {
		v.opts.BatchRecords = 512
	}
	p, err := DecodeChunkProof(proof)
	if err != nil {
		return fmt.Errorf("proof %s: %w", c.ProofName, err)
	}
	v.p = p
	li := &p.LedgerInfo.LedgerInfo
	v.li = li
	v.st.LedgerInfoEpoch, v.st.LedgerInfoVersion = li.Epoch(), li.Version()
	if li.Version() < c.LastVersion {
		return fmt.Errorf("proof %s: %w: ledger info at version %d cannot prove versions up to %d", c.ProofName, ErrMismatch, li.Version(), c.LastVersion)
	}
	if err := checkProofShape(c.FirstVersion, c.LastVersion, li.Version()+1, len(p.Range.LeftSiblings), len(p.Range.RightSiblings)); err != nil {
		return fmt.Errorf("proof %s: versions %d-%d: %w", c.ProofName, c.FirstVersion, c.LastVersion, err)
	}
	if err := v.opts.LedgerInfo.VerifyLedgerInfo(ctx, &p.LedgerInfo); err != nil {
		return fmt.Errorf("proof %s: signed ledger info: %w", c.ProofName, err)
	}
	return nil
}

// detect decodes raw, the chunk's first record, and sets the hash domain to the one
// its transaction hashes to its transaction_hash in.
func (v *chunkVerifier) detect(raw []byte) error {
	rec, err := DecodeRecord(raw)
	if err != nil {
		return err
	}
	d := DetectDomain(rec)
	if d == nil {
		return fmt.Errorf("%w: the transaction hashes to its transaction_hash %s in no known hash domain", ErrMismatch, rec.Info.TransactionHash)
	}
	v.s = seedsOf(d)
	return nil
}

// source is the pipeline's source: it reads the next batch of records. Errors travel
// in order: a failure found while reading becomes the last batch's error, and a
// worker's failure its result's, so the sink reports the failure at the lowest version
// whatever the workers' timing.
func (v *chunkVerifier) source(ctx context.Context) (chunkBatch, bool, error) {
	c := v.c
	b := chunkBatch{first: v.next, offsets: []int{0}}
	if v.srcDone {
		return b, false, nil
	}
	if err := ctx.Err(); err != nil {
		return b, false, err
	}
	v.fill(&b)
	if b.err != nil {
		v.srcDone = true
		return b, true, nil
	}
	if len(b.offsets) == 1 {
		return b, false, nil
	}
	if v.rv == nil {
		var err error
		if v.rv, err = newRangeVerifier(v.s, c.FirstVersion, v.p.Range.LeftSiblings, v.p.Range.RightSiblings); err != nil {
			b.err = fmt.Errorf("proof %s: versions %d-%d: %w", c.ProofName, c.FirstVersion, c.LastVersion, err)
			v.srcDone = true
		}
	}
	return b, true, nil
}

// fill appends records to b until it is full or the stream ends; a failure while
// reading becomes b.err.
func (v *chunkVerifier) fill(b *chunkBatch) {
	c := v.c
	for len(b.offsets) <= v.opts.BatchRecords && len(b.data) < 8<<20 {
		var err error
		b.data, err = v.fr.Append(b.data)
		if err == io.EOF {
			break
		}
		if err != nil {
			b.err = fmt.Errorf("chunk %s: version %d: %w", c.Name, v.next, err)
			break
		}
		if v.next-c.FirstVersion >= v.want {
			b.err = fmt.Errorf("chunk %s: version %d: %w: record beyond the chunk's last version %d", c.Name, v.next, ErrMismatch, c.LastVersion)
			break
		}
		b.offsets = append(b.offsets, len(b.data))
		if v.s == nil {
			if err := v.detect(b.data[b.offsets[len(b.offsets)-2]:]); err != nil {
				// Only the first record detects; without a domain no record is hashed.
				b.offsets = b.offsets[:len(b.offsets)-1]
				b.err = fmt.Errorf("chunk %s: version %d: %w", c.Name, v.next, err)
				break
			}
		}
		v.next++
	}
}

// work is the pipeline's worker: it decodes and checks the records of b, returning
// their info hashes and counts; a record's failure, or b's own, becomes the result's
// error. It reads only v.c and v.s, which the source no longer changes once a batch
// of records exists.
func (v *chunkVerifier) work(_ context.Context, b chunkBatch) (chunkResult, error) {
	res := chunkResult{leaves: make([]HashValue, 0, len(b.offsets)-1)}
	x := newHasher()
	scratch := make([]HashValue, 0, 64)
	for i := 0; i+1 < len(b.offsets); i++ {
		ver := b.first + uint64(i)
		raw := b.data[b.offsets[i]:b.offsets[i+1]]
		rec, err := DecodeRecord(raw)
		if err != nil {
			res.err = fmt.Errorf("chunk %s: version %d: %w", v.c.Name, ver, err)
			return res, nil
		}
		h := x.hashes(v.s, rec, &scratch)
		if err := rec.check(&h); err != nil {
			res.err = fmt.Errorf("chunk %s: version %d: %w", v.c.Name, ver, err)
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

// sink is the pipeline's sink: in version order, it adds a result's leaves to the
// range verifier and its counts to the stats, or returns its error.
func (v *chunkVerifier) sink(_ context.Context, r chunkResult) error {
	if r.err != nil {
		return r.err
	}
	for _, l := range r.leaves {
		v.rv.add(l)
	}
	v.st.Transactions += uint64(len(r.leaves))
	v.st.RecordBytes += r.bytes
	v.st.Events += r.events
	v.st.WriteSetEntries += r.writes
	v.st.UserTransactions += r.users
	return nil
}

// finish checks, after every record was verified, that the chunk held its whole
// manifest range and that the range proof proves the infos into the ledger info's
// accumulator root.
func (v *chunkVerifier) finish() error {
	c, li := v.c, v.li
	if v.st.Transactions != v.want {
		return fmt.Errorf("chunk %s: version %d: %w: chunk ends after %d records, its manifest range %d-%d has %d", c.Name, c.FirstVersion+v.st.Transactions, ErrMismatch, v.st.Transactions, c.FirstVersion, c.LastVersion, v.want)
	}
	v.st.Domain, v.st.domain = v.s.domain.Prefix(), v.s.domain
	root, err := v.rv.root()
	if err != nil {
		return fmt.Errorf("proof %s: versions %d-%d: %w", c.ProofName, c.FirstVersion, c.LastVersion, err)
	}
	if root != li.AccumulatorRoot() {
		return fmt.Errorf("proof %s: versions %d-%d: %w: infos and proof give root %s, ledger info (epoch %d, version %d) has %s", c.ProofName, c.FirstVersion, c.LastVersion, aptos.ErrProof, root, li.Epoch(), li.Version(), li.AccumulatorRoot())
	}
	return nil
}

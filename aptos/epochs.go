package aptos

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync"
	"time"
)

// Ending is one epoch-ending record handed to VerifyEpochChain.
type Ending struct {
	// Source names the record in errors, such as "epoch_ending_5-.ab12/5-.chunk record 0".
	Source string
	// Record is the record's BCS bytes (a LedgerInfoWithSignatures), without its frame.
	Record []byte
	// ManifestWaypoint is the waypoint the backup's manifest lists for this ending, or
	// nil when the caller has none; when set it must equal the ending's waypoint.
	ManifestWaypoint *Waypoint
}

// EndingSource yields epoch endings in epoch order. Next returns io.EOF after the last.
type EndingSource interface {
	Next(ctx context.Context) (Ending, error)
}

// SliceSource is an EndingSource over endings already in memory.
type SliceSource []Ending

// Next returns the next ending, or io.EOF.
func (s *SliceSource) Next(ctx context.Context) (Ending, error) {
	if err := ctx.Err(); err != nil {
		return Ending{}, err
	}
	if len(*s) == 0 {
		return Ending{}, io.EOF
	}
	e := (*s)[0]
	*s = (*s)[1:]
	return e, nil
}

// ChainOptions tune VerifyEpochChain; the zero value is usable.
type ChainOptions struct {
	// Concurrency bounds the signature verifications in flight (default GOMAXPROCS).
	Concurrency int
	// MaxEndings bounds how many endings one call accepts (default 1<<20), so that a
	// hostile source cannot grow the history without limit.
	MaxEndings int
}

// ChainStats describe one VerifyEpochChain call.
type ChainStats struct {
	// Endings is the number of epoch endings accepted.
	Endings int
	// Signatures is the number of aggregate BLS signatures verified (every ending after
	// the trusted one carries one).
	Signatures int
	// SignerKeys is the total number of validator public keys aggregated into them.
	SignerKeys int
	// Elapsed is the wall time of the call.
	Elapsed time.Duration
}

// EpochHistory is a verified chain of epoch endings, from the ending a trusted waypoint
// names to the last one verified (backup-cli's EpochHistory, stricter: a ledger info of
// an epoch the history does not reach is an error, not a warning).
type EpochHistory struct {
	domain  *Domain
	trusted Waypoint
	first   uint64
	keys    *keyCache
	endings []*LedgerInfo
	sets    []*validatorSet // sets[i]: the validator set endings[i] announces
}

// Domain returns the hash domain the trusted waypoint selected.
func (h *EpochHistory) Domain() *Domain { return h.domain }

// FirstEpoch returns the epoch of the trusted ending.
func (h *EpochHistory) FirstEpoch() uint64 { return h.first }

// LastEpoch returns the epoch of the last verified ending.
func (h *EpochHistory) LastEpoch() uint64 { return h.first + uint64(len(h.endings)) - 1 }

// Ending returns the verified ending ledger info of epoch, if the history holds it.
func (h *EpochHistory) Ending(epoch uint64) (*LedgerInfo, bool) {
	if epoch < h.first || epoch > h.LastEpoch() {
		return nil, false
	}
	return h.endings[epoch-h.first], true
}

// VerifyLedgerInfo checks a signed ledger info against the history: in the trusted
// epoch it must equal the trusted ending (the genesis ledger info carries no signature);
// in any later epoch the history reaches it must carry a quorum signature of the
// validator set of its epoch, which the previous epoch's verified ending announced
// (even when it equals a verified ending: a signature that does not verify is an error).
func (h *EpochHistory) VerifyLedgerInfo(li *LedgerInfoWithSignatures) error {
	_, err := h.verifyLedgerInfo(li)
	return err
}

func (h *EpochHistory) verifyLedgerInfo(li *LedgerInfoWithSignatures) (signers int, err error) {
	e := li.LedgerInfo.Epoch()
	if e == h.first {
		// The trusted epoch: its validator set is not known, only its ending.
		if bytes.Equal(h.endings[0].Raw, li.LedgerInfo.Raw) {
			return 0, nil
		}
		return 0, fmt.Errorf("ledger info of epoch %d (version %d) cannot be verified: it is not the ending the trusted waypoint names, and the history starts there",
			e, li.LedgerInfo.Version())
	}
	if e < h.first {
		return 0, fmt.Errorf("ledger info of epoch %d (version %d) cannot be verified: the history starts at the trusted epoch %d",
			e, li.LedgerInfo.Version(), h.first)
	}
	if e-1 > h.LastEpoch() {
		return 0, fmt.Errorf("ledger info of epoch %d (version %d) is beyond the verified epoch history, which ends at epoch %d",
			e, li.LedgerInfo.Version(), h.LastEpoch())
	}
	set := h.sets[e-1-h.first]
	if set.state.Epoch != e {
		return 0, fmt.Errorf("ledger info of epoch %d: the validator set announced by epoch %d is for epoch %d", e, e-1, set.state.Epoch)
	}
	n, err := set.verify(h.domain.SigningMessage(&li.LedgerInfo), &li.Signatures)
	if err != nil {
		return 0, fmt.Errorf("ledger info of epoch %d (version %d): %w", e, li.LedgerInfo.Version(), err)
	}
	return n, nil
}

// VerifyStateSnapshot checks a state snapshot's state.proof bytes (backup-cli's
// (TransactionInfoWithProof, LedgerInfoWithSignatures)) for a snapshot of version whose
// manifest claims rootHash: the ledger info against the history, the transaction info
// at version into its accumulator, and rootHash equal to the info's state checkpoint hash.
func (h *EpochHistory) VerifyStateSnapshot(proof []byte, version uint64, rootHash HashValue) (*StateSnapshotProof, error) {
	p, err := DecodeStateSnapshotProof(proof)
	if err != nil {
		return nil, fmt.Errorf("state snapshot at version %d: %w", version, err)
	}
	if err := h.VerifyLedgerInfo(&p.LedgerInfo); err != nil {
		return nil, fmt.Errorf("state snapshot at version %d: %w", version, err)
	}
	if err := p.TxnInfo.Verify(h.domain, &p.LedgerInfo.LedgerInfo, version); err != nil {
		return nil, fmt.Errorf("state snapshot at version %d: %w", version, err)
	}
	got := p.TxnInfo.Info.StateCheckpointHash
	if got == nil {
		return nil, fmt.Errorf("state snapshot at version %d: %w: the transaction info has no state checkpoint hash", version, ErrStateRoot)
	}
	if *got != rootHash {
		return nil, fmt.Errorf("state snapshot at version %d: %w: manifest root_hash %s, proven state checkpoint hash %s",
			version, ErrStateRoot, rootHash, *got)
	}
	return p, nil
}

// ErrChain is wrapped by every break of the epoch chain other than a bad signature.
var ErrChain = errors.New("epoch chain broken")

// VerifyEpochChain verifies epoch endings from src, trusting only the waypoint trusted:
// the first ending must match it (which also selects the hash domain, see DetectDomain),
// and every later ending must be the next epoch's, end its epoch, match the waypoint its
// manifest lists, and carry an aggregate BLS signature by more than 2/3 of the voting
// power of the validator set the previous ending announced. Records are decoded and the
// chain order checked sequentially; signatures are verified in parallel (at most
// opt.Concurrency at once). On failure the error names the earliest failing ending
// (its Source and epoch) and no history is returned. Every goroutine started has
// returned when VerifyEpochChain returns.
func VerifyEpochChain(ctx context.Context, trusted Waypoint, src EndingSource, opt ChainOptions) (*EpochHistory, ChainStats, error) {
	start := time.Now()
	if opt.Concurrency <= 0 {
		opt.Concurrency = runtime.GOMAXPROCS(0)
	}
	if opt.MaxEndings <= 0 {
		opt.MaxEndings = 1 << 20
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	w := &chainWalk{trusted: trusted, opt: opt, errs: map[int]error{}, sem: make(chan struct{}, opt.Concurrency)}
	for pos := 0; w.firstErr() == nil; pos++ {
		if !w.step(ctx, src, pos) {
			break
		}
	}
	w.wg.Wait()
	if err := w.firstErr(); err != nil {
		return nil, ChainStats{}, err
	}
	if err := ctx.Err(); err != nil { // workers skipped by a cancellation verified nothing
		return nil, ChainStats{}, fmt.Errorf("verify epoch chain: %w", err)
	}
	if w.h == nil {
		return nil, ChainStats{}, fmt.Errorf("%w: no epoch endings to verify from waypoint %s", ErrChain, trusted)
	}
	stats := ChainStats{Endings: len(w.h.endings), Signatures: w.sigs, SignerKeys: w.signers, Elapsed: time.Since(start)}
	return w.h, stats, nil
}

// chainWalk is the state of one VerifyEpochChain call: the history built so far, the
// signature checks in flight, and the failures found, by position in the chain.
type chainWalk struct {
	trusted Waypoint
	opt     ChainOptions
	h       *EpochHistory
	prev    *LedgerInfo

	mu      sync.Mutex
	errs    map[int]error // by position in the chain
	signers int
	sigs    int
	wg      sync.WaitGroup
	sem     chan struct{}
}

// fail records err as the failure of the ending at pos.
func (w *chainWalk) fail(pos int, err error) {
	w.mu.Lock()
	w.errs[pos] = err
	w.mu.Unlock()
}

// firstErr returns the failure at the lowest position, or nil.
func (w *chainWalk) firstErr() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	best := -1
	for p := range w.errs {
		if best < 0 || p < best {
			best = p
		}
	}
	if best < 0 {
		return nil
	}
	return w.errs[best]
}

// step reads, decodes and checks the ending at pos, queueing its signature check, and
// appends it to the history. It reports whether the walk goes on: false at the end of
// src or after recording a failure.
func (w *chainWalk) step(ctx context.Context, src EndingSource, pos int) bool {
	e, err := src.Next(ctx)
	if err == io.EOF {
		return false
	}
	if err != nil {
		w.fail(pos, fmt.Errorf("read epoch ending %d of the chain: %w", pos, err))
		return false
	}
	if pos >= w.opt.MaxEndings {
		w.fail(pos, fmt.Errorf("%s: more than %d epoch endings", e.Source, w.opt.MaxEndings))
		return false
	}
	li, err := DecodeLedgerInfoWithSignatures(e.Record)
	if err != nil {
		if DetectGeneration(e.Record) == GenerationDiem1 {
			err = fmt.Errorf("%w: %s epoch endings are decoded but not verified by this chain walk", ErrGenerationNotChecked, GenerationDiem1)
		}
		w.fail(pos, fmt.Errorf("%s: %w", e.Source, err))
		return false
	}
	l := &li.LedgerInfo
	where := fmt.Sprintf("%s (epoch %d, version %d)", e.Source, l.Epoch(), l.Version())
	if err := w.checkLink(l, where, e.ManifestWaypoint); err != nil {
		w.fail(pos, err)
		return false
	}
	if w.prev != nil {
		if err := w.queueSignature(ctx, pos, where, li); err != nil {
			w.fail(pos, err)
			return false
		}
	}
	h := w.h
	h.endings = append(h.endings, l)
	set := newValidatorSet(l.CommitInfo.NextEpochState)
	set.cache = h.keys
	h.sets = append(h.sets, set)
	w.prev = l
	return true
}

// checkLink checks that l, described by where, ends its epoch, follows the previous
// ending (or, as the first, matches the trusted waypoint, which creates the history)
// and matches the waypoint its manifest lists, if any.
func (w *chainWalk) checkLink(l *LedgerInfo, where string, manifest *Waypoint) error {
	if !l.EndsEpoch() {
		return fmt.Errorf("%s: %w: not an epoch-ending ledger info (no next epoch state)", where, ErrChain)
	}
	prev := w.prev
	if prev == nil {
		d, err := DetectDomain(w.trusted, l)
		if err != nil {
			return fmt.Errorf("%s: %w: %v", where, ErrChain, err)
		}
		w.h = &EpochHistory{domain: d, trusted: w.trusted, first: l.Epoch(), keys: newKeyCache()}
	} else {
		if l.Epoch() != prev.Epoch()+1 {
			return fmt.Errorf("%s: %w: expected epoch %d after epoch %d", where, ErrChain, prev.Epoch()+1, prev.Epoch())
		}
		if l.Version() <= prev.Version() {
			return fmt.Errorf("%s: %w: version not after epoch %d's version %d", where, ErrChain, prev.Epoch(), prev.Version())
		}
	}
	if manifest != nil {
		if wp := w.h.domain.Waypoint(l); wp != *manifest {
			return fmt.Errorf("%s: %w: waypoint %s, the manifest lists %s", where, ErrChain, wp, *manifest)
		}
	}
	return nil
}

// queueSignature checks li's signers against the validator set the previous ending
// announced, then starts a goroutine, once one of opt.Concurrency slots is free, that
// verifies li's aggregate signature and records its failure at pos. It returns an error
// if the set is for another epoch, the signers are not in it, or ctx ends while waiting.
func (w *chainWalk) queueSignature(ctx context.Context, pos int, where string, li *LedgerInfoWithSignatures) error {
	l := &li.LedgerInfo
	set := w.h.sets[len(w.h.sets)-1]
	if set.state.Epoch != l.Epoch() {
		return fmt.Errorf("%s: %w: the previous ending announced a validator set for epoch %d", where, ErrChain, set.state.Epoch)
	}
	if _, err := set.checkSigners(&li.Signatures); err != nil { // cheap: before queueing
		return fmt.Errorf("%s: %w", where, err)
	}
	select {
	case w.sem <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	w.wg.Add(1)
	go func(pos int, where string, set *validatorSet, msg []byte, sig AggregateSignature) {
		defer w.wg.Done()
		defer func() { <-w.sem }()
		if ctx.Err() != nil {
			return
		}
		n, err := set.verify(msg, &sig)
		if err != nil {
			w.fail(pos, fmt.Errorf("%s: %w", where, err))
			return
		}
		w.mu.Lock()
		w.sigs++
		w.signers += n
		w.mu.Unlock()
	}(pos, where, set, w.h.domain.SigningMessage(l), li.Signatures)
	return nil
}

package restore

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/pipeline"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
	"github.com/ledgervault/ledgervault/records"
	"github.com/ledgervault/ledgervault/storage"
)

// env is what every phase shares: the storage, limits, bounds and progress.
type env struct {
	st          storage.Store
	lim         native.Limits
	concurrency int
	progress    Progress
	// everyFile is set when the phase's total is the size of every file (verify:
	// the backups' sizes from metadata): manifests and state root proofs then count
	// as progress too. A restore's phases total only their chunks and proofs.
	everyFile bool
}

func (e *env) add(n int64) {
	if e.progress != nil {
		e.progress.Add(n)
	}
}

func (e *env) phase(name string, total int64) {
	if e.progress != nil {
		e.progress.Phase(name, total)
	}
}

// ordered runs work over items 0..n-1 with e.concurrency downloads in flight, handing
// results to sink in order. Finished results wait in their worker slots, none in a
// buffer besides: the sink (the database) is the slowest stage, so results buffered
// beyond the slots would only hold memory, and peak memory stays about
// (concurrency + 1) x the chunk size.
func ordered[T any](ctx context.Context, e *env, n int, work func(ctx context.Context, i int) (T, error), sink func(ctx context.Context, r T) error) error {
	next := 0
	src := func(ctx context.Context) (int, bool, error) {
		if next >= n {
			return 0, false, nil
		}
		next++
		return next - 1, true, nil
	}
	return pipeline.Ordered(ctx, pipeline.Options{Workers: e.concurrency}, src, work, sink)
}

// readSmallFile reads a proof file, checked against its manifest description.
func (e *env) readSmallFile(ctx context.Context, f native.File, max int64) ([]byte, error) {
	b, err := native.ReadFile(ctx, e.st, f, max)
	if err != nil {
		return nil, err
	}
	e.add(int64(len(b)))
	return b, nil
}

func (e *env) readManifest(ctx context.Context, b catalog.Backup) ([]byte, error) {
	raw, err := native.ReadManifest(ctx, e.st, b.Manifest)
	if err == nil && e.everyFile {
		e.add(int64(len(raw)))
	}
	return raw, err
}

// ---- epoch history ----

// epochChunk is one verified-encoding chunk of epoch-ending ledger infos.
type epochChunk struct {
	handle storage.FileHandle
	lis    []ledger.LedgerInfoWithSignatures
	bytes  int64
}

// historyResult is the verified epoch history and the endings it accepted.
type historyResult struct {
	hist    *ledger.EpochHistory
	endings []ledger.LedgerInfoWithSignatures // verified, from the waypoint's on
	files   int
	bytes   int64
}

// historyBuilder verifies epoch-ending backups, in order, into an epoch history that
// starts at the lowest trusted waypoint: each ending signed by a quorum of the previous
// epoch's validators and matching its manifest's waypoint.
type historyBuilder struct {
	e       *env
	wps     []ledger.Waypoint // sorted; wps[0] is the root of trust
	res     historyResult
	skipped int
	// mismatch describes the first ending at the root waypoint's version whose hash
	// differs from it (named in the error if no ending matches).
	mismatch string
}

func newHistoryBuilder(e *env, wps []ledger.Waypoint) (*historyBuilder, error) {
	if len(wps) == 0 {
		return nil, fmt.Errorf("no trusted waypoint given")
	}
	wps = append([]ledger.Waypoint(nil), wps...)
	sort.Slice(wps, func(i, j int) bool { return wps[i].Version < wps[j].Version })
	return &historyBuilder{e: e, wps: wps}, nil
}

// epochJob is one chunk of an epoch-ending backup.
type epochJob struct {
	c        native.EpochEndingChunk
	m        *native.EpochEnding
	manifest storage.FileHandle
}

// manifests reads and checks the manifests of epoch-ending backups.
func (hb *historyBuilder) manifests(ctx context.Context, backups []catalog.Backup) ([]epochJob, int64, error) {
	var jobs []epochJob
	var total int64
	for _, b := range backups {
		raw, err := hb.e.readManifest(ctx, b)
		if err != nil {
			return nil, 0, err
		}
		m, err := native.DecodeEpochEnding(raw)
		if err != nil {
			return nil, 0, fmt.Errorf("manifest %s: %w", b.Manifest, err)
		}
		if m.FirstEpoch != b.First || m.LastEpoch != b.Last {
			return nil, 0, fmt.Errorf("manifest %s: covers epochs %d-%d, its metadata (%s) says %d-%d", b.Manifest, m.FirstEpoch, m.LastEpoch, b.MetadataFile, b.First, b.Last)
		}
		for _, c := range m.Chunks {
			jobs = append(jobs, epochJob{c: c, m: m, manifest: b.Manifest})
			total += c.Size
		}
	}
	return jobs, total, nil
}

// add downloads and verifies the chunks of jobs in order.
func (hb *historyBuilder) add(ctx context.Context, jobs []epochJob) error {
	e := hb.e
	work := func(ctx context.Context, i int) (epochChunk, error) {
		j := jobs[i]
		out := epochChunk{handle: j.c.Handle}
		epoch := j.c.FirstEpoch
		n, err := native.ReadChunk(ctx, e.st, j.c.File, e.lim, func(rec []byte) error {
			li, err := ledger.DecodeLedgerInfoWithSignatures(rec)
			if err != nil {
				return err
			}
			if epoch > j.c.LastEpoch {
				return fmt.Errorf("more ledger infos than epochs %d-%d", j.c.FirstEpoch, j.c.LastEpoch)
			}
			if li.LedgerInfo.Epoch != epoch {
				return fmt.Errorf("ledger info of epoch %d where epoch %d belongs", li.LedgerInfo.Epoch, epoch)
			}
			if wp := ledger.NewWaypoint(&li.LedgerInfo); wp != j.m.Waypoints[epoch-j.m.FirstEpoch] {
				return fmt.Errorf("ending of epoch %d has waypoint %s, manifest %s says %s", epoch, wp, j.manifest, j.m.Waypoints[epoch-j.m.FirstEpoch])
			}
			out.lis = append(out.lis, li)
			epoch++
			return nil
		})
		if err != nil {
			return epochChunk{}, err
		}
		if epoch != j.c.LastEpoch+1 {
			return epochChunk{}, fmt.Errorf("chunk %s: holds epochs %d-%d, manifest %s says %d-%d", j.c.Handle, j.c.FirstEpoch, epoch-1, j.manifest, j.c.FirstEpoch, j.c.LastEpoch)
		}
		out.bytes = n
		e.add(n)
		return out, nil
	}
	root := hb.wps[0]
	res := &hb.res
	sink := func(ctx context.Context, c epochChunk) error {
		res.files++
		res.bytes += c.bytes
		for i := range c.lis {
			li := &c.lis[i]
			if res.hist == nil {
				if wp := ledger.NewWaypoint(&li.LedgerInfo); wp != root {
					if wp.Version == root.Version && hb.mismatch == "" {
						hb.mismatch = fmt.Sprintf("chunk %s holds the ending of epoch %d at version %d with hash %s, not the trusted hash",
							c.handle, li.LedgerInfo.Epoch, wp.Version, wp.Hash)
					}
					hb.skipped++
					continue
				}
				h, err := ledger.NewEpochHistory(root, &li.LedgerInfo)
				if err != nil {
					return fmt.Errorf("chunk %s: %w", c.handle, err)
				}
				res.hist = h
				res.endings = append(res.endings, *li)
				continue
			}
			// Append checks an ending the history already holds against it, and verifies
			// a new one; only new ones are kept.
			_, known := res.hist.Ending(li.LedgerInfo.Epoch)
			if err := res.hist.Append(li); err != nil {
				return fmt.Errorf("chunk %s: verify ending of epoch %d: %w", c.handle, li.LedgerInfo.Epoch, err)
			}
			if !known {
				res.endings = append(res.endings, *li)
			}
		}
		return nil
	}
	return ordered(ctx, e, len(jobs), work, sink)
}

// finish checks that the history started at the root waypoint and that every further
// waypoint names a verified ending.
func (hb *historyBuilder) finish(backups []catalog.Backup) (*historyResult, error) {
	res := &hb.res
	root := hb.wps[0]
	if res.hist == nil {
		rng := "none"
		if len(backups) > 0 {
			rng = fmt.Sprintf("%d-%d", backups[0].First, backups[len(backups)-1].Last)
		}
		if hb.mismatch != "" {
			return nil, fmt.Errorf("trusted waypoint %s does not match the backed-up epoch endings: %s (a forged or foreign history)", root, hb.mismatch)
		}
		return nil, fmt.Errorf("trusted waypoint %s is not the ending of any backed-up epoch (%d endings read, epochs %s)", root, hb.skipped, rng)
	}
	for _, wp := range hb.wps[1:] {
		found := false
		for i := range res.endings {
			if ledger.NewWaypoint(&res.endings[i].LedgerInfo) == wp {
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("waypoint %s does not match any epoch ending of the history verified from %s (epochs %d-%d)",
				wp, root, res.hist.FirstEpoch(), res.hist.LatestEpoch()-1)
		}
	}
	return res, nil
}

// buildHistory downloads the epoch-ending backups in order and verifies the chain from
// the lowest trusted waypoint; further waypoints must name verified endings.
func buildHistory(ctx context.Context, e *env, backups []catalog.Backup, wps []ledger.Waypoint) (*historyResult, error) {
	hb, err := newHistoryBuilder(e, wps)
	if err != nil {
		return nil, err
	}
	if len(backups) == 0 {
		return nil, fmt.Errorf("no epoch-ending backup in storage: the epoch history cannot be verified from waypoint %s", hb.wps[0])
	}
	jobs, total, err := hb.manifests(ctx, backups)
	if err != nil {
		return nil, err
	}
	e.phase("epoch history", total)
	if err := hb.add(ctx, jobs); err != nil {
		return nil, err
	}
	return hb.finish(backups)
}

// verifyLedgerInfo checks a ledger info against the epoch history; a ledger info of an
// epoch past the history is an error wrapping ledger.ErrBeyondHistory.
func verifyLedgerInfo(h *ledger.EpochHistory, li *ledger.LedgerInfoWithSignatures, what string) error {
	if err := h.Verify(li); err != nil {
		return fmt.Errorf("%s: ledger info of epoch %d version %d: %w", what, li.LedgerInfo.Epoch, li.LedgerInfo.Version, err)
	}
	return nil
}

// ---- state snapshot ----

// snapshot is a state snapshot manifest whose root is proven against a verified ledger
// info.
type snapshot struct {
	b     catalog.Backup
	m     *native.StateSnapshot
	root  ledger.Hash
	proof proof.StateRoot
	bytes int64
}

// loadSnapshot reads a snapshot's manifest and root proof and verifies the root.
func loadSnapshot(ctx context.Context, e *env, b catalog.Backup, h *ledger.EpochHistory) (*snapshot, error) {
	raw, err := e.readManifest(ctx, b)
	if err != nil {
		return nil, err
	}
	m, err := native.DecodeStateSnapshot(raw)
	if err != nil {
		return nil, fmt.Errorf("manifest %s: %w", b.Manifest, err)
	}
	if m.Version != b.First {
		return nil, fmt.Errorf("manifest %s: state snapshot at version %d, its metadata (%s) says %d", b.Manifest, m.Version, b.MetadataFile, b.First)
	}
	// Read before the state phase starts and outside its total: not reported as
	// progress, which would count it into the phase before (the epoch history's bar
	// would end above its total).
	pb, err := native.ReadFile(ctx, e.st, m.RootProof, proof.MaxSize)
	if err != nil {
		return nil, err
	}
	if e.everyFile {
		e.add(int64(len(pb)))
	}
	rp, err := proof.DecodeStateRoot(pb)
	if err != nil {
		return nil, fmt.Errorf("state root proof %s: %w", m.RootProof.Handle, err)
	}
	if err := verifyLedgerInfo(h, &rp.LedgerInfo, "state root proof "+string(m.RootProof.Handle)); err != nil {
		return nil, err
	}
	if rp.LedgerInfo.LedgerInfo.Epoch != m.Epoch {
		return nil, fmt.Errorf("state root proof %s: ledger info of epoch %d, manifest %s says epoch %d", m.RootProof.Handle, rp.LedgerInfo.LedgerInfo.Epoch, b.Manifest, m.Epoch)
	}
	root, err := rp.Verify(m.Version, &rp.LedgerInfo.LedgerInfo)
	if err != nil {
		return nil, fmt.Errorf("state root proof %s: %w", m.RootProof.Handle, err)
	}
	if root != m.RootHash {
		return nil, fmt.Errorf("state root mismatch: root proof %s proves state root %s at version %d, manifest %s says %s",
			m.RootProof.Handle, root, m.Version, b.Manifest, m.RootHash)
	}
	return &snapshot{b: b, m: m, root: root, proof: rp, bytes: m.RootProof.Size}, nil
}

// stateChunk is one downloaded chunk of a snapshot: decoded into leaves (verify), or
// prepared for the database (restore).
type stateChunk struct {
	desc     *native.StateSnapshotChunk
	leaves   []smt.Leaf
	prepared *ledgerdb.PreparedChunk
	proof    smt.RangeProof
	bytes    int64
	// elapsed is the time spent downloading and decoding (or preparing) the chunk.
	elapsed time.Duration
}

// chunkReader is native.ReadChunk or native.StreamChunk.
type chunkReader func(ctx context.Context, st native.FileOpener, f native.File, lim native.Limits, fn func(rec []byte) error) (int64, error)

// readStateChunk reads the state chunk c with read, passing each record's key and value
// to add (valid only during the call), and checks the item count against its manifest
// entry.
func readStateChunk(ctx context.Context, e *env, c *native.StateSnapshotChunk, read chunkReader, add func(k, v []byte) error) (int64, error) {
	want := c.LastIndex - c.FirstIndex + 1
	var count uint64
	n, err := read(ctx, e.st, c.File, e.lim, func(rec []byte) error {
		if count >= want {
			return fmt.Errorf("more than the %d items of its manifest entry", want)
		}
		k, v, err := records.SplitKeyValue(rec, ledger.MaxKeySize)
		if err != nil {
			return err
		}
		if len(v) > ledger.MaxValueSize {
			return fmt.Errorf("value of %d bytes exceeds the limit of %d", len(v), ledger.MaxValueSize)
		}
		count++
		return add(k, v)
	})
	if err != nil {
		return 0, err
	}
	if count != want {
		return 0, fmt.Errorf("chunk %s: %d items, its manifest entry says %d (items %d-%d)", c.Handle, count, want, c.FirstIndex, c.LastIndex)
	}
	return n, nil
}

// checkBounds checks a chunk's first and last key hashes against its manifest entry.
func checkBounds(c *native.StateSnapshotChunk, first, last ledger.Hash) error {
	if first != c.FirstKeyHash || last != c.LastKeyHash {
		return fmt.Errorf("chunk %s: first/last key hashes %s/%s differ from its manifest entry's %s/%s", c.Handle,
			first.Short(), last.Short(), c.FirstKeyHash.Short(), c.LastKeyHash.Short())
	}
	return nil
}

// readStateProof reads and decodes a chunk's range proof.
func readStateProof(ctx context.Context, e *env, c *native.StateSnapshotChunk) (smt.RangeProof, int64, error) {
	pb, err := e.readSmallFile(ctx, c.Proof, smt.MaxRangeProofSize)
	if err != nil {
		return smt.RangeProof{}, 0, err
	}
	p, err := smt.DecodeRangeProof(pb)
	if err != nil {
		return smt.RangeProof{}, 0, fmt.Errorf("range proof %s: %w", c.Proof.Handle, err)
	}
	return p, int64(len(pb)), nil
}

// fetchStateChunk downloads a state chunk and its range proof, checks the chunk against
// its manifest entry (item count, first and last key hashes), and returns its leaves
// and decoded proof.
func fetchStateChunk(ctx context.Context, e *env, c *native.StateSnapshotChunk) (*stateChunk, error) {
	out := &stateChunk{desc: c, leaves: make([]smt.Leaf, 0, min(c.LastIndex-c.FirstIndex+1, 1<<16))}
	n, err := readStateChunk(ctx, e, c, native.ReadChunk, func(k, v []byte) error {
		out.leaves = append(out.leaves, smt.Leaf{KeyHash: smt.KeyHash(k), ValueHash: smt.ValueHash(v)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	if err := checkBounds(c, out.leaves[0].KeyHash, out.leaves[len(out.leaves)-1].KeyHash); err != nil {
		return nil, err
	}
	e.add(n)
	proof, pn, err := readStateProof(ctx, e, c)
	if err != nil {
		return nil, err
	}
	out.proof, out.bytes = proof, n+pn
	return out, nil
}

// prepareStateChunk downloads a state chunk and its range proof and prepares the chunk
// for sr (records streamed from the decoder into the chunk's tables, none kept),
// assuming it follows the record with key hash prev; it checks the chunk against its
// manifest entry (item count, first and last key hashes). AddPrepared verifies it.
func prepareStateChunk(ctx context.Context, e *env, c *native.StateSnapshotChunk, sr *ledgerdb.StateRestore, prev *ledger.Hash) (*stateChunk, error) {
	cb, err := sr.NewChunk(prev)
	if err != nil {
		return nil, err
	}
	defer cb.Abort()
	// Streamed, not held: the records go into the chunk's tables, which are only
	// ingested after the stream's hash check and the chunk's range proof (cb.Abort
	// discards them otherwise), so a worker holds a read buffer instead of the file.
	n, err := readStateChunk(ctx, e, c, native.StreamChunk, cb.Add)
	if err != nil {
		return nil, err
	}
	p, err := cb.Finish()
	if err != nil {
		return nil, fmt.Errorf("chunk %s: %w", c.Handle, err)
	}
	out := &stateChunk{desc: c, prepared: p}
	ok := false
	defer func() {
		if !ok {
			p.Discard()
		}
	}()
	if err := checkBounds(c, p.FirstKeyHash(), p.LastKeyHash()); err != nil {
		return nil, err
	}
	e.add(n)
	proof, pn, err := readStateProof(ctx, e, c)
	if err != nil {
		return nil, err
	}
	out.proof, out.bytes = proof, n+pn
	ok = true
	return out, nil
}

// ---- transactions ----

// txnChunk is one downloaded transaction chunk, verified against a ledger info that the
// epoch history verified.
type txnChunk struct {
	desc   native.TransactionChunk
	txns   []ledger.TransactionWithOutput
	hashes []ledger.Hash
	proof  proof.TransactionRange
	bytes  int64
	// elapsed is the time spent downloading, decoding and verifying the chunk.
	elapsed time.Duration
}

// fetchTxnChunk downloads a transaction chunk and its proof, decodes every transaction
// (which checks that its info commits to it, its write set and its events), verifies the
// proof's ledger info with the epoch history and the accumulator range proof of the
// chunk's info hashes against it.
func fetchTxnChunk(ctx context.Context, e *env, c native.TransactionChunk, h *ledger.EpochHistory) (*txnChunk, error) {
	want := c.LastVersion - c.FirstVersion + 1
	out := &txnChunk{desc: c, txns: make([]ledger.TransactionWithOutput, 0, min(want, 1<<16)), hashes: make([]ledger.Hash, 0, min(want, 1<<16))}
	n, err := native.ReadChunk(ctx, e.st, c.File, e.lim, func(rec []byte) error {
		if uint64(len(out.txns)) >= want {
			return fmt.Errorf("more than the %d transactions of versions %d-%d", want, c.FirstVersion, c.LastVersion)
		}
		t, err := ledger.DecodeTransactionWithOutput(rec)
		if err != nil {
			return fmt.Errorf("transaction %d: %w", c.FirstVersion+uint64(len(out.txns)), err)
		}
		out.txns = append(out.txns, t)
		out.hashes = append(out.hashes, t.Info.Hash())
		return nil
	})
	if err != nil {
		return nil, err
	}
	if uint64(len(out.txns)) != want {
		return nil, fmt.Errorf("chunk %s: %d transactions, its manifest entry says %d (versions %d-%d)", c.Handle, len(out.txns), want, c.FirstVersion, c.LastVersion)
	}
	e.add(n)
	pb, err := e.readSmallFile(ctx, c.Proof, proof.MaxSize)
	if err != nil {
		return nil, err
	}
	if out.proof, err = proof.DecodeTransactionRange(pb); err != nil {
		return nil, fmt.Errorf("range proof %s: %w", c.Proof.Handle, err)
	}
	li := &out.proof.LedgerInfo
	if err := verifyLedgerInfo(h, li, "range proof "+string(c.Proof.Handle)); err != nil {
		return nil, err
	}
	if li.LedgerInfo.Version < c.LastVersion {
		return nil, fmt.Errorf("range proof %s: ledger info at version %d does not cover version %d", c.Proof.Handle, li.LedgerInfo.Version, c.LastVersion)
	}
	if err := accumulator.VerifyRange(li.LedgerInfo.AccumulatorRoot, li.LedgerInfo.Version+1, c.FirstVersion, out.hashes, out.proof.Proof); err != nil {
		return nil, fmt.Errorf("chunk %s with range proof %s: transactions %d-%d: %w", c.Handle, c.Proof.Handle, c.FirstVersion, c.LastVersion, err)
	}
	out.bytes = n + int64(len(pb))
	return out, nil
}

// txnManifests reads the manifests of transaction backups, in order.
func txnManifests(ctx context.Context, e *env, bs []catalog.Backup) ([]*native.Transaction, error) {
	out := make([]*native.Transaction, 0, len(bs))
	for _, b := range bs {
		raw, err := e.readManifest(ctx, b)
		if err != nil {
			return nil, err
		}
		m, err := native.DecodeTransaction(raw)
		if err != nil {
			return nil, fmt.Errorf("manifest %s: %w", b.Manifest, err)
		}
		if m.FirstVersion != b.First || m.LastVersion != b.Last {
			return nil, fmt.Errorf("manifest %s: covers versions %d-%d, its metadata (%s) says %d-%d", b.Manifest, m.FirstVersion, m.LastVersion, b.MetadataFile, b.First, b.Last)
		}
		out = append(out, m)
	}
	return out, nil
}

// Package restore bootstraps a fresh ledger database from backup storage, trusting
// nothing but a waypoint: it verifies the epoch history from the waypoint, restores the
// newest state snapshot at or before the target version chunk by chunk (each chunk's
// hash against its manifest, each chunk's range proof while the tree is rebuilt, the
// root against a signed ledger info), replays the transactions from the snapshot to
// the target (accumulator range proofs against verified ledger infos, write sets
// applied with every state root checked), and at the end requires the database's state
// root and accumulator root at the target to equal the verified commitments. An
// interrupted restore resumes from its recorded progress. Verify runs the same checks
// over every backup in storage without writing a database.
package restore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledgerdb"
	"github.com/ledgervault/ledgervault/storage"
)

// DefaultConcurrency is the default number of downloads in flight.
const DefaultConcurrency = 4

// MaxConcurrency bounds the downloads in flight (memory grows with them).
const MaxConcurrency = 256

// DefaultTxnBatch is the default number of transactions saved per synced commit. The
// store writes them in smaller atomic batches (applying the next one to the state tree
// while it writes the one before) and syncs once at the end, so a larger number mostly
// saves syncs; a chunk's transactions are in memory anyway.
const DefaultTxnBatch = 8192

// Progress receives the progress of a restore or verify: the start of each phase with
// the stored bytes it will download, and increments of downloaded bytes.
type Progress interface {
	Phase(name string, totalBytes int64)
	Add(bytes int64)
}

// Options configures a restore.
type Options struct {
	// Target is the version to restore to, unless Latest is set: then the highest
	// version the backups can restore.
	Target uint64
	Latest bool
	// DBDir is the database directory: absent, empty, or holding an interrupted
	// restore of the same plan.
	DBDir string
	// Waypoints are the trusted waypoints; the lowest is the root of trust, the others
	// must match the verified history. At least one is required.
	Waypoints []ledger.Waypoint
	// MetadataCacheDir, if set, keeps a local cache of the metadata files.
	MetadataCacheDir string
	// Concurrency is the number of downloads in flight (default DefaultConcurrency).
	// State chunks are streamed into tables, not held: their memory is about
	// Concurrency x the decoder's and tables' buffers; transaction chunks are held, about
	// (Concurrency + 1) x the chunk size.
	Concurrency int
	// Limits bound chunk decoding.
	Limits native.Limits
	// TxnBatch is the number of transactions saved per synced commit (default
	// DefaultTxnBatch).
	TxnBatch int
	// Logger receives progress messages (default: discard).
	Logger *slog.Logger
	// Progress, if set, receives progress increments.
	Progress Progress
	// DB configures the database (its Logger defaults to Logger, its CacheSize to
	// DefaultBlockCacheSize).
	DB ledgerdb.Options
}

// Result describes a completed restore.
type Result struct {
	TargetVersion   uint64      `json:"target_version"`
	StateRoot       ledger.Hash `json:"state_root"`
	AccumulatorRoot ledger.Hash `json:"accumulator_root"`
	// HasSnapshot tells whether a state snapshot was used, SnapshotVersion its version.
	HasSnapshot     bool   `json:"has_snapshot"`
	SnapshotVersion uint64 `json:"snapshot_version"`
	// Epochs is the number of verified epoch endings.
	Epochs int `json:"epochs"`
	// StateItems is the number of state items restored in this run.
	StateItems uint64 `json:"state_items"`
	// Transactions is the number of transactions saved in this run.
	Transactions uint64 `json:"transactions"`
	// Files and Bytes count the files and stored bytes downloaded.
	Files int   `json:"files"`
	Bytes int64 `json:"bytes"`
	// Resumed is set when an interrupted restore was continued; AlreadyRestored when
	// the directory held a completed restore of the same plan (only re-checked).
	Resumed         bool `json:"resumed"`
	AlreadyRestored bool `json:"already_restored"`
	// Durations of the phases and in total.
	EpochDuration time.Duration `json:"epoch_ns"`
	StateDuration time.Duration `json:"state_ns"`
	TxnDuration   time.Duration `json:"txn_ns"`
	Elapsed       time.Duration `json:"elapsed_ns"`
}

// ErrTargetNotEmpty reports a database directory that is not empty and does not hold
// an interrupted restore of the same plan.
var ErrTargetNotEmpty = errors.New("target directory is not empty")

// ErrVerification marks a restore whose end check failed.
var ErrVerification = errors.New("restored database does not match the verified commitments")

// DefaultBlockCacheSize is the Pebble block cache of the database a restore writes when
// Options.DB.CacheSize is not set. A restore's reads are the transaction replay's first
// touches of the restored tree's lower levels, random and rarely repeated, while the node
// cache keeps the upper levels: with 2M accounts and 21k transactions a 32 MiB cache
// restores as fast as Pebble's default 256 MiB and the restore's peak RSS is 273-283
// instead of 461-467 MiB.
const DefaultBlockCacheSize = 32 << 20

// Run restores the database in o.DBDir from st.
func Run(ctx context.Context, st storage.Store, o Options) (*Result, error) {
	start := time.Now()
	if o.DBDir == "" {
		return nil, errors.New("restore: no database directory given")
	}
	if len(o.Waypoints) == 0 {
		return nil, errors.New("restore: no trusted waypoint given")
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Concurrency > MaxConcurrency {
		return nil, fmt.Errorf("restore: %d concurrent downloads exceeds the limit of %d", o.Concurrency, MaxConcurrency)
	}
	if o.TxnBatch <= 0 {
		o.TxnBatch = DefaultTxnBatch
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.DB.Logger == nil {
		o.DB.Logger = log
	}
	if o.DB.CacheSize <= 0 {
		o.DB.CacheSize = DefaultBlockCacheSize
	}
	e := &env{st: st, lim: o.Limits.Normalize(), concurrency: o.Concurrency, progress: o.Progress}

	inv, err := catalog.LoadCached(ctx, st, o.MetadataCacheDir)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	target := o.Target
	if o.Latest {
		// An interrupted restore to the latest version resumes to the version it chose,
		// even if backups were added since.
		if prev, err := readMarker(o.DBDir); err == nil {
			target = prev.Target
		} else {
			v, ok := inv.LatestRestorableVersion()
			if !ok {
				return nil, fmt.Errorf("restore: nothing restorable in storage (%d backups listed)", len(inv.Backups))
			}
			target = v
		}
	}
	plan, err := inv.Plan(target)
	if err != nil {
		return nil, fmt.Errorf("restore to version %d: %w", target, err)
	}
	mk := newMarker(plan, o.Waypoints)
	// Nothing is written in the database directory before the directory is accepted
	// and the trust checked: a refused directory or a wrong waypoint leaves no marker
	// and no database that would block the rerun.
	prev, err := inspectDir(o.DBDir, mk)
	if err != nil {
		return nil, err
	}
	res := &Result{TargetVersion: target, Resumed: prev != nil && !prev.Complete, AlreadyRestored: prev != nil && prev.Complete}
	log.Info("restore plan", "target_version", target, "epoch_ending_backups", len(plan.EpochEndings),
		"snapshot", snapshotName(plan), "transaction_backups", len(plan.Transactions), "resumed", res.Resumed, "already_restored", res.AlreadyRestored)

	t0 := time.Now()
	hr, err := buildHistory(ctx, e, plan.EpochEndings, o.Waypoints)
	if err != nil {
		return nil, fmt.Errorf("restore: epoch history: %w", err)
	}
	if prev == nil {
		if err := initDir(o.DBDir, mk); err != nil {
			return nil, err
		}
	}
	db, err := ledgerdb.Open(ctx, o.DBDir, o.DB)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer db.Close()
	r := &runner{e: e, db: db, inv: inv, hist: hr.hist, target: target, log: log, res: res, batch: o.TxnBatch}
	res.Epochs, res.Files, res.Bytes = len(hr.endings), hr.files, hr.bytes
	var save []ledger.LedgerInfoWithSignatures
	for _, li := range hr.endings {
		if li.LedgerInfo.Version <= target {
			save = append(save, li)
		}
	}
	if err := db.SaveLedgerInfos(ctx, save); err != nil {
		return nil, r.failed(fmt.Errorf("restore: save epoch endings: %w", err))
	}
	res.EpochDuration = time.Since(t0)
	log.Info("epoch history verified", "first_epoch", hr.hist.FirstEpoch(), "latest_epoch", hr.hist.LatestEpoch(), "endings", len(hr.endings))

	t0 = time.Now()
	if plan.Snapshot != nil {
		if err := r.restoreState(ctx, *plan.Snapshot); err != nil {
			return nil, r.failed(fmt.Errorf("restore: state snapshot at version %d: %w", plan.Snapshot.First, err))
		}
	}
	res.StateDuration = time.Since(t0)
	t0 = time.Now()
	if err := r.restoreTransactions(ctx, plan); err != nil {
		return nil, r.failed(fmt.Errorf("restore: transactions: %w", err))
	}
	res.TxnDuration = time.Since(t0)
	if err := r.endCheck(ctx); err != nil {
		return nil, r.failed(fmt.Errorf("restore: %w", err))
	}
	mk.Complete = true
	if err := writeMarker(o.DBDir, mk); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	res.Elapsed = time.Since(start)
	log.Info("restore complete", "target_version", target, "state_root", res.StateRoot, "accumulator_root", res.AccumulatorRoot,
		"state_items", res.StateItems, "transactions", res.Transactions, "bytes", res.Bytes, "elapsed", res.Elapsed)
	return res, nil
}

func snapshotName(p *catalog.Plan) string {
	if p.Snapshot == nil {
		return "none (from version 0)"
	}
	return fmt.Sprintf("version %d", p.Snapshot.First)
}

// runner carries a restore through its phases.
type runner struct {
	e      *env
	db     *ledgerdb.DB
	inv    *catalog.Inventory
	hist   *ledger.EpochHistory
	target uint64
	log    *slog.Logger
	res    *Result
	batch  int

	snap *snapshot
	// Expected values at the target, from verified data.
	wantState ledger.Hash
	wantAcc   ledger.Hash
	haveWant  bool
	// signedAcc is the accumulator root of a verified ledger info at exactly the target.
	signedAcc *ledger.Hash

	// What the database holds, for the message of an interrupted or failed run:
	// the state restore in progress (nil before and after it), whether the state
	// snapshot is complete, and the transaction phase's progress.
	stateRestore *ledgerdb.StateRestore
	stateChunks  int
	stateDone    bool
	txnPhase     bool
}

// PartialError is the error of a restore that stopped after committing part of its
// work: Error is the cause's message, Committed says what the database directory
// holds and how the rerun continues (the command line prints it after a signal,
// instead of "nothing committed").
type PartialError struct {
	// Err is the cause.
	Err error
	// Summary says what was committed and where the rerun resumes, e.g. "5 of 7
	// state snapshot chunks committed; rerun the same command to resume from chunk 5".
	Summary string
}

// Error returns the cause's message.
func (e *PartialError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *PartialError) Unwrap() error { return e.Err }

// Committed returns Summary.
func (e *PartialError) Committed() string { return e.Summary }

// failed wraps err, the end of a run after the database was opened, with what the
// database holds.
func (r *runner) failed(err error) error {
	return &PartialError{Err: err, Summary: r.committed()}
}

// committed says what the database holds and where a rerun resumes.
func (r *runner) committed() string {
	const rerun = "rerun the same command to resume"
	switch {
	case r.txnPhase:
		next := r.db.RestoreStatus().NextVersion
		if next == 0 {
			return fmt.Sprintf("the verified epoch history is saved, no transaction yet; %s from version 0", rerun)
		}
		state := ""
		if r.stateDone {
			state = "the state snapshot and "
		}
		return fmt.Sprintf("%stransactions up to version %d of %d committed; %s from version %d", state, next-1, r.target, rerun, next)
	case r.stateRestore != nil:
		n := r.stateRestore.NextChunk()
		return fmt.Sprintf("%d of %d state snapshot chunks committed; %s from chunk %d", n, r.stateChunks, rerun, n)
	case r.stateDone:
		return "the state snapshot is restored; " + rerun + " with the transactions"
	}
	return "the verified epoch history is saved, no state or transaction chunk yet; " + rerun
}

func (r *runner) noteLedgerInfo(li *ledger.LedgerInfo) {
	if li.Version == r.target {
		h := li.AccumulatorRoot
		r.signedAcc = &h
	}
}

// restoreState restores (or resumes, or skips if finished) the state snapshot.
func (r *runner) restoreState(ctx context.Context, b catalog.Backup) error {
	s, err := loadSnapshot(ctx, r.e, b, r.hist)
	if err != nil {
		return err
	}
	r.snap = s
	r.res.HasSnapshot, r.res.SnapshotVersion = true, s.m.Version
	r.res.Files++
	r.res.Bytes += s.bytes
	r.noteLedgerInfo(&s.proof.LedgerInfo.LedgerInfo)
	if s.proof.LedgerInfo.LedgerInfo.Version <= r.target {
		if err := r.db.SaveLedgerInfos(ctx, []ledger.LedgerInfoWithSignatures{s.proof.LedgerInfo}); err != nil {
			return err
		}
	}
	st := r.db.RestoreStatus()
	if st.HasStateBase {
		if st.StateBaseVersion != s.m.Version {
			return fmt.Errorf("database holds a state restored at version %d, the plan's snapshot is at %d", st.StateBaseVersion, s.m.Version)
		}
		r.log.Info("state snapshot already restored", "version", s.m.Version)
		r.stateDone = true
		return nil
	}
	if st.NextVersion != 0 {
		return fmt.Errorf("database already holds versions up to %d without a state snapshot", st.NextVersion-1)
	}
	sr, err := r.db.StartStateRestore(ctx, s.m.Version, s.root)
	if err != nil {
		return err
	}
	r.stateRestore, r.stateChunks = sr, len(s.m.Chunks)
	next := sr.NextChunk()
	if next > len(s.m.Chunks) {
		return fmt.Errorf("recorded progress says %d chunks restored, manifest %s has %d", next, b.Manifest, len(s.m.Chunks))
	}
	var total int64
	for _, c := range s.m.Chunks[next:] {
		total += c.Size + c.Proof.Size
	}
	r.e.phase("state snapshot", total)
	r.log.Info("restoring state snapshot", "version", s.m.Version, "items", s.m.ItemCount, "chunks", len(s.m.Chunks), "from_chunk", next, "root", s.root)
	chunks := s.m.Chunks[next:]
	// Workers prepare chunks (download, decode, hash, build the chunk's own subtrees and
	// write its tables) assuming that each chunk follows the last key its predecessor's
	// manifest entry names; the sink adds them in order, which checks that assumption
	// against the chunk actually added before, folds the seam and verifies the proof.
	work := func(ctx context.Context, i int) (*stateChunk, error) {
		t0 := time.Now()
		var prev *ledger.Hash
		if i+next > 0 {
			prev = &s.m.Chunks[i+next-1].LastKeyHash
		}
		c, err := prepareStateChunk(ctx, r.e, &chunks[i], sr, prev)
		if c != nil {
			c.elapsed = time.Since(t0)
		}
		return c, err
	}
	sink := func(ctx context.Context, c *stateChunk) error {
		t0 := time.Now()
		n := c.prepared.Len()
		defer func() {
			r.log.Debug("state chunk restored", "chunk", c.desc.Handle, "items", n, "add", time.Since(t0), "prepare", c.elapsed)
		}()
		if err := sr.AddPrepared(ctx, c.prepared, c.proof); err != nil {
			return fmt.Errorf("chunk %s with range proof %s (items %d-%d): %w", c.desc.Handle, c.desc.Proof.Handle, c.desc.FirstIndex, c.desc.LastIndex, err)
		}
		r.res.StateItems += n
		r.res.Files += 2
		r.res.Bytes += c.bytes
		return nil
	}
	if err := ordered(ctx, r.e, len(chunks), work, sink); err != nil {
		sr.RemoveTemp() // the tables of chunks prepared but not added
		return err
	}
	root, err := sr.Finish(ctx)
	if err != nil {
		return fmt.Errorf("manifest %s: %w", b.Manifest, err)
	}
	r.stateRestore, r.stateDone = nil, true
	if root.RootHash() != s.root {
		return fmt.Errorf("state root mismatch: restored root %s, proven root %s", root.RootHash(), s.root)
	}
	r.log.Info("state snapshot restored", "version", s.m.Version, "items", root.LeafCount)
	return nil
}

// restoreTransactions saves the transactions (snapshot version, target] (or [0,
// target]), resuming at the database's next version, and records the expected roots at
// the target.
func (r *runner) restoreTransactions(ctx context.Context, plan *catalog.Plan) error {
	r.txnPhase = true
	st := r.db.RestoreStatus()
	if r.snap != nil && r.snap.m.Version == r.target {
		return r.seedFromRootProof(ctx, st)
	}
	ms, err := txnManifests(ctx, r.e, plan.Transactions)
	if err != nil {
		return err
	}
	r.res.Files += len(ms)
	// The chunks to process: from the one holding min(next, target) to the one holding
	// target, each once (consecutive backups may overlap).
	from := min(st.NextVersion, r.target)
	var chunks []native.TransactionChunk
	cursor := from
	var total int64
	for _, m := range ms {
		for _, c := range m.Chunks {
			if c.LastVersion < cursor || c.FirstVersion > r.target {
				continue
			}
			if c.FirstVersion > cursor {
				return fmt.Errorf("no transaction chunk holds version %d (chunk %s starts at %d)", cursor, c.Handle, c.FirstVersion)
			}
			chunks = append(chunks, c)
			total += c.Size + c.Proof.Size
			cursor = c.LastVersion + 1
		}
	}
	if cursor <= r.target {
		return fmt.Errorf("transaction backups end at version %d, before the target %d", cursor-1, r.target)
	}
	r.e.phase("transactions", total)
	r.log.Info("restoring transactions", "from_version", st.NextVersion, "to_version", r.target, "chunks", len(chunks))
	next := st.NextVersion
	needSeed := !st.AccumulatorSeeded
	work := func(ctx context.Context, i int) (*txnChunk, error) {
		t0 := time.Now()
		c, err := fetchTxnChunk(ctx, r.e, chunks[i], r.hist)
		if c != nil {
			c.elapsed = time.Since(t0)
		}
		return c, err
	}
	sink := func(ctx context.Context, c *txnChunk) error {
		d := c.desc
		r.res.Files += 2
		r.res.Bytes += c.bytes
		if d.FirstVersion > next && next <= r.target {
			return fmt.Errorf("chunk %s starts at version %d, the database is at %d", d.Handle, d.FirstVersion, next)
		}
		r.noteLedgerInfo(&c.proof.LedgerInfo.LedgerInfo)
		lo := max(next, d.FirstVersion)
		hi := min(d.LastVersion, r.target)
		// Frontier at lo from the verified proof: seeds a store restored from a
		// snapshot, and must agree with the accumulator already in the store.
		if lo <= hi {
			b, err := accumulator.FrontierAfter(d.FirstVersion, c.proof.Proof.Left, c.hashes[:lo-d.FirstVersion])
			if err != nil {
				return fmt.Errorf("chunk %s: %w", d.Handle, err)
			}
			if needSeed {
				if err := r.db.SeedAccumulator(ctx, lo, b.Frontier()); err != nil {
					return fmt.Errorf("chunk %s: %w", d.Handle, err)
				}
				needSeed = false
			} else if lo > 0 {
				got, err := r.db.AccumulatorRoot(ctx, lo-1)
				if err != nil {
					return err
				}
				if got != b.Root() {
					return fmt.Errorf("chunk %s with range proof %s: accumulator root at version %d is %s in the database, %s by the proof: %w",
						d.Handle, d.Proof.Handle, lo-1, got, b.Root(), ErrVerification)
				}
			}
			t0 := time.Now()
			for s := lo; s <= hi; {
				e := min(hi, s+uint64(r.batch)-1)
				if err := r.db.SaveTransactions(ctx, s, c.txns[s-d.FirstVersion:e-d.FirstVersion+1]); err != nil {
					return fmt.Errorf("chunk %s: %w", d.Handle, err)
				}
				r.res.Transactions += e - s + 1
				s = e + 1
			}
			r.log.Debug("transactions saved", "chunk", d.Handle, "first", lo, "last", hi, "save", time.Since(t0), "fetch_and_verify", c.elapsed)
			next = hi + 1
			if li := c.proof.LedgerInfo; li.LedgerInfo.Version <= r.target {
				if err := r.db.SaveLedgerInfos(ctx, []ledger.LedgerInfoWithSignatures{li}); err != nil {
					return err
				}
			}
		}
		if d.FirstVersion <= r.target && r.target <= d.LastVersion {
			b, err := accumulator.FrontierAfter(d.FirstVersion, c.proof.Proof.Left, c.hashes[:r.target-d.FirstVersion+1])
			if err != nil {
				return fmt.Errorf("chunk %s: %w", d.Handle, err)
			}
			r.wantAcc = b.Root()
			r.wantState = c.txns[r.target-d.FirstVersion].Info.StateRootHash
			r.haveWant = true
		}
		return nil
	}
	return ordered(ctx, r.e, len(chunks), work, sink)
}

// seedFromRootProof handles a target equal to the snapshot version: no transactions,
// the accumulator frontier comes from the state root proof's inclusion proof, which
// determines it when the proof's ledger info is at that version.
func (r *runner) seedFromRootProof(ctx context.Context, st ledgerdb.RestoreStatus) error {
	s := r.snap
	li := &s.proof.LedgerInfo.LedgerInfo
	if li.Version != s.m.Version {
		return r.seedFromTxnChunk(ctx, st)
	}
	fr, err := accumulator.FrontierFromInclusion(li.AccumulatorRoot, li.Version+1, s.proof.Info.Hash(), s.proof.Proof)
	if err != nil {
		return fmt.Errorf("state root proof %s: %w", s.m.RootProof.Handle, err)
	}
	if !st.AccumulatorSeeded {
		if err := r.db.SeedAccumulator(ctx, li.Version+1, fr); err != nil {
			return err
		}
	}
	r.wantState, r.wantAcc, r.haveWant = s.root, li.AccumulatorRoot, true
	return nil
}

// seedFromTxnChunk handles a target equal to the version of a snapshot whose root proof
// is against a later ledger info: the accumulator frontier after the snapshot version
// comes from a verified transaction chunk that holds it, whose info at that version
// must be the one the root proof proves.
func (r *runner) seedFromTxnChunk(ctx context.Context, st ledgerdb.RestoreStatus) error {
	s := r.snap
	v := s.m.Version
	missing := fmt.Errorf("the state snapshot at version %d is proven against the ledger info at version %d, which does not determine the accumulator at version %d, and no transaction backup holds version %d; restore a later version",
		v, s.proof.LedgerInfo.LedgerInfo.Version, v, v)
	var b *catalog.Backup
	for _, t := range r.inv.Transactions() {
		if t.First <= v && v <= t.Last {
			b = &t
			break
		}
	}
	if b == nil {
		return missing
	}
	ms, err := txnManifests(ctx, r.e, []catalog.Backup{*b})
	if err != nil {
		return err
	}
	for _, c := range ms[0].Chunks {
		if c.FirstVersion > v || v > c.LastVersion {
			continue
		}
		tc, err := fetchTxnChunk(ctx, r.e, c, r.hist)
		if err != nil {
			return err
		}
		r.res.Files += 3
		r.res.Bytes += tc.bytes
		info := tc.txns[v-c.FirstVersion].Info
		if info.Hash() != s.proof.Info.Hash() {
			return fmt.Errorf("chunk %s: transaction info at version %d differs from the one state root proof %s proves", c.Handle, v, s.m.RootProof.Handle)
		}
		bld, err := accumulator.FrontierAfter(c.FirstVersion, tc.proof.Proof.Left, tc.hashes[:v-c.FirstVersion+1])
		if err != nil {
			return fmt.Errorf("chunk %s: %w", c.Handle, err)
		}
		if !st.AccumulatorSeeded {
			if err := r.db.SeedAccumulator(ctx, v+1, bld.Frontier()); err != nil {
				return err
			}
		}
		r.noteLedgerInfo(&tc.proof.LedgerInfo.LedgerInfo)
		r.wantState, r.wantAcc, r.haveWant = s.root, bld.Root(), true
		return nil
	}
	return missing
}

// endCheck requires the database's state and accumulator roots at the target to equal
// the verified ones.
func (r *runner) endCheck(ctx context.Context) error {
	if !r.haveWant {
		return fmt.Errorf("no verified commitment at version %d: %w", r.target, ErrVerification)
	}
	if st := r.db.RestoreStatus(); st.NextVersion != r.target+1 {
		return fmt.Errorf("database ends at version %d, target is %d: %w", int64(st.NextVersion)-1, r.target, ErrVerification)
	}
	sr, err := r.db.StateRoot(ctx, r.target)
	if err != nil {
		return err
	}
	if sr.RootHash() != r.wantState {
		return fmt.Errorf("state root mismatch at version %d: database %s, verified %s: %w", r.target, sr.RootHash(), r.wantState, ErrVerification)
	}
	acc, err := r.db.AccumulatorRoot(ctx, r.target)
	if err != nil {
		return err
	}
	if acc != r.wantAcc {
		return fmt.Errorf("accumulator root mismatch at version %d: database %s, verified %s: %w", r.target, acc, r.wantAcc, ErrVerification)
	}
	if r.signedAcc != nil && *r.signedAcc != acc {
		return fmt.Errorf("accumulator root mismatch at version %d: database %s, signed ledger info %s: %w", r.target, acc, *r.signedAcc, ErrVerification)
	}
	r.res.StateRoot, r.res.AccumulatorRoot = sr.RootHash(), acc
	return nil
}

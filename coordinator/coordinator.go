// Package coordinator keeps backup storage up to date with a node: it polls the
// node's backup service and backs up, in this order, the endings of new epochs, a
// state snapshot every N epochs and transactions in aligned batches, deriving what
// is missing from the metadata in storage on start and after every failure.
//
// One coordinator writes to a storage at a time (package backup/lease). Transient
// failures are retried with capped exponential backoff and jitter; a permanent one
// stops that kind of work until restart. Stopping is graceful: after the run
// context is cancelled no new backup starts and the one in flight may finish within
// Config.ShutdownGrace before it is aborted.
package coordinator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/coordinator/lease"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/internal/shutdown"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/storage"
)

// Defaults of Config.
const (
	DefaultPollInterval         = time.Second
	DefaultSnapshotEvery        = 1
	DefaultTransactionBatchSize = 10_000
	DefaultShutdownGrace        = 30 * time.Second
	DefaultRetryBase            = time.Second
	DefaultRetryMax             = time.Minute
	DefaultResumeMaxAge         = 30 * time.Minute
)

var (
	// ErrGraceExpired reports that the run context was cancelled and the backup in
	// flight did not finish within the shutdown grace period: it was aborted.
	ErrGraceExpired = errors.New("shutdown grace period expired, in-flight backup aborted")
	// ErrAborted reports that Config.Abort was closed: the backup in flight was
	// aborted at once.
	ErrAborted = errors.New("aborted, in-flight backup cancelled")
	// ErrConfig marks configuration errors.
	ErrConfig = errors.New("coordinator configuration")
)

// Config configures Run.
type Config struct {
	// Service is the node's backup service (its client, *backupservice.Client, in
	// production).
	Service backup.Source
	// Store is the backup storage.
	Store storage.Store
	// PollInterval is how often the node's state is read when there is nothing to do
	// (default DefaultPollInterval).
	PollInterval time.Duration
	// StateSnapshotIntervalEpochs: a state snapshot is made at the end of the newest
	// ended epoch when none exists of the last this many epochs (default 1; 0 with
	// StateSnapshotInterval set: no epoch rule, only the time rule).
	StateSnapshotIntervalEpochs uint64
	// StateSnapshotInterval, if positive, also makes a state snapshot at the end of
	// the newest ended epoch when the ledger info that ended it is at least this much
	// newer (by ledger info timestamps) than the one covering the newest snapshot in
	// storage, and that snapshot is of an earlier epoch (0: off).
	StateSnapshotInterval time.Duration
	// TransactionBatchSize is the size of the aligned transaction batches
	// [k*B, (k+1)*B-1] (default DefaultTransactionBatchSize).
	TransactionBatchSize uint64
	// ShutdownGrace is how long the backup in flight may continue after the run
	// context is cancelled (default DefaultShutdownGrace; negative: abort at once).
	ShutdownGrace time.Duration
	// Abort, when closed, aborts the backup in flight at once.
	Abort <-chan struct{}
	// Backup carries the chunk size, concurrency and compression of every backup.
	Backup backup.Options
	// Owner identifies this coordinator in the storage lease (required).
	Owner string
	// LeaseTTL is how long the lease is valid without renewal (default lease.DefaultTTL).
	LeaseTTL time.Duration
	// RetryBase and RetryMax bound the exponential backoff after transient failures
	// (defaults DefaultRetryBase, DefaultRetryMax).
	RetryBase, RetryMax time.Duration
	// ResumeMaxAge is how old an interrupted state snapshot folder may be and still be
	// resumed (default DefaultResumeMaxAge; keep it well below gc's grace period).
	ResumeMaxAge time.Duration
	// MetadataCacheDir, if set, keeps a local cache of metadata files there.
	MetadataCacheDir string
	// Metrics receives the metrics (default: fresh ones, not served).
	Metrics *Metrics
	// Logger receives the coordinator's log (default: discard).
	Logger *slog.Logger
}

func (c *Config) normalize() error {
	if c.Service == nil || c.Store == nil {
		return fmt.Errorf("%w: a backup service and a store are required", ErrConfig)
	}
	if c.Owner == "" {
		return fmt.Errorf("%w: an owner is required", ErrConfig)
	}
	if c.PollInterval == 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.StateSnapshotIntervalEpochs == 0 && c.StateSnapshotInterval <= 0 {
		c.StateSnapshotIntervalEpochs = DefaultSnapshotEvery
	}
	if c.TransactionBatchSize == 0 {
		c.TransactionBatchSize = DefaultTransactionBatchSize
	}
	if c.ShutdownGrace == 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
	if c.RetryBase == 0 {
		c.RetryBase = DefaultRetryBase
	}
	if c.RetryMax == 0 {
		c.RetryMax = DefaultRetryMax
	}
	if c.ResumeMaxAge == 0 {
		c.ResumeMaxAge = DefaultResumeMaxAge
	}
	if c.LeaseTTL == 0 {
		c.LeaseTTL = lease.DefaultTTL
	}
	if c.PollInterval < 0 || c.StateSnapshotInterval < 0 || c.RetryBase < 0 || c.RetryMax < c.RetryBase || c.ResumeMaxAge < 0 || c.LeaseTTL < lease.MinTTL {
		return fmt.Errorf("%w: negative interval, retry max below retry base, or lease ttl below %s", ErrConfig, lease.MinTTL)
	}
	if c.Metrics == nil {
		c.Metrics = NewMetrics()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Run backs up continuously until ctx is cancelled (then it lets the backup in
// flight finish within the shutdown grace), Config.Abort is closed, or the lease is
// lost. It returns nil after a graceful stop, ErrGraceExpired when the grace period
// expired with a backup in flight (aborted), ErrAborted when Abort was closed, a *lease.HeldError when another coordinator holds the lease,
// an error wrapping lease.ErrLost when the lease was lost, and an error wrapping
// ErrConfig for a bad configuration. Failures of backups are retried or stop their
// kind of work; they do not end Run.
func Run(ctx context.Context, cfg Config) error {
	if err := cfg.normalize(); err != nil {
		return err
	}
	m, log := cfg.Metrics, cfg.Logger
	l, err := lease.Acquire(ctx, cfg.Store, lease.Options{Owner: cfg.Owner, TTL: cfg.LeaseTTL, Logger: log})
	if err != nil {
		return err
	}
	m.setLease(true)
	defer m.setLease(false)

	// The first step of the shutdown (ctx done) stops new backups and starts the
	// grace period; the backup in flight runs under work, which the grace timer,
	// Abort or a lost lease ends, not ctx.
	sd := shutdown.New(ctx, max(cfg.ShutdownGrace, 0))
	defer sd.Close()
	work := sd.Aborting()
	stopLog := context.AfterFunc(ctx, func() {
		if work.Err() == nil {
			log.Info("stopping: no new backups; the one in flight may finish", "grace", cfg.ShutdownGrace)
		}
	})
	defer stopLog()
	var wg sync.WaitGroup
	keepCtx, stopKeep := context.WithCancel(work)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := l.Keep(keepCtx); err != nil {
			m.setLease(false)
			sd.Abort(err)
		}
	}()
	loopDone := make(chan struct{})
	go func() {
		defer wg.Done()
		select {
		case <-loopDone:
		case <-cfg.Abort:
			sd.Abort(ErrAborted)
		}
	}()

	c := &coord{cfg: &cfg, m: m, log: log, st: meteredStore{Store: cfg.Store, m: m}, kinds: map[string]*kindState{},
		endings: map[uint64]ending{}, snapshotTimes: map[uint64]uint64{}, resumeFailures: map[storage.BackupHandle]int{}}
	c.loop(ctx, work)
	close(loopDone)
	stopKeep()
	wg.Wait()

	cause := context.Cause(work)
	if errors.Is(cause, lease.ErrLost) {
		return cause
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := l.Release(rctx); err != nil {
		log.Warn("release lease", "err", err)
	}
	switch {
	case errors.Is(cause, ErrAborted):
		return ErrAborted
	case errors.Is(cause, shutdown.ErrGraceExpired) && c.interrupted:
		return ErrGraceExpired
	}
	log.Info("stopped")
	return nil
}

// kindState is the retry state of one kind of work.
type kindState struct {
	failures int       // consecutive transient failures
	next     time.Time // no attempt before
	stopped  error     // permanent failure
}

type coord struct {
	cfg   *Config
	m     *Metrics
	log   *slog.Logger
	st    storage.Store
	kinds map[string]*kindState
	view  *view // nil: derive from metadata
	// endings caches the versions and timestamps of epoch endings.
	endings map[uint64]ending
	// snapshotTimes caches the ledger timestamps of snapshot versions.
	snapshotTimes map[uint64]uint64
	// unavailableSnapshot marks epochs whose state the node does not hold.
	unavailableSnapshot map[uint64]bool
	// resumeFailures counts failed resumptions of a snapshot folder.
	resumeFailures map[storage.BackupHandle]int
	// interrupted is set when a backup was cut short by the work context.
	interrupted bool
	// noResume is set once the store turned out unable to list what resuming needs.
	noResume bool
	// saidNotSupported holds the optional features already reported missing.
	saidNotSupported map[string]bool
}

// maxResumeFailures is how often resuming a folder may fail before a state snapshot
// starts in a new folder instead (a chunk that fails verification would otherwise
// fail every resumption).
const maxResumeFailures = 2

func (c *coord) kind(k string) *kindState {
	s := c.kinds[k]
	if s == nil {
		s = &kindState{}
		c.kinds[k] = s
	}
	return s
}

// loop runs until ctx (no new work) or work (abort) is done.
func (c *coord) loop(ctx, work context.Context) {
	busy := false
	for ctx.Err() == nil && work.Err() == nil {
		c.m.beat()
		if c.step(ctx, work) {
			busy = true
			continue
		}
		if busy {
			// Caught up: hand the memory of the backups (chunk buffers, encoders)
			// back to the OS so that the idle coordinator stays small.
			debug.FreeOSMemory()
			busy = false
		}
		c.sleep(ctx, work, c.cfg.PollInterval)
	}
}

// sleep waits d (or until ctx or work is done), keeping the heartbeat.
func (c *coord) sleep(ctx, work context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	tick := time.NewTicker(max(time.Second, d/10))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-work.Done():
			return
		case <-t.C:
			return
		case <-tick.C:
			c.m.beat()
		}
	}
}

// step does one thing: derive the view, poll the node, run one backup. It reports
// whether it did a backup (then the next step follows at once).
func (c *coord) step(ctx, work context.Context) bool {
	if c.view == nil {
		if !c.ready(KindMetadata) {
			return false
		}
		c.attempt(KindMetadata)
		entries, err := catalog.LoadEntries(work, c.cfg.Store, c.cfg.MetadataCacheDir)
		if err != nil {
			c.failed(work, KindMetadata, fmt.Errorf("read metadata: %w", err))
			return false
		}
		c.succeeded(KindMetadata)
		c.view = newView(entries)
		c.publish(nil)
	}
	if !c.ready(KindPoll) {
		return false
	}
	c.attempt(KindPoll)
	ds, err := c.cfg.Service.DBState(work)
	if err != nil {
		c.failed(work, KindPoll, fmt.Errorf("read the node's state: %w", err))
		return false
	}
	c.succeeded(KindPoll)
	c.m.polled()
	in := planInput{firstTxnVersion: ds.FirstTxnVersion,
		skip: func(k string) bool { return !c.ready(k) }, snapshotEvery: c.cfg.StateSnapshotIntervalEpochs, batch: c.cfg.TransactionBatchSize}
	if ds.CommittedVersion != nil {
		in.committed, in.hasCommitted = *ds.CommittedVersion, true
		li, err := ds.LedgerInfo()
		if err != nil {
			c.failed(work, KindPoll, fmt.Errorf("read the node's state: %w", err))
			return false
		}
		in.ended = li.LedgerInfo.Epoch
		if li.LedgerInfo.EndsEpoch() {
			in.ended++
		}
	}
	if c.cfg.StateSnapshotInterval > 0 && in.ended >= 1 && c.ready(KindStateSnapshot) {
		due, err := c.snapshotTimeDue(work, in.ended-1, ds.FirstTxnVersion)
		if err != nil {
			c.failed(work, KindStateSnapshot, fmt.Errorf("age of the newest state snapshot: %w", err))
			return false
		}
		in.snapshotTimeDue = due
	}
	c.publish(&in)
	j, ok := c.view.nextJob(in)
	if j.kind == KindStateSnapshot && c.unavailableSnapshot[j.epoch] {
		// The node does not hold that state (restored from a later snapshot): go on
		// with transactions.
		in.skip = func(k string) bool { return k == KindStateSnapshot || !c.ready(k) }
		j, ok = c.view.nextJob(in)
	}
	if !ok || ctx.Err() != nil {
		return false
	}
	c.run(work, j, ds)
	return true
}

// attempt counts the start of an attempt of kind k: a retry when the last one
// failed.
func (c *coord) attempt(k string) {
	if c.kind(k).failures > 0 {
		c.m.retries.WithLabelValues(k).Inc()
	}
}

// ready reports whether kind k may be attempted now.
func (c *coord) ready(k string) bool {
	s := c.kind(k)
	return s.stopped == nil && !time.Now().Before(s.next)
}

// run makes one backup.
func (c *coord) run(work context.Context, j job, ds proof.DBState) {
	c.attempt(j.kind)
	o := c.cfg.Backup
	o.Logger = c.log
	o.Stats = nil
	o.Progress = beatProgress{c.m}
	start := time.Now()
	var res *backup.Result
	var reused int
	var err error
	switch j.kind {
	case KindEpochEnding:
		res, err = backup.EpochEnding(work, c.cfg.Service, c.st, j.first, j.end, o)
	case KindTransaction:
		res, err = backup.Transactions(work, c.cfg.Service, c.st, j.first, j.count, o)
	case KindStateSnapshot:
		res, reused, err = c.snapshot(work, j, ds, o)
	}
	if errors.Is(err, errSkip) {
		return
	}
	if errors.Is(err, backup.ErrAlreadyBackedUp) {
		// Someone made it visible already: no duplicate, derive again.
		c.log.Info("already backed up", "type", j.kind, "err", err)
		c.view = nil
		c.succeeded(j.kind)
		return
	}
	if err != nil {
		if work.Err() != nil {
			c.interrupted = true
			c.log.Warn("backup interrupted", "type", j.kind, "err", err, "cause", context.Cause(work))
			return
		}
		c.failed(work, j.kind, err)
		return
	}
	c.succeeded(j.kind)
	c.view.add(&res.Metadata)
	c.publish(nil)
	elapsed := time.Since(start)
	c.m.duration.WithLabelValues(j.kind).Observe(elapsed.Seconds())
	c.m.backupsCompleted.WithLabelValues(j.kind).Inc()
	md := res.Metadata
	first, last := md.FirstVersion, md.LastVersion
	if j.kind == KindEpochEnding {
		first, last = md.FirstEpoch, md.LastEpoch
	}
	if j.kind == KindStateSnapshot {
		first, last = md.Version, md.Version
	}
	c.log.Info("backup completed", "type", j.kind, "first", first, "last", last, "version", md.Version, "epoch", md.Epoch,
		"metadata", res.MetadataHandle, "folder", res.Backup, "resumed", res.Resumed, "stored_bytes", res.Stats.StoredBytes, "files", res.Stats.Files,
		"chunks_reused", reused, "elapsed", elapsed.Round(time.Millisecond))
}

// errSkip reports a job that turned out not to be possible now (not a failure).
var errSkip = errors.New("skip")

// snapshot makes (or resumes) the state snapshot of the end of epoch j.epoch.
func (c *coord) snapshot(work context.Context, j job, ds proof.DBState, o backup.Options) (*backup.Result, int, error) {
	en, err := c.ending(work, j.epoch)
	if err != nil {
		return nil, 0, fmt.Errorf("version of the ending of epoch %d: %w", j.epoch, err)
	}
	v := en.version
	if ds.StateBaseVersion != nil && v < *ds.StateBaseVersion {
		if c.unavailableSnapshot == nil {
			c.unavailableSnapshot = map[uint64]bool{}
		}
		c.unavailableSnapshot[j.epoch] = true
		c.log.Warn("no state snapshot of this epoch: the node holds state from a later version", "epoch", j.epoch, "version", v, "state_base_version", *ds.StateBaseVersion)
		return nil, 0, errSkip
	}
	var folder storage.BackupHandle
	found := false
	if !c.noResume {
		folder, found, err = backup.FindResumableStateSnapshot(work, c.st, v, c.cfg.ResumeMaxAge)
		if c.notSupported("resume interrupted state snapshots (list backup folders)", err) {
			found, err = false, nil
		}
		if err != nil {
			return nil, 0, err
		}
	}
	if found && c.resumeFailures[folder] >= maxResumeFailures {
		found = false // resuming it failed repeatedly: start afresh
	}
	if found {
		c.log.Info("resuming state snapshot", "version", v, "folder", folder)
		res, rd, err := backup.ResumeStateSnapshot(work, c.cfg.Service, c.st, folder, v, o,
			func(native.StateSnapshotChunk) { c.m.chunksReused.Inc() })
		if !c.notSupported("resume interrupted state snapshots (list a folder's files)", err) {
			if err != nil && work.Err() == nil && !errors.Is(err, backup.ErrAlreadyBackedUp) {
				c.resumeFailures[folder]++
			}
			return res, rd.Chunks, err
		}
		// Nothing was written: the interrupted folder is left for gc.
	}
	res, err := backup.StateSnapshot(work, c.cfg.Service, c.st, v, o)
	return res, 0, err
}

// notSupported reports whether err says the store cannot perform an optional
// operation (storage.ErrNotSupported). The coordinator then goes on without the
// feature: resuming is turned off for the rest of the run and this is said once,
// never counted as a failure.
func (c *coord) notSupported(feature string, err error) bool {
	if !errors.Is(err, storage.ErrNotSupported) {
		return false
	}
	c.noResume = true
	if !c.saidNotSupported[feature] {
		if c.saidNotSupported == nil {
			c.saidNotSupported = map[string]bool{}
		}
		c.saidNotSupported[feature] = true
		c.log.Warn(msgNotSupported, "feature", feature, "err", err)
	}
	return true
}

// beatProgress keeps the heartbeat alive while a backup makes progress, and marks
// the node reached (the backup's data comes from it).
type beatProgress struct{ m *Metrics }

func (p beatProgress) Add(int64, int64, int64) {
	p.m.beat()
	p.m.nodeSeen()
}

func (c *coord) succeeded(k string) {
	s := c.kind(k)
	s.failures, s.next = 0, time.Time{}
}

// failed classifies err and schedules the retry or stops the kind of work.
func (c *coord) failed(work context.Context, k string, err error) {
	if work.Err() != nil {
		return
	}
	s := c.kind(k)
	if k != KindPoll {
		c.view = nil // derive again from metadata before the next backup
	}
	if Permanent(err) && k != KindMetadata && k != KindPoll {
		s.stopped = err
		c.m.failures.WithLabelValues(k, "permanent").Inc()
		c.m.workStopped.WithLabelValues(k).Set(1)
		c.log.Error("permanent failure: this kind of backup is stopped until the coordinator is restarted", "type", k, "err", err)
		return
	}
	class := "transient"
	if Permanent(err) {
		class = "permanent" // reading metadata or the node: keep retrying at the slowest pace
		s.failures = 1 << 10
	}
	c.m.failures.WithLabelValues(k, class).Inc()
	s.failures++
	d := c.backoff(s.failures)
	s.next = time.Now().Add(d)
	c.log.Warn("backup attempt failed, will retry", "kind", k, "class", class, "attempt", s.failures, "retry_in", d.Round(time.Millisecond), "err", err)
}

// backoff returns the delay before retry n (n >= 1): base*2^(n-1) capped at max,
// with jitter taking it down by up to half.
func (c *coord) backoff(n int) time.Duration {
	d := c.cfg.RetryMax
	if n < 62 {
		if x := c.cfg.RetryBase << (n - 1); x > 0 && x < d {
			d = x
		}
	}
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

// Permanent reports whether err is a failure a retry cannot fix: a storage error
// marked permanent, or the backup service refusing us (HTTP 401 or 403).
func Permanent(err error) bool {
	if storage.IsPermanent(err) {
		return true
	}
	var he *backupservice.HTTPError
	if errors.As(err, &he) && (he.StatusCode == 401 || he.StatusCode == 403) {
		return true
	}
	return false
}

// publish updates the gauges of what is backed up (and the lag when in is known).
func (c *coord) publish(in *planInput) {
	v := c.view
	e, eok := v.epochs.reach(0)
	gaugeOf(c.m.lastEpochEnding, e, eok)
	s, sok := v.lastSnapshot()
	gaugeOf(c.m.lastSnapshot, s.version, sok)
	start := uint64(0)
	if len(v.txns) > 0 {
		start = v.txns[0].first
	}
	t, tok := v.txns.reach(start)
	gaugeOf(c.m.lastTransaction, t, tok)
	if in != nil && in.hasCommitted {
		c.m.setLag(lagOf(in.committed, t, tok))
	}
}

// msgNotSupported is said once per optional operation the store cannot perform.
const msgNotSupported = "optional storage operation not available: going on without it"

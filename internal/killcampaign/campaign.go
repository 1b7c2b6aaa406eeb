// Package killcampaign runs the kill campaign: a development node commits
// continuously while the real coordinator binary backs it up to one storage kind
// (local directory, shell commands with multi-process pipelines, or S3 on an
// in-process gofakes3), and is SIGKILLed or SIGTERMed at random moments and
// restarted, again and again. After each kill it counts surviving processes of the
// killed coordinator's tree and files visible under a final name that are not
// complete. At the end it lets the coordinator catch up with the stopped node, runs
// gc, verify and restore, and compares the restored database's roots with the node's.
package killcampaign

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// Kind is a storage kind the campaign runs against.
type Kind string

// The storage kinds.
const (
	Local Kind = "local"
	Shell Kind = "shell"
	S3    Kind = "s3"
)

// ParseKind returns the kind named s.
func ParseKind(s string) (Kind, error) {
	switch k := Kind(strings.TrimSpace(s)); k {
	case Local, Shell, S3:
		return k, nil
	default:
		return "", fmt.Errorf("storage kind %q: want local, shell or s3", s)
	}
}

// KindRun is how many kills to run against one storage kind.
type KindRun struct {
	Kind  Kind
	Kills int
}

// Config configures a campaign. Zero values take the defaults named.
type Config struct {
	// Binary is the ledgervault binary to run (required).
	Binary string
	// Runs lists the storage kinds and their kills, run in order.
	Runs []KindRun
	// Seed seeds the random waits and signals (0: from the clock; the seed used is in
	// the Table).
	Seed uint64
	// Dir is the work directory (default: a temporary one, removed at the end).
	Dir string
	// Keep keeps the work directory.
	Keep bool
	// MinWait and MaxWait bound the random time a coordinator runs before its signal
	// (0: 200ms and 3s; a negative value: no wait).
	MinWait, MaxWait time.Duration
	// SIGKILLFraction is the share of kills by SIGKILL; the rest are SIGTERM (0: the
	// default 0.6; a negative value: SIGTERM only).
	SIGKILLFraction float64
	// TPS is the node's commit rate (50), EpochLength its epoch length (600).
	TPS         float64
	EpochLength uint64
	// InitialAccounts is the number of accounts the node creates at init (5000), so
	// that state snapshots take long enough to be interrupted.
	InitialAccounts uint64
	// TransactionBatchSize (200), MaxChunkSize (8192) and ShutdownGrace (5s) are given
	// to the coordinator.
	TransactionBatchSize uint64
	MaxChunkSize         int64
	ShutdownGrace        time.Duration
	// PollInterval is the coordinator's --poll-interval (200ms).
	PollInterval time.Duration
	// OrphanWait is how long after a coordinator's exit its processes may take to
	// disappear before they count as orphans (2s).
	OrphanWait time.Duration
	// CatchUpTimeout bounds the final catch-up: it fails when the backed-up versions
	// do not advance for this long (2m).
	CatchUpTimeout time.Duration
	// Logger receives progress (default: discarded).
	Logger *slog.Logger
}

func (c *Config) defaults() error {
	if c.Binary == "" {
		return errors.New("kill campaign: no ledgervault binary given")
	}
	if len(c.Runs) == 0 {
		return errors.New("kill campaign: no storage kinds given")
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	setDur := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	for _, w := range []struct {
		d   *time.Duration
		def time.Duration
	}{{&c.MinWait, 200 * time.Millisecond}, {&c.MaxWait, 3 * time.Second}} {
		switch {
		case *w.d == 0:
			*w.d = w.def
		case *w.d < 0:
			*w.d = 0 // an explicit zero
		}
	}
	setDur(&c.ShutdownGrace, 5*time.Second)
	setDur(&c.PollInterval, 200*time.Millisecond)
	setDur(&c.OrphanWait, 2*time.Second)
	setDur(&c.CatchUpTimeout, 2*time.Minute)
	if c.MaxWait < c.MinWait {
		return fmt.Errorf("kill campaign: max wait %v below min wait %v", c.MaxWait, c.MinWait)
	}
	switch {
	case c.SIGKILLFraction == 0:
		c.SIGKILLFraction = 0.6
	case c.SIGKILLFraction < 0:
		c.SIGKILLFraction = 0 // SIGTERM only
	case c.SIGKILLFraction > 1:
		return fmt.Errorf("kill campaign: SIGKILL fraction %v above 1", c.SIGKILLFraction)
	}
	if c.TPS <= 0 {
		c.TPS = 50
	}
	if c.InitialAccounts == 0 {
		c.InitialAccounts = 5000
	}
	sharedDefaults(&c.EpochLength, &c.TransactionBatchSize, &c.MaxChunkSize, &c.Logger)
	return nil
}

// Run runs the campaign for every configured kind and returns the table. An error
// means a kind's campaign could not run to its end (a process would not start, the
// coordinator never caught up); the other kinds still run unless ctx is cancelled.
// What the campaign measured, including failures of the invariants, is in the table,
// with problems described in each Result.
func Run(ctx context.Context, cfg Config) (*Table, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	dir := cfg.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "ledgervault-killcampaign-"); err != nil {
			return nil, fmt.Errorf("kill campaign: %w", err)
		}
		if !cfg.Keep {
			defer os.RemoveAll(dir)
		}
	}
	t := &Table{Seed: cfg.Seed}
	rng := rand.New(rand.NewPCG(cfg.Seed, 0x6b696c6c))
	var errs []error
	for i, r := range cfg.Runs {
		kdir := filepath.Join(dir, fmt.Sprintf("%d-%s", i, r.Kind))
		if err := os.MkdirAll(kdir, 0o755); err != nil {
			return t, errors.Join(append(errs, fmt.Errorf("kill campaign: %w", err))...)
		}
		cfg.Logger.Info("kill campaign: starting", "kind", r.Kind, "kills", r.Kills, "seed", cfg.Seed, "dir", kdir)
		res, err := runKind(ctx, &cfg, r, kdir, rng)
		if err != nil {
			res.problem("campaign stopped: %v", err)
			errs = append(errs, fmt.Errorf("kill campaign %s: %w", r.Kind, err))
		}
		t.Results = append(t.Results, *res)
		cfg.Logger.Info("kill campaign: done", "kind", r.Kind, "result", res.Summary())
		if ctx.Err() != nil {
			break
		}
	}
	return t, errors.Join(errs...)
}

// Result is one storage kind's row of the table.
type Result struct {
	// Kind is the storage kind.
	Kind Kind
	// Kills is the number of signals sent to running coordinators, SIGKILLs and
	// SIGTERMs by kind.
	Kills, SIGKILLs, SIGTERMs int
	// Restarts is the number of coordinator starts after the first one (the kills
	// and the final catch-up run).
	Restarts int
	// BackupsCompleted is the number of metadata lines in storage at the end.
	BackupsCompleted int
	// VerifyPassed says whether "ledgervault verify" passed at the end.
	VerifyPassed bool
	// RestoredVersion is the version "restore --target-version latest" reached, and
	// RootsEqual whether the restored state and accumulator roots there equal the
	// node's (and what restore printed).
	RestoredVersion uint64
	RootsEqual      bool
	// OrphansSum and OrphansMax count processes of a coordinator's tree alive
	// Config.OrphanWait after its exit: in total and after the worst kill.
	OrphansSum, OrphansMax int
	// PartialFiles counts visible partial files found by the storage checks after
	// every kill and after gc (see StorageCheck.Bad).
	PartialFiles int
	// TempFilesSeen is the most temporary files (invisible) seen after one kill.
	TempFilesSeen int
	// LeftoversRemoved is what gc removed: unreferenced backup folders and stale
	// uploads or temporary files.
	LeftoversRemoved int
	// ChunksReused counts state snapshot chunks that resumed attempts reused, from
	// the coordinators' "backup completed" log lines.
	ChunksReused int
	// UnexpectedExits counts coordinators that exited by themselves, or with a status
	// the signal does not explain (SIGKILL: killed; SIGTERM: 0 or 75).
	UnexpectedExits int
	// ExitStatuses counts the statuses seen after the signals.
	ExitStatuses map[string]int
	// NodeFinalVersion is the node's last version (the end of a transaction batch);
	// FinalVersion the last version the final coordinator backed up.
	NodeFinalVersion, FinalVersion uint64
	// AuditUnreferenced counts the unreferenced folders and files "ledgervault audit"
	// reported before gc (any other finding is a problem).
	AuditUnreferenced int
	// UnreferencedAfter counts unreferenced folders, temporary files and open uploads
	// left after gc (0 expected).
	UnreferencedAfter int
	// UncheckedFiles is the most files of a kind the storage check does not know
	// (so could not decode) seen at once; UncheckedExamples names some.
	UncheckedFiles    int
	UncheckedExamples []string
	// Duration is the wall time of the kind's campaign.
	Duration time.Duration
	// Problems describes every failure seen (empty when all is well).
	Problems []string
}

// Summary is a one-line description of the result.
func (r *Result) Summary() string {
	return fmt.Sprintf("kills %d (%d KILL/%d TERM), backups %d, verify %v, roots equal %v, orphans %d, partial %d, gc removed %d, reused %d, problems %d",
		r.Kills, r.SIGKILLs, r.SIGTERMs, r.BackupsCompleted, r.VerifyPassed, r.RootsEqual, r.OrphansSum, r.PartialFiles,
		r.LeftoversRemoved, r.ChunksReused, len(r.Problems))
}

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// randomWait picks a wait in [min, max].
func randomWait(rng *rand.Rand, lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + time.Duration(rng.Int64N(int64(hi-lo)+1))
}

// pickSignal picks SIGKILL with probability p, else SIGTERM.
func pickSignal(rng *rand.Rand, p float64) syscall.Signal {
	if rng.Float64() < p {
		return syscall.SIGKILL
	}
	return syscall.SIGTERM
}

// sharedDefaults fills the node and coordinator settings whose defaults the kill and
// fault campaigns share: epoch length 600, transaction batches of 200, chunks of at
// most 8192 bytes, and a discarding logger.
func sharedDefaults(epochLength, batchSize *uint64, maxChunk *int64, log **slog.Logger) {
	if *epochLength == 0 {
		*epochLength = 600
	}
	if *batchSize == 0 {
		*batchSize = 200
	}
	if *maxChunk == 0 {
		*maxChunk = 8192
	}
	if *log == nil {
		*log = slog.New(slog.DiscardHandler)
	}
}

// Package lease keeps one writer per backup storage: a coordinator holds a lease
// with an expiry, renews it before it expires, and a second coordinator refuses to
// start while someone else's lease is valid.
//
// The only primitive used is the storage's create-only metadata write. A lease is a
// metadata file named lease_<seq>.lease (seq: 20 zero-padded digits) holding the
// JSON document of a Record. The file with the highest seq is the current lease.
// Acquiring or renewing creates the file seq+1; when two processes race for the
// same seq, exactly one create succeeds and the other re-reads. Older lease files
// are deleted after a renewal. Releasing writes a lease that has already expired.
package lease

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
)

const (
	// MaxRecordSize bounds a lease file; larger ones are rejected.
	MaxRecordSize = 4 << 10
	// DefaultTTL is the lease duration when Options.TTL is zero.
	DefaultTTL = 30 * time.Second
	// MinTTL is the shortest accepted lease duration.
	MinTTL = 100 * time.Millisecond
)

// ErrLost reports that another owner took the lease, or that it could not be
// renewed before it expired: the holder must stop writing.
var ErrLost = errors.New("lease lost")

// ErrExpired (which matches ErrLost too) reports that the lease expired because no
// renewal succeeded in time (storage unreachable), not because another owner took it.
var ErrExpired = fmt.Errorf("%w: expired before a renewal succeeded", ErrLost)

// HeldError reports that another owner holds a valid lease.
type HeldError struct {
	// Holder is the lease that is in force.
	Holder Record
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("another coordinator holds the storage lease: owner %q on host %q (pid %d), acquired %s, expires %s (in %s)",
		e.Holder.Owner, e.Holder.Host, e.Holder.PID, e.Holder.Acquired.UTC().Format(time.RFC3339),
		e.Holder.Expires.UTC().Format(time.RFC3339), time.Until(e.Holder.Expires).Round(time.Second))
}

// Record is the content of a lease file.
type Record struct {
	Owner    string    `json:"owner"`
	Host     string    `json:"host"`
	PID      int       `json:"pid"`
	Acquired time.Time `json:"acquired"`
	Expires  time.Time `json:"expires"`
}

// Encode returns the JSON document of r.
func (r *Record) Encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// Decode parses a lease file of at most MaxRecordSize bytes; name is used in errors.
func Decode(name string, b []byte) (Record, error) {
	var r Record
	if len(b) > MaxRecordSize {
		return r, fmt.Errorf("lease file %s: %d bytes exceeds the limit of %d", name, len(b), MaxRecordSize)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return r, fmt.Errorf("lease file %s: %w", name, err)
	}
	if dec.More() {
		return r, fmt.Errorf("lease file %s: data after the document", name)
	}
	if r.Owner == "" || len(r.Owner) > 256 || len(r.Host) > 256 {
		return r, fmt.Errorf("lease file %s: owner must be 1..256 bytes, host at most 256", name)
	}
	return r, nil
}

// DefaultOwner returns hostname-<hash of dir>: the same on a restart of the same
// installation, different for another directory or host.
func DefaultOwner(dir string) string {
	host, _ := os.Hostname()
	if host == "" {
		host = "unknown"
	}
	sum := sha256.Sum256([]byte(dir))
	return host + "-" + hex.EncodeToString(sum[:4])
}

// Options configures a lease.
type Options struct {
	// Owner identifies the holder; a holder with the same owner may take over a
	// valid lease at once (a restart of the same coordinator).
	Owner string
	// TTL is how long a lease is valid without renewal (default DefaultTTL).
	TTL time.Duration
	// Logger receives renewals and losses (default: discard).
	Logger *slog.Logger
	// Now returns the time (default time.Now); tests move it.
	Now func() time.Time
}

// Lease is a held lease. Its methods are safe for concurrent use.
type Lease struct {
	st   storage.Store
	o    Options
	host string

	mu      sync.Mutex
	seq     uint64
	rec     Record
	lost    error
	lostCh  chan struct{}
	release bool
	// cannotDelete is set once the store said it cannot delete metadata files (a
	// command config without delete_metadata or backup_metadata_file): old lease
	// files then stay, which is said once.
	cannotDelete atomic.Bool
}

func (o *Options) normalize() error {
	if o.Owner == "" {
		return errors.New("lease: empty owner")
	}
	if len(o.Owner) > 256 {
		return errors.New("lease: owner longer than 256 bytes")
	}
	if o.TTL == 0 {
		o.TTL = DefaultTTL
	}
	if o.TTL < MinTTL {
		return fmt.Errorf("lease: ttl %s below %s", o.TTL, MinTTL)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Current returns the lease in force in st (the highest sequence number), with its
// sequence number; ok is false when no lease file exists.
func Current(ctx context.Context, st storage.Store) (rec Record, seq uint64, ok bool, err error) {
	for attempt := 0; ; attempt++ {
		hs, err := st.ListMetadata(ctx)
		if err != nil {
			return rec, 0, false, fmt.Errorf("list lease files: %w", err)
		}
		var h storage.FileHandle
		ok = false
		for _, x := range hs {
			if n, isLease := native.ParseLeaseName(string(x)); isLease && (!ok || n > seq) {
				seq, h, ok = n, x, true
			}
		}
		if !ok {
			return rec, 0, false, nil
		}
		rec, err = read(ctx, st, h)
		if errors.Is(err, storage.ErrNotFound) && attempt < 10 {
			continue // the holder renewed and removed it between list and read
		}
		return rec, seq, true, err
	}
}

func read(ctx context.Context, st storage.Store, h storage.FileHandle) (Record, error) {
	if err := storage.ValidateHandle(string(h)); err != nil {
		return Record{}, fmt.Errorf("lease file %q: %w", h, err)
	}
	r, err := st.Open(ctx, h)
	if err != nil {
		return Record{}, fmt.Errorf("open lease file %s: %w", h, err)
	}
	defer r.Close()
	b, err := native.ReadLimited(r, MaxRecordSize, "lease file "+string(h))
	if err != nil {
		return Record{}, err
	}
	return Decode(string(h), b)
}

// Acquire takes the lease of st for o.Owner, or fails with *HeldError when another
// owner's lease is valid (or the same owner's, held by a live process on this host).
func Acquire(ctx context.Context, st storage.Store, o Options) (*Lease, error) {
	if err := o.normalize(); err != nil {
		return nil, err
	}
	host, _ := os.Hostname()
	l := &Lease{st: st, o: o, host: host, lostCh: make(chan struct{})}
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cur, seq, exists, err := Current(ctx, st)
		if err != nil {
			return nil, err
		}
		now := o.Now()
		if exists && now.Before(cur.Expires) && !l.mayTakeOver(cur) {
			return nil, &HeldError{Holder: cur}
		}
		next := uint64(1)
		if exists {
			next = seq + 1
		}
		rec := Record{Owner: o.Owner, Host: host, PID: os.Getpid(), Acquired: now, Expires: now.Add(o.TTL)}
		if err := l.write(ctx, next, rec); err != nil {
			got, oerr := l.outcome(ctx, next, rec, err)
			switch {
			case oerr == nil:
				rec = got // committed although the write reported a failure
			case (errors.Is(oerr, ErrLost) || errors.Is(oerr, storage.ErrAlreadyExists)) && attempt < 100:
				continue // lost a race for next: read again
			default:
				return nil, oerr
			}
		}
		l.seq, l.rec = next, rec
		o.Logger.Info("lease acquired", "owner", o.Owner, "seq", next, "expires", rec.Expires, "previous_owner", cur.Owner)
		l.deleteOlder(ctx, next)
		return l, nil
	}
}

// mayTakeOver reports whether a valid lease cur may be replaced: it is ours (same
// owner) and not held by another live process of this host.
func (l *Lease) mayTakeOver(cur Record) bool {
	if cur.Owner != l.o.Owner {
		return false
	}
	if cur.Host == l.host && cur.PID != os.Getpid() && cur.PID > 0 && processAlive(cur.PID) {
		return false
	}
	return true
}

// processAlive reports whether pid exists and is not a zombie.
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil && !errors.Is(err, syscall.EPERM) {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true // cannot tell: assume alive
	}
	// The state follows the command name in parentheses.
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) {
		return b[i+2] != 'Z' && b[i+2] != 'X'
	}
	return true
}

func (l *Lease) write(ctx context.Context, seq uint64, rec Record) error {
	b, err := rec.Encode()
	if err != nil {
		return fmt.Errorf("encode lease: %w", err)
	}
	if _, err := l.st.SaveMetadata(ctx, native.LeaseName(seq), b); err != nil {
		return fmt.Errorf("save lease file %s: %w", native.LeaseName(seq), err)
	}
	return nil
}

// deleteOlder removes lease files below seq (best effort: a failure only leaves a
// file that the next renewal removes).
func (l *Lease) deleteOlder(ctx context.Context, seq uint64) {
	hs, err := l.st.ListMetadata(ctx)
	if err != nil {
		return
	}
	for _, h := range hs {
		if n, ok := native.ParseLeaseName(string(h)); ok && n < seq {
			if l.cannotDelete.Load() {
				return
			}
			err := l.st.DeleteMetadata(ctx, h)
			switch {
			case err == nil, errors.Is(err, storage.ErrNotFound):
			case errors.Is(err, storage.ErrNotSupported), storage.IsPermanent(err):
				l.cannotDelete.Store(true)
				l.o.Logger.Warn("old lease files cannot be deleted by this store: they stay (harmless)", "file", h, "err", err)
				return
			default:
				l.o.Logger.Debug("delete old lease file", "file", h, "err", err)
			}
		}
	}
}

// Lost is closed when the lease is lost; Err then says why.
func (l *Lease) Lost() <-chan struct{} { return l.lostCh }

// Err returns nil while the lease is held, an error wrapping ErrLost afterwards.
func (l *Lease) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost
}

// Held reports whether the lease is held and unexpired.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost == nil && !l.release && l.o.Now().Before(l.rec.Expires)
}

func (l *Lease) markLost(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost == nil {
		l.lost = err
		close(l.lostCh)
		l.o.Logger.Error("lease lost: stop writing", "owner", l.o.Owner, "err", err)
	}
}

// Renew extends the lease: it checks that the lease in force is still ours and
// creates the next lease file with a new expiry. It returns an error wrapping
// ErrLost when another owner took over; other errors (storage) leave the lease
// held until it expires.
//
// A create-only write can commit and still report an error (a timeout after the
// upload, a client that retried its own committed attempt and got
// ErrAlreadyExists). So the outcome of a failed write is read back: a lease file
// of the same holder (owner, host, pid and acquired time) is ours and the renewal
// succeeded; another holder's means the lease was taken; an unreadable outcome is
// a transient error, and the next renewal adopts the file if it turns out ours.
func (l *Lease) Renew(ctx context.Context) error {
	if err := l.Err(); err != nil {
		return err
	}
	l.mu.Lock()
	seq, mine := l.seq, l.rec
	l.mu.Unlock()
	cur, curSeq, ok, err := Current(ctx, l.st)
	if err != nil {
		return err
	}
	if ok && curSeq > seq && sameHolder(cur, mine) {
		// An earlier renewal committed although it reported a failure.
		l.adopt(curSeq, cur)
		seq, mine = curSeq, cur
	}
	if !ok || curSeq != seq || !sameHolder(cur, mine) {
		err := fmt.Errorf("%w: lease file %s (owner %q, pid %d) replaced ours (seq %d)", ErrLost, native.LeaseName(curSeq), cur.Owner, cur.PID, seq)
		if !ok {
			err = fmt.Errorf("%w: our lease file %s was removed", ErrLost, native.LeaseName(seq))
		}
		l.markLost(err)
		return err
	}
	now := l.o.Now()
	rec := Record{Owner: mine.Owner, Host: mine.Host, PID: mine.PID, Acquired: mine.Acquired, Expires: now.Add(l.o.TTL)}
	if err := l.write(ctx, seq+1, rec); err != nil {
		got, oerr := l.outcome(ctx, seq+1, rec, err)
		if oerr != nil {
			if errors.Is(oerr, ErrLost) {
				l.markLost(oerr)
			}
			return oerr
		}
		rec = got
	}
	l.adopt(seq+1, rec)
	l.deleteOlder(ctx, seq+1)
	return nil
}

// sameHolder reports whether two lease records were written by the same holder: one
// process of one owner since one acquisition.
func sameHolder(a, b Record) bool {
	return a.Owner == b.Owner && a.Host == b.Host && a.PID == b.PID && a.Acquired.Equal(b.Acquired)
}

func (l *Lease) adopt(seq uint64, rec Record) {
	l.mu.Lock()
	if seq > l.seq {
		l.seq, l.rec = seq, rec
	}
	l.mu.Unlock()
}

// outcome decides what a lease write of seq that failed with werr did, by reading
// back the file: it returns the record when the file is ours, an error wrapping
// ErrLost when it is another holder's, and a transient error (werr, with what the
// read-back found) when the file is absent or cannot be read.
func (l *Lease) outcome(ctx context.Context, seq uint64, want Record, werr error) (Record, error) {
	got, found, err := l.readSeq(ctx, seq)
	switch {
	case err != nil:
		return Record{}, fmt.Errorf("%w (reading it back: %w)", werr, err)
	case !found:
		return Record{}, werr
	case sameHolder(got, want):
		l.o.Logger.Warn("lease write reported an error but committed: it is ours", "file", native.LeaseName(seq), "err", werr)
		return got, nil
	default:
		return Record{}, fmt.Errorf("%w: someone else created lease file %s (owner %q, host %q, pid %d)", ErrLost, native.LeaseName(seq), got.Owner, got.Host, got.PID)
	}
}

// readSeq reads the lease file of seq; found is false when it does not exist.
func (l *Lease) readSeq(ctx context.Context, seq uint64) (rec Record, found bool, err error) {
	hs, err := l.st.ListMetadata(ctx)
	if err != nil {
		return rec, false, fmt.Errorf("list lease files: %w", err)
	}
	for _, h := range hs {
		if n, ok := native.ParseLeaseName(string(h)); ok && n == seq {
			rec, err = read(ctx, l.st, h)
			if errors.Is(err, storage.ErrNotFound) {
				return rec, false, nil
			}
			return rec, err == nil, err
		}
	}
	return rec, false, nil
}

// Keep renews the lease every TTL/3 until ctx is done. When a renewal shows that
// the lease was taken, or no renewal succeeded before the lease expired, it marks
// the lease lost (closing Lost) and returns the error.
func (l *Lease) Keep(ctx context.Context) error {
	every := l.o.TTL / 3
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-l.lostCh:
			return l.Err()
		case <-t.C:
		}
		rctx, cancel := context.WithTimeout(ctx, every)
		err := l.Renew(rctx)
		cancel()
		if errors.Is(err, ErrLost) {
			return err
		}
		if err != nil && ctx.Err() == nil {
			l.mu.Lock()
			exp := l.rec.Expires
			l.mu.Unlock()
			if !l.o.Now().Before(exp) {
				err = fmt.Errorf("%w (at %s): %w", ErrExpired, exp.UTC().Format(time.RFC3339), err)
				l.markLost(err)
				return err
			}
			l.o.Logger.Warn("lease renewal failed, will retry", "err", err, "expires", exp)
			t.Reset(min(every, max(exp.Sub(l.o.Now())/4, 10*time.Millisecond)))
			continue
		}
		t.Reset(every)
	}
}

// Release ends the lease by writing a lease that expires now, so that another owner
// can take over at once, and removes older lease files. It does nothing when the
// lease was lost.
func (l *Lease) Release(ctx context.Context) error {
	if l.Err() != nil {
		return nil
	}
	l.mu.Lock()
	seq, mine := l.seq, l.rec
	l.release = true
	l.mu.Unlock()
	cur, curSeq, ok, err := Current(ctx, l.st)
	if err != nil {
		return err
	}
	if ok && curSeq > seq && sameHolder(cur, mine) {
		seq, mine = curSeq, cur // an earlier renewal committed although it reported a failure
	}
	if !ok || curSeq != seq || !sameHolder(cur, mine) {
		return nil // someone else's already
	}
	rec := mine
	rec.Expires = l.o.Now()
	if err := l.write(ctx, seq+1, rec); err != nil {
		if _, oerr := l.outcome(ctx, seq+1, rec, err); oerr != nil {
			if errors.Is(oerr, ErrLost) {
				return nil // another holder's lease already replaced ours
			}
			return oerr
		}
	}
	l.deleteOlder(ctx, seq+1)
	l.o.Logger.Info("lease released", "owner", mine.Owner, "seq", seq+1)
	return nil
}

package lease_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/coordinator/lease"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

// ambiguousStore makes chosen create-only metadata writes ambiguous: the write of
// a name given to failAfterCommit commits and then reports the error (a timeout
// after the upload, or ErrAlreadyExists from a client that retried its own
// committed first attempt), once.
type ambiguousStore struct {
	*storagetest.FaultStore
	mu    sync.Mutex
	fail  map[string]error
	fired []string
}

func newAmbiguousStore(t *testing.T) *ambiguousStore {
	s := &ambiguousStore{fail: map[string]error{}}
	s.FaultStore = storagetest.NewFaultStore(newStore(t), func(c storagetest.Call) storagetest.Fault {
		if c.Op != storagetest.OpSaveMetadata {
			return storagetest.Fault{}
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		ferr, ok := s.fail[c.Name]
		if !ok {
			return storagetest.Fault{}
		}
		delete(s.fail, c.Name)
		s.fired = append(s.fired, c.Name)
		return storagetest.Fault{Mode: storagetest.FailAfter, Err: ferr}
	})
	return s
}

func (s *ambiguousStore) failAfterCommit(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail[name] = err
}

// acquiredWithFault acquires the lease for owner "a" and arms the next write of
// name to commit and then fail with ferr.
func acquiredWithFault(t *testing.T, name string, ferr error) (*ambiguousStore, *lease.Lease) {
	t.Helper()
	st := newAmbiguousStore(t)
	l, err := lease.Acquire(context.Background(), st, lease.Options{Owner: "a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	st.failAfterCommit(name, ferr)
	return st, l
}

var ambiguousErrors = map[string]error{
	"commit-then-fail":       errors.New("upload timed out after the last byte"),
	"already-exists-own-try": storage.ErrAlreadyExists,
}

// TestRenewAmbiguousWriteKeepsLease: a renewal whose lease file committed but
// reported an error must not lose the lease to itself, neither in that renewal nor
// in the next ones.
func TestRenewAmbiguousWriteKeepsLease(t *testing.T) {
	for kind, ferr := range ambiguousErrors {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			st, l := acquiredWithFault(t, native.LeaseName(2), ferr)
			err := l.Renew(ctx)
			if errors.Is(err, lease.ErrLost) {
				t.Fatalf("renewal that committed declared the lease lost: %v", err)
			}
			for i := 0; i < 3; i++ {
				if err := l.Renew(ctx); err != nil {
					t.Fatalf("renewal %d after the ambiguous one: %v", i, err)
				}
			}
			if !l.Held() || l.Err() != nil {
				t.Fatalf("lease not held: %v", l.Err())
			}
			if len(st.fired) != 1 {
				t.Fatalf("fault fired %d times", len(st.fired))
			}
			// A second owner is still refused: the lease in force is ours.
			if _, err := lease.Acquire(ctx, st, lease.Options{Owner: "b", TTL: time.Minute}); err == nil {
				t.Fatal("second owner acquired a held lease")
			}
		})
	}
}

// TestRenewDetectsRealConflict: when the next lease file is someone else's, the
// renewal reports the loss naming the other owner.
func TestRenewDetectsRealConflict(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	now := &clock{now: time.Now()}
	l, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: time.Minute, Now: now.Now})
	if err != nil {
		t.Fatal(err)
	}
	// Another owner writes lease 2 after its expiry check saw ours expired.
	rec := lease.Record{Owner: "b", Host: "elsewhere", PID: 1, Acquired: now.Now(), Expires: now.Now().Add(time.Minute)}
	b, _ := rec.Encode()
	if _, err := st.SaveMetadata(ctx, native.LeaseName(2), b); err != nil {
		t.Fatal(err)
	}
	err = l.Renew(ctx)
	if !errors.Is(err, lease.ErrLost) || !strings.Contains(err.Error(), `"b"`) {
		t.Fatalf("renew over another owner's file: %v", err)
	}
}

// TestReleaseAmbiguousWrite: a release whose expired lease file committed but
// reported an error succeeds (the lease is released), and another owner can then
// acquire at once.
func TestReleaseAmbiguousWrite(t *testing.T) {
	for kind, ferr := range ambiguousErrors {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			st, l := acquiredWithFault(t, native.LeaseName(2), ferr)
			if err := l.Release(ctx); err != nil {
				t.Fatalf("release that committed: %v", err)
			}
			if _, err := lease.Acquire(ctx, st, lease.Options{Owner: "b", TTL: time.Minute}); err != nil {
				t.Fatalf("acquire after release: %v", err)
			}
			if got := leaseFiles(t, st); len(got) != 1 {
				t.Fatalf("lease files left: %v", got)
			}
		})
	}
}

// TestAcquireAmbiguousWrite: an acquisition whose lease file committed but
// reported an error holds the lease with that file, without writing another.
func TestAcquireAmbiguousWrite(t *testing.T) {
	for kind, ferr := range ambiguousErrors {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			st := newAmbiguousStore(t)
			st.failAfterCommit(native.LeaseName(1), ferr)
			l, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: time.Minute})
			if err != nil {
				t.Fatalf("acquire that committed: %v", err)
			}
			if got := leaseFiles(t, st); len(got) != 1 || !strings.HasSuffix(got[0], native.LeaseName(1)) {
				t.Fatalf("lease files: %v", got)
			}
			if err := l.Renew(ctx); err != nil {
				t.Fatalf("renew: %v", err)
			}
		})
	}
}

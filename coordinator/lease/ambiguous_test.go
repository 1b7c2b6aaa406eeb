package lease_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/coordinator/lease"
	"github.com/ledgervault/ledgervault/storage"
)

// ambiguousStore makes chosen create-only metadata writes ambiguous: the write of a
// listed name commits and then reports failure (a timeout after the upload), or
// commits and then reports ErrAlreadyExists (a client that retried its own
// committed first attempt).
type ambiguousStore struct {
	storage.Store
	mu    sync.Mutex
	fail  map[string]error // name -> error returned after committing
	fired []string
}

func (s *ambiguousStore) failAfterCommit(name string, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail == nil {
		s.fail = map[string]error{}
	}
	s.fail[name] = err
}

func (s *ambiguousStore) SaveMetadata(ctx context.Context, name string, data []byte) (storage.FileHandle, error) {
	h, err := s.Store.SaveMetadata(ctx, name, data)
	s.mu.Lock()
	defer s.mu.Unlock()
	if ferr, ok := s.fail[name]; ok && err == nil {
		delete(s.fail, name)
		s.fired = append(s.fired, name)
		return "", ferr
	}
	return h, err
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
			st := &ambiguousStore{Store: newStore(t)}
			l, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			st.failAfterCommit(lease.Name(2), ferr)
			err = l.Renew(ctx)
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
	if _, err := st.SaveMetadata(ctx, lease.Name(2), b); err != nil {
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
			st := &ambiguousStore{Store: newStore(t)}
			l, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: time.Minute})
			if err != nil {
				t.Fatal(err)
			}
			st.failAfterCommit(lease.Name(2), ferr)
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
			st := &ambiguousStore{Store: newStore(t)}
			st.failAfterCommit(lease.Name(1), ferr)
			l, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: time.Minute})
			if err != nil {
				t.Fatalf("acquire that committed: %v", err)
			}
			if got := leaseFiles(t, st); len(got) != 1 || !strings.HasSuffix(got[0], lease.Name(1)) {
				t.Fatalf("lease files: %v", got)
			}
			if err := l.Renew(ctx); err != nil {
				t.Fatalf("renew: %v", err)
			}
		})
	}
}

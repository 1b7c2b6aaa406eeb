package lease_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/coordinator/lease"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
	"github.com/ledgervault/ledgervault/storage/storagetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func newStore(t *testing.T) storage.Store {
	st, err := local.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// clock is a settable time source.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func leaseFiles(t *testing.T, st storage.Store) []string {
	t.Helper()
	hs, err := st.ListMetadata(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, h := range hs {
		if _, ok := native.ParseLeaseName(string(h)); ok {
			out = append(out, string(h))
		}
	}
	return out
}

func TestSecondOwnerRefusedUntilExpiryOrRelease(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	clk := &clock{now: time.Unix(1_800_000_000, 0)}
	a, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: 30 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if !a.Held() {
		t.Fatal("a does not hold its lease")
	}
	_, err = lease.Acquire(ctx, st, lease.Options{Owner: "b", TTL: 30 * time.Second, Now: clk.Now})
	var held *lease.HeldError
	if !errors.As(err, &held) || held.Holder.Owner != "a" {
		t.Fatalf("b acquired or wrong error: %v", err)
	}
	if msg := err.Error(); !strings.Contains(msg, `owner "a"`) || !strings.Contains(msg, "expires") {
		t.Fatalf("message does not name the holder and expiry: %s", msg)
	}
	// Renewals keep one lease file and push the expiry.
	for range 3 {
		clk.Add(10 * time.Second)
		if err := a.Renew(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if fs := leaseFiles(t, st); len(fs) != 1 {
		t.Fatalf("lease files after renewals: %v", fs)
	}
	clk.Add(25 * time.Second) // 25 s after the last renewal: still valid
	if _, err := lease.Acquire(ctx, st, lease.Options{Owner: "b", TTL: 30 * time.Second, Now: clk.Now}); !errors.As(err, &held) {
		t.Fatalf("b acquired a valid lease: %v", err)
	}
	clk.Add(6 * time.Second) // expired
	b, err := lease.Acquire(ctx, st, lease.Options{Owner: "b", TTL: 30 * time.Second, Now: clk.Now})
	if err != nil {
		t.Fatalf("b after expiry: %v", err)
	}
	// a notices on its next renewal and must stop.
	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("a renewed a lease b took: %v", err)
	}
	select {
	case <-a.Lost():
	default:
		t.Fatal("Lost not closed")
	}
	if a.Held() || a.Release(ctx) != nil {
		t.Fatal("a still holds or release failed")
	}
	// b releases: c takes over at once.
	if err := b.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := lease.Acquire(ctx, st, lease.Options{Owner: "c", TTL: 30 * time.Second, Now: clk.Now}); err != nil {
		t.Fatalf("c after release: %v", err)
	}
	if fs := leaseFiles(t, st); len(fs) != 1 {
		t.Fatalf("lease files: %v", fs)
	}
}

// TestSameOwnerTakesOver: a restarted coordinator (same owner, the earlier process
// gone) takes over a valid lease at once.
func TestSameOwnerTakesOver(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	a, err := lease.Acquire(ctx, st, lease.Options{Owner: "node-1", TTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	a2, err := lease.Acquire(ctx, st, lease.Options{Owner: "node-1", TTL: time.Hour})
	if err != nil {
		t.Fatalf("same owner refused: %v", err)
	}
	if err := a.Renew(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("the replaced holder renewed: %v", err)
	}
	if err := a2.Renew(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestRaceOneWinner: many owners acquire at once; exactly one succeeds.
func TestRaceOneWinner(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	var wins atomic.Int64
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := lease.Acquire(ctx, st, lease.Options{Owner: string(rune('a' + i)), TTL: time.Minute})
			var held *lease.HeldError
			switch {
			case err == nil:
				wins.Add(1)
			case !errors.As(err, &held):
				t.Errorf("owner %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d winners", wins.Load())
	}
}

// TestKeepRenewsAndDetectsLoss runs Keep with a short TTL: the lease stays held over
// several TTLs; when another owner takes over, Keep reports the loss.
func TestKeepRenewsAndDetectsLoss(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := newStore(t)
	l, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- l.Keep(ctx) }()
	time.Sleep(time.Second)
	if !l.Held() {
		t.Fatal("lease not held after renewals")
	}
	if _, err := lease.Acquire(ctx, st, lease.Options{Owner: "b", TTL: time.Second}); err == nil {
		t.Fatal("b acquired a kept lease")
	}
	// Force a takeover by writing a higher lease file, as a peer that saw ours expire would.
	rec := lease.Record{Owner: "b", Host: "h", PID: 1, Acquired: time.Now(), Expires: time.Now().Add(time.Minute)}
	b, _ := rec.Encode()
	_, seq, _, err := lease.Current(ctx, st)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.SaveMetadata(ctx, native.LeaseName(seq+5), b); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Keep: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("loss not detected")
	}
	if !errors.Is(l.Err(), lease.ErrLost) {
		t.Fatal("Err not set")
	}
}

func TestDefaultOwner(t *testing.T) {
	if lease.DefaultOwner("/a") == lease.DefaultOwner("/b") || lease.DefaultOwner("/a") != lease.DefaultOwner("/a") {
		t.Fatal("default owner not a function of the directory")
	}
}

func FuzzDecode(f *testing.F) {
	rec := lease.Record{Owner: "o", Host: "h", PID: 3, Acquired: time.Unix(1, 0).UTC(), Expires: time.Unix(2, 0).UTC()}
	good, _ := rec.Encode()
	f.Add(good)
	f.Add([]byte(`{"owner":""}`))
	f.Add([]byte(`{"owner":"x","extra":1}`))
	f.Add([]byte(`{"owner":"x"} {}`))
	f.Add([]byte(strings.Repeat(" ", lease.MaxRecordSize+1)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := lease.Decode("f", b)
		if err != nil {
			return
		}
		if r.Owner == "" || len(b) > lease.MaxRecordSize {
			t.Fatalf("accepted %q", b)
		}
		again, err := r.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lease.Decode("again", again); err != nil && len(again) <= lease.MaxRecordSize {
			t.Fatalf("re-encoded record rejected: %v", err)
		}
	})
}

// TestAcquireDuringRenewals: while the holder renews (creating the next file and
// deleting the older) as fast as it can, another owner always gets a clean refusal.
func TestAcquireDuringRenewals(t *testing.T) {
	ctx := context.Background()
	st := newStore(t)
	a, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			if err := a.Renew(ctx); err != nil {
				done <- err
				return
			}
		}
	}()
	for range 200 {
		_, err := lease.Acquire(ctx, st, lease.Options{Owner: "b", TTL: time.Minute})
		var held *lease.HeldError
		if !errors.As(err, &held) {
			close(stop)
			<-done
			t.Fatalf("acquire during renewals: %v", err)
		}
	}
	close(stop)
	if err := <-done; err != nil {
		t.Fatalf("renew: %v", err)
	}
}

// TestKeepExpiresWhenStorageUnreachable: when no renewal succeeds before the expiry,
// Keep reports ErrExpired (which is also ErrLost).
func TestKeepExpiresWhenStorageUnreachable(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// Listings fail once broken is set.
	var broken atomic.Bool
	st := storagetest.NewFaultStore(newStore(t), func(c storagetest.Call) storagetest.Fault {
		if c.Op == storagetest.OpListMetadata && broken.Load() {
			return storagetest.Fault{Mode: storagetest.FailBefore, Err: errors.New("storage unreachable")}
		}
		return storagetest.Fault{}
	})
	l, err := lease.Acquire(ctx, st, lease.Options{Owner: "a", TTL: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	broken.Store(true)
	done := make(chan error, 1)
	go func() { done <- l.Keep(ctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, lease.ErrExpired) || !errors.Is(err, lease.ErrLost) {
			t.Fatalf("Keep: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("expiry not detected")
	}
	if l.Held() {
		t.Fatal("held after expiry")
	}
}

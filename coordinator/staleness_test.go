package coordinator

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/ledger/proof"
)

// fakeClock is a clock that moves only when told.
type fakeClock struct{ nanos atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.nanos.Store(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time            { return time.Unix(0, c.nanos.Load()) }
func (c *fakeClock) Advance(d time.Duration)   { c.nanos.Add(int64(d)) }
func (c *fakeClock) seconds() float64          { return float64(c.nanos.Load()) / 1e9 }
func (c *fakeClock) set(m *Metrics) *fakeClock { m.now = c.Now; return c }

// downSource is a node whose DBState fails while down is set.
type downSource struct {
	backup.Source
	down atomic.Bool
}

func (s *downSource) DBState(ctx context.Context) (proof.DBState, error) {
	if s.down.Load() {
		return proof.DBState{}, errors.New("connection refused (injected)")
	}
	return s.Source.DBState(ctx)
}

// TestNodeUnreachableIsUnknown: once the node stops answering, poll retries are
// counted, the last successful poll stays where it was, and after the node max age
// lag_versions is NaN, lag_known 0 and /healthz 503, while the loop stays alive.
// Time is a fake clock moved by the test.
func TestNodeUnreachableIsUnknown(t *testing.T) {
	n := newNode(t, 300, 0)
	st, _ := localStore(t)
	src := &downSource{Source: n.svc}
	cfg := testConfig(n, st, "me")
	cfg.Service = src
	clock := newFakeClock().set(cfg.Metrics)
	cfg.Metrics.SetNodeMaxAge(time.Minute)
	r := start(cfg)
	m := cfg.Metrics
	waitFor(t, 20*time.Second, "a successful poll and a lag", func() bool { return gauge(m.lagKnown) == 1 })
	if ok, why := m.Healthy(clock.Now()); !ok {
		t.Fatalf("healthz while the node answers: %s", why)
	}
	if got := gauge(m.lastPoll); got != clock.seconds() {
		t.Fatalf("last successful poll %v, want %v", got, clock.seconds())
	}
	polledAt := clock.seconds()
	lagBefore := gauge(m.lag)

	src.down.Store(true)
	failures := gauge(m.failures.WithLabelValues(KindPoll, "transient"))
	waitFor(t, 20*time.Second, "poll retries", func() bool {
		return gauge(m.retries.WithLabelValues(KindPoll)) >= 2 && gauge(m.failures.WithLabelValues(KindPoll, "transient")) >= failures+2
	})
	// Within the max age the last lag still stands.
	clock.Advance(time.Minute)
	if ok, why := m.Healthy(clock.Now()); !ok || gauge(m.lag) != lagBefore || gauge(m.lagKnown) != 1 {
		t.Fatalf("at the max age: healthy %v (%s), lag %v (was %v), known %v", ok, why, gauge(m.lag), lagBefore, gauge(m.lagKnown))
	}
	clock.Advance(time.Second)
	ok, why := m.Healthy(clock.Now())
	if ok || !strings.Contains(why, "node last reached 1m1s ago") {
		t.Fatalf("past the max age: healthy %v (%s)", ok, why)
	}
	if alive, why := m.Alive(clock.Now()); !alive {
		t.Fatalf("not alive: %s", why)
	}
	if lag := gauge(m.lag); !math.IsNaN(lag) || gauge(m.lagKnown) != 0 {
		t.Fatalf("past the max age: lag %v, known %v", lag, gauge(m.lagKnown))
	}
	if got := gauge(m.lastPoll); got != polledAt {
		t.Fatalf("last successful poll moved to %v (was %v)", got, polledAt)
	}
	// The node answers again: known and healthy again.
	src.down.Store(false)
	waitFor(t, 20*time.Second, "a successful poll", func() bool { return gauge(m.lastPoll) > polledAt })
	if ok, why := m.Healthy(clock.Now()); !ok || gauge(m.lagKnown) != 1 || math.IsNaN(gauge(m.lag)) {
		t.Fatalf("after the node is back: healthy %v (%s), lag %v", ok, why, gauge(m.lag))
	}
	if err := r.stop(t); err != nil {
		t.Fatal(err)
	}
}

// TestNeverPolledIsUnknown: a coordinator that never reached the node reports no
// lag (NaN, lag_known 0), no successful poll (0) and /healthz 503.
func TestNeverPolledIsUnknown(t *testing.T) {
	m := NewMetrics()
	clock := newFakeClock().set(m)
	m.beat()
	m.setLease(true)
	if ok, why := m.Alive(clock.Now()); !ok {
		t.Fatalf("not alive: %s", why)
	}
	if ok, why := m.Healthy(clock.Now()); ok || why != "no successful poll of the node yet" {
		t.Fatalf("healthy %v (%s)", ok, why)
	}
	if !math.IsNaN(gauge(m.lag)) || gauge(m.lagKnown) != 0 || gauge(m.lastPoll) != 0 {
		t.Fatalf("lag %v known %v last poll %v", gauge(m.lag), gauge(m.lagKnown), gauge(m.lastPoll))
	}
	// Backup progress (data from the node) also counts as reaching it.
	m.setLag(5)
	beatProgress{m}.Add(1, 1, 1)
	if ok, why := m.Healthy(clock.Now()); !ok || gauge(m.lag) != 5 {
		t.Fatalf("after backup progress: healthy %v (%s), lag %v", ok, why, gauge(m.lag))
	}
	if gauge(m.lastPoll) != 0 {
		t.Fatal("backup progress moved the last successful poll")
	}
}

package coordinator

import (
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ledgervault/ledgervault/internal/proc"
	"github.com/ledgervault/ledgervault/internal/stdmetrics"
)

// Work kinds, the values of the kind label.
const (
	KindEpochEnding   = "epoch_ending"
	KindStateSnapshot = "state_snapshot"
	KindTransaction   = "transaction"
	// KindPoll is reading the node's state.
	KindPoll = "poll"
	// KindMetadata is reading what storage holds.
	KindMetadata = "metadata"
)

// Metrics are the coordinator's Prometheus metrics, in their own registry.
type Metrics struct {
	reg *prometheus.Registry

	heartbeat        prometheus.Gauge
	lastEpochEnding  prometheus.Gauge
	lastSnapshot     prometheus.Gauge
	lastTransaction  prometheus.Gauge
	lag              prometheus.GaugeFunc
	lagKnown         prometheus.GaugeFunc
	lastPoll         prometheus.Gauge
	bytesWritten     prometheus.Counter
	chunksWritten    prometheus.Counter
	chunksReused     prometheus.Counter
	backupsCompleted *prometheus.CounterVec
	duration         *prometheus.HistogramVec
	retries          *prometheus.CounterVec
	failures         *prometheus.CounterVec
	workStopped      *prometheus.GaugeVec
	leaseHeld        prometheus.Gauge
	inFlight         prometheus.GaugeFunc

	// heartbeatNanos mirrors the heartbeat gauge for /healthz.
	heartbeatNanos atomic.Int64
	leaseOK        atomic.Bool
	// healthMaxAge is how old the last heartbeat may be for /healthz to answer 200.
	healthMaxAge atomic.Int64
	// lagBits holds the last computed lag (math.Float64bits); lagSet says there is one.
	lagBits atomic.Uint64
	lagSet  atomic.Bool
	// nodeSeenNanos is the newest of the last successful poll and the last backup
	// progress (data from the node): the node was reachable then.
	nodeSeenNanos atomic.Int64
	// nodeMaxAge is how old nodeSeenNanos may be for the lag to be known and /healthz
	// to answer 200.
	nodeMaxAge atomic.Int64
	// now is the clock (time.Now; tests replace it).
	now func() time.Time
}

// DefaultNodeMaxAge is how long, by default, the coordinator may go without a
// successful poll of the node (or data from it in a backup) before the lag is
// unknown and /healthz answers 503; the coordinator command uses
// max(DefaultNodeMaxAge, 3 poll intervals).
const DefaultNodeMaxAge = time.Minute

// NewMetrics creates the metrics in a fresh registry.
func NewMetrics() *Metrics {
	const ns = "ledgervault_coordinator_"
	g := func(name, help string) prometheus.Gauge {
		return prometheus.NewGauge(prometheus.GaugeOpts{Name: ns + name, Help: help})
	}
	c := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Name: ns + name, Help: help})
	}
	m := &Metrics{
		reg:             prometheus.NewRegistry(),
		heartbeat:       g("heartbeat_timestamp_seconds", "Unix time of the coordinator loop's last sign of life."),
		lastEpochEnding: g("last_epoch_ending_epoch", "Last epoch whose ending is backed up, contiguously from the first (-1: none)."),
		lastSnapshot:    g("last_snapshot_version", "Version of the newest state snapshot backup (-1: none)."),
		lastTransaction: g("last_transaction_version", "Last version backed up by transaction backups, contiguously from the first (-1: none)."),
		lastPoll:        g("last_successful_poll_timestamp_seconds", "Unix time of the last successful read of the node's state (0: none yet)."),
		bytesWritten:    c("bytes_written_total", "Bytes committed to backup storage (chunks, proofs, manifests, metadata)."),
		chunksWritten:   c("chunks_written_total", "Chunk files committed to backup storage."),
		chunksReused:    c("chunks_reused_total", "State snapshot chunks of an interrupted attempt reused (after checking size and hash) instead of written again."),
		backupsCompleted: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "backups_completed_total",
			Help: "Backups made discoverable by this process, by type."}, []string{"type"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: ns + "backup_duration_seconds",
			Help: "Wall time of backup attempts that completed, by type.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 16)}, []string{"type"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "retries_total",
			Help: "Attempts retried after a transient failure, by kind of work."}, []string{"kind"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: ns + "failures_total",
			Help: "Failed attempts by kind of work and class (transient: retried; permanent: that kind of work stopped)."}, []string{"kind", "class"}),
		workStopped: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: ns + "work_stopped",
			Help: "1 when a kind of work stopped after a permanent failure (until restart)."}, []string{"kind"}),
		leaseHeld: g("lease_held", "1 while this coordinator holds the storage lease."),
	}
	m.now = time.Now
	m.lag = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ns + "lag_versions",
		Help: "Node's committed version minus the last backed-up transaction version; NaN while unknown (see lag_known)."},
		func() float64 {
			if !m.isLagKnown() {
				return math.NaN()
			}
			return math.Float64frombits(m.lagBits.Load())
		})
	m.lagKnown = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ns + "lag_known",
		Help: "1 when lag_versions is known: the node was reached within the node max age; 0 otherwise (lag_versions is NaN)."},
		func() float64 {
			if m.isLagKnown() {
				return 1
			}
			return 0
		})
	m.inFlight = prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: ns + "child_processes_in_flight",
		Help: "Child processes (shell-command storage uploads and downloads) running now; 0 when idle."},
		func() float64 { return float64(proc.InFlight()) })
	m.reg.MustRegister(stdmetrics.Collectors()...)
	m.reg.MustRegister(m.heartbeat, m.lastEpochEnding, m.lastSnapshot, m.lastTransaction, m.lag, m.lagKnown, m.lastPoll, m.bytesWritten,
		m.chunksWritten, m.chunksReused, m.backupsCompleted, m.duration, m.retries, m.failures, m.workStopped, m.leaseHeld, m.inFlight)
	for _, k := range []string{KindEpochEnding, KindStateSnapshot, KindTransaction, KindPoll, KindMetadata} {
		m.retries.WithLabelValues(k)
		m.failures.WithLabelValues(k, "transient")
		m.failures.WithLabelValues(k, "permanent")
	}
	for _, k := range []string{KindEpochEnding, KindStateSnapshot, KindTransaction} {
		m.backupsCompleted.WithLabelValues(k)
		m.workStopped.WithLabelValues(k)
	}
	m.lastEpochEnding.Set(-1)
	m.lastSnapshot.Set(-1)
	m.lastTransaction.Set(-1)
	m.healthMaxAge.Store(int64(2 * time.Minute))
	m.nodeMaxAge.Store(int64(DefaultNodeMaxAge))
	return m
}

// SetNodeMaxAge sets how long the coordinator may go without reaching the node (a
// successful poll, or data in a backup) before lag_versions is unknown (NaN,
// lag_known 0) and /healthz answers 503.
func (m *Metrics) SetNodeMaxAge(d time.Duration) { m.nodeMaxAge.Store(int64(d)) }

// nodeFresh reports whether the node was reached within the node max age at now,
// and how long ago (-1: never).
func (m *Metrics) nodeFresh(now time.Time) (bool, time.Duration) {
	seen := m.nodeSeenNanos.Load()
	if seen == 0 {
		return false, -1
	}
	age := now.Sub(time.Unix(0, seen))
	return age <= time.Duration(m.nodeMaxAge.Load()), age
}

// isLagKnown reports whether lag_versions holds a current value.
func (m *Metrics) isLagKnown() bool {
	fresh, _ := m.nodeFresh(m.now())
	return fresh && m.lagSet.Load()
}

// polled records a successful poll of the node.
func (m *Metrics) polled() {
	now := m.now()
	m.nodeSeenNanos.Store(now.UnixNano())
	m.lastPoll.Set(float64(now.UnixNano()) / 1e9)
}

// nodeSeen records data received from the node during a backup.
func (m *Metrics) nodeSeen() { m.nodeSeenNanos.Store(m.now().UnixNano()) }

// setLag records the lag computed from a successful poll.
func (m *Metrics) setLag(v float64) {
	m.lagBits.Store(math.Float64bits(v))
	m.lagSet.Store(true)
}

// Registry returns the registry holding the metrics.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SetHealthMaxAge sets how old the last heartbeat may be for /healthz to answer 200.
func (m *Metrics) SetHealthMaxAge(d time.Duration) { m.healthMaxAge.Store(int64(d)) }

// Handler serves /metrics, /healthz (200 when Healthy, 503 otherwise) and /livez
// (200 when Alive: the loop runs, whether or not the node is reachable; for a
// liveness probe, which a restart would not fix an unreachable node for).
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg}))
	mux.HandleFunc("/healthz", m.healthHandler(m.Healthy))
	mux.HandleFunc("/livez", m.healthHandler(m.Alive))
	return mux
}

func (m *Metrics) healthHandler(check func(time.Time) (bool, string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ok, why := check(m.now())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		fmt.Fprintln(w, why)
	}
}

// Healthy reports whether the coordinator is Alive and reached the node within the
// node max age (SetNodeMaxAge), and says why not.
func (m *Metrics) Healthy(now time.Time) (bool, string) {
	if ok, why := m.Alive(now); !ok {
		return false, why
	}
	switch fresh, age := m.nodeFresh(now); {
	case age < 0:
		return false, "no successful poll of the node yet"
	case !fresh:
		return false, fmt.Sprintf("node last reached %s ago (limit %s): lag unknown", age.Round(time.Millisecond), time.Duration(m.nodeMaxAge.Load()))
	}
	return true, "ok"
}

// Alive reports whether the loop's last heartbeat is recent and the lease is held,
// and says why not.
func (m *Metrics) Alive(now time.Time) (bool, string) {
	hb := m.heartbeatNanos.Load()
	if hb == 0 {
		return false, "no heartbeat yet"
	}
	age := now.Sub(time.Unix(0, hb))
	if limit := time.Duration(m.healthMaxAge.Load()); age > limit {
		return false, fmt.Sprintf("last heartbeat %s ago (limit %s)", age.Round(time.Millisecond), limit)
	}
	if !m.leaseOK.Load() {
		return false, "storage lease not held"
	}
	return true, "ok"
}

func (m *Metrics) beat() {
	now := m.now()
	m.heartbeatNanos.Store(now.UnixNano())
	m.heartbeat.Set(float64(now.UnixNano()) / 1e9)
}

func (m *Metrics) setLease(held bool) {
	m.leaseOK.Store(held)
	if held {
		m.leaseHeld.Set(1)
	} else {
		m.leaseHeld.Set(0)
	}
}

// gaugeOf sets g to v, or -1 when !ok.
func gaugeOf(g prometheus.Gauge, v uint64, ok bool) {
	if !ok {
		g.Set(-1)
		return
	}
	g.Set(float64(v))
}

// lagOf is committed - last, or committed+1 when nothing is backed up.
func lagOf(committed, last uint64, ok bool) float64 {
	if !ok {
		return float64(committed) + 1
	}
	if last >= committed {
		return 0
	}
	return float64(committed - last)
}

package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/backupservice/server"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/internal/stdmetrics"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// RunOptions configures Run.
type RunOptions struct {
	// BackupServiceAddress is where the backup service listens (default
	// backupservice.DefaultAddress, 127.0.0.1:6186).
	BackupServiceAddress string
	// MetricsAddress is where Prometheus metrics are served at /metrics ("": none).
	MetricsAddress string
	// TPS limits the commit rate in transactions per second (0: as fast as possible).
	TPS float64
	// UntilVersion stops committing once this version is committed (0: never).
	UntilVersion uint64
	// ExitWhenDone makes Run return once UntilVersion is committed; otherwise the node
	// keeps serving until its context is cancelled.
	ExitWhenDone bool
	// ShutdownGrace bounds the wait for in-flight requests on shutdown (default 10s);
	// streams still running after it are cut (their clients see an error).
	ShutdownGrace time.Duration
	// WriteTimeout bounds each write of a backup service response (default 30s).
	WriteTimeout time.Duration
	// CacheSize is the store's block cache size in bytes (0: the ledgerdb default); with
	// the node cache it bounds the memory a full state stream can use.
	CacheSize int64
	// Logger receives the node's log (default: discard).
	Logger *slog.Logger
	// OnListening, if set, is called with the bound addresses once the servers listen
	// (metrics is "" when disabled).
	OnListening func(backupService, metrics string)
}

// metrics are the node's own Prometheus metrics.
type metrics struct {
	version, epoch prometheus.Gauge
	blocks, txns   prometheus.Counter
	commitSeconds  prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		version: prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledgervault_node_committed_version", Help: "Latest committed version."}),
		epoch:   prometheus.NewGauge(prometheus.GaugeOpts{Name: "ledgervault_node_epoch", Help: "Epoch of the next block."}),
		blocks:  prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgervault_node_blocks_committed_total", Help: "Blocks committed by this process."}),
		txns:    prometheus.NewCounter(prometheus.CounterOpts{Name: "ledgervault_node_transactions_committed_total", Help: "Transactions committed by this process."}),
		commitSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ledgervault_node_block_commit_seconds",
			Help:    "Time to build, sign and commit a block.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}),
	}
	for _, c := range append([]prometheus.Collector{m.version, m.epoch, m.blocks, m.txns, m.commitSeconds},
		stdmetrics.Collectors()...) {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register node metrics: %w", err)
		}
	}
	return m, nil
}

// httpServer is one of the node's HTTP servers.
type httpServer struct {
	name   string
	srv    *http.Server
	cancel context.CancelFunc // cancels its requests' contexts
	done   chan struct{}
	err    error
}

func startHTTP(name, addr string, h http.Handler, log *slog.Logger, failed func(error)) (*httpServer, string, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, "", fmt.Errorf("%s: listen on %s: %w", name, addr, err)
	}
	base, cancel := context.WithCancel(context.Background())
	s := &httpServer{
		name: name,
		srv: &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 10 * time.Second,
			IdleTimeout:       2 * time.Minute,
			BaseContext:       func(net.Listener) context.Context { return base },
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		},
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() {
		defer close(s.done)
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.err = fmt.Errorf("%s: serve: %w", name, err)
			failed(s.err)
		}
	}()
	return s, ln.Addr().String(), nil
}

// stop shuts the server down gracefully within grace, then cuts what is left.
func (s *httpServer) stop(grace time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := s.srv.Shutdown(ctx); err != nil {
		log.Warn("in-flight requests cut at shutdown", "server", s.name, "grace", grace, "err", err)
		s.cancel()
		_ = s.srv.Close()
	}
	s.cancel()
	<-s.done
}

// Run opens the node in dir (written by Init) and commits its synthetic workload
// block by block, serving the backup service and metrics, until ctx is cancelled (or
// UntilVersion is reached with ExitWhenDone). A block is committed atomically, and a
// cancellation lets the block being committed finish: a restart continues from the
// last committed block, whatever stopped the previous run.
func Run(ctx context.Context, dir string, o RunOptions) (err error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if o.BackupServiceAddress == "" {
		o.BackupServiceAddress = backupservice.DefaultAddress
	}
	if o.ShutdownGrace <= 0 {
		o.ShutdownGrace = 10 * time.Second
	}
	if o.TPS < 0 {
		return fmt.Errorf("node run: negative --tps %v", o.TPS)
	}
	cfg, err := loadConfig(dir)
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	secret, err := loadSecret(dir)
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	db, err := ledgerdb.Open(ctx, filepath.Join(dir, DBDir), ledgerdb.Options{Logger: log, CacheSize: o.CacheSize})
	if err != nil {
		return fmt.Errorf("node run: open store: %w", err)
	}
	defer func() {
		if cerr := db.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("node run: %w", cerr)
		}
	}()
	chain, err := devnet.Open(ctx, db, cfg.devnet(secret))
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}

	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg)
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	svc, err := server.New(db, server.Options{Logger: log, WriteTimeout: o.WriteTimeout, Registerer: reg})
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}

	// A server failure stops the node.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	var failMu sync.Mutex
	var serveErr error
	failed := func(err error) {
		failMu.Lock()
		serveErr = errors.Join(serveErr, err)
		failMu.Unlock()
		stopRun()
	}
	serverFailure := func() error {
		failMu.Lock()
		defer failMu.Unlock()
		return serveErr
	}

	var servers []*httpServer
	defer func() {
		for _, s := range servers {
			s.stop(o.ShutdownGrace, log)
		}
		svc.Wait() // no handler may touch the store after it is closed
	}()
	bs, bsAddr, err := startHTTP("backup service", o.BackupServiceAddress, svc, log, failed)
	if err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	servers = append(servers, bs)
	var metricsAddr string
	if o.MetricsAddress != "" {
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg}))
		ms, addr, err := startHTTP("metrics", o.MetricsAddress, mux, log, failed)
		if err != nil {
			return fmt.Errorf("node run: %w", err)
		}
		servers = append(servers, ms)
		metricsAddr = addr
	}
	log.Info("node running", "dir", dir, "next_version", chain.NextVersion(), "epoch", chain.Epoch(),
		"backup_service", bsAddr, "metrics", metricsAddr, "tps", o.TPS, "until_version", o.UntilVersion)
	if o.OnListening != nil {
		o.OnListening(bsAddr, metricsAddr)
	}

	if err := commitLoop(runCtx, chain, cfg, o, m, log); err != nil && runCtx.Err() == nil {
		return fmt.Errorf("node run: %w", err)
	}
	if o.UntilVersion > 0 && chain.NextVersion() > o.UntilVersion && !o.ExitWhenDone && runCtx.Err() == nil {
		log.Info("reached --until-version; serving until stopped", "version", chain.NextVersion()-1)
		<-runCtx.Done()
	}
	if err := serverFailure(); err != nil {
		return fmt.Errorf("node run: %w", err)
	}
	log.Info("node stopping", "next_version", chain.NextVersion())
	return nil
}

// commitLoop commits blocks until ctx is cancelled or UntilVersion is committed.
func commitLoop(ctx context.Context, chain *devnet.Chain, cfg Config, o RunOptions, m *metrics, log *slog.Logger) error {
	m.version.Set(float64(chain.NextVersion()) - 1)
	m.epoch.Set(float64(chain.Epoch()))
	start := time.Now()
	var committed uint64
	lastLog := start
	for ctx.Err() == nil {
		next := chain.NextVersion()
		if o.UntilVersion > 0 && next > o.UntilVersion {
			return nil
		}
		last := min(next+uint64(cfg.BlockSize)-1, chain.Epoch()*cfg.EpochLength)
		if o.UntilVersion > 0 {
			last = min(last, o.UntilVersion)
		}
		t0 := time.Now()
		// The block being committed is finished even if ctx is cancelled meanwhile:
		// the store writes it in one batch, so it is all there or not at all.
		if err := chain.CommitUntil(context.WithoutCancel(ctx), last); err != nil {
			return fmt.Errorf("commit block [%d, %d]: %w", next, last, err)
		}
		n := last - next + 1
		committed += n
		m.commitSeconds.Observe(time.Since(t0).Seconds())
		m.blocks.Inc()
		m.txns.Add(float64(n))
		m.version.Set(float64(last))
		m.epoch.Set(float64(chain.Epoch()))
		if now := time.Now(); now.Sub(lastLog) >= 10*time.Second {
			log.Info("committing", "version", last, "epoch", chain.Epoch(),
				"tps", float64(committed)/now.Sub(start).Seconds())
			lastLog = now
		}
		if o.TPS > 0 {
			due := start.Add(time.Duration(float64(committed) / o.TPS * float64(time.Second)))
			if wait := time.Until(due); wait > 0 {
				t := time.NewTimer(wait)
				select {
				case <-ctx.Done():
					t.Stop()
					return ctx.Err()
				case <-t.C:
				}
			}
		}
	}
	return ctx.Err()
}

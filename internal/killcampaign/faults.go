package killcampaign

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/internal/faultinject"
	"github.com/ledgervault/ledgervault/storage/shell"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// FaultConfig configures a fault campaign (RunFaults). Zero values take the
// defaults named.
type FaultConfig struct {
	// Binary is the ledgervault binary to run (required).
	Binary string
	// Backend is the storage the faults are injected into: Shell (the kill
	// campaign's command config, every command wrapped by faultinject.Shell) or S3
	// (the in-process emulator behind faultinject.S3Proxy).
	Backend Kind
	// Seed seeds the faults (0: from the clock; the seed used is in the result).
	Seed uint64
	// Rate is the share of storage calls that fail while faults are on (0.05).
	Rate float64
	// LeaseRate, when above 0, is the share of the lease file writes (and of every
	// other call on a lease file) that commit and then report failure while faults
	// are on, in place of Rate: the ambiguous write a short campaign must meet.
	LeaseRate float64
	// FaultDuration is how long faults are on (15s).
	FaultDuration time.Duration
	// NodeTail is about how long the node keeps committing after the faults (15s):
	// it is started with --until-version at the end of the transaction batch
	// holding TPS × (FaultDuration + NodeTail + 5s), so that the coordinator can
	// back up its last version exactly.
	NodeTail time.Duration
	// Dir is the work directory (default: a temporary one, removed at the end).
	Dir string
	// Keep keeps the work directory.
	Keep bool
	// TPS is the node's commit rate (100), EpochLength its epoch length (600) and
	// InitialAccounts the accounts it creates at init (1000).
	TPS             float64
	EpochLength     uint64
	InitialAccounts uint64
	// TransactionBatchSize (200), MaxChunkSize (8192), ShutdownGrace (5s),
	// PollInterval (200ms) and LeaseTTL (6s, so that the lease is renewed during the
	// faults) are given to the coordinator.
	TransactionBatchSize uint64
	MaxChunkSize         int64
	ShutdownGrace        time.Duration
	PollInterval         time.Duration
	LeaseTTL             time.Duration
	// NoMetadataCache runs the coordinator without --metadata-cache-dir. With the
	// cache (as deploy/ runs it), a metadata file read once is not read again; without
	// it, every re-derivation of the coordinator's view after a failed backup reads
	// every metadata file, and one failed read discards the others.
	NoMetadataCache bool
	// OrphanWait is how long after the coordinator's exit its processes may take to
	// disappear before they count as orphans (2s).
	OrphanWait time.Duration
	// CatchUpTimeout bounds the catch-up after the faults: it fails when the
	// backed-up versions do not advance for this long (2m).
	CatchUpTimeout time.Duration
	// Logger receives progress (default: discarded).
	Logger *slog.Logger
}

func (c *FaultConfig) defaults() error {
	if c.Binary == "" {
		return errors.New("fault campaign: no ledgervault binary given")
	}
	if c.Backend != Shell && c.Backend != S3 {
		return fmt.Errorf("fault campaign: backend %q: want shell or s3", c.Backend)
	}
	if c.Seed == 0 {
		c.Seed = uint64(time.Now().UnixNano())
	}
	if c.Rate == 0 {
		c.Rate = 0.05
	}
	if c.Rate < 0 || c.Rate > 1 || c.LeaseRate < 0 || c.LeaseRate > 1 {
		return fmt.Errorf("fault campaign: rates %v, %v: want fractions from 0 to 1", c.Rate, c.LeaseRate)
	}
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{{&c.FaultDuration, 15 * time.Second}, {&c.NodeTail, 15 * time.Second}, {&c.ShutdownGrace, 5 * time.Second}, {&c.PollInterval, 200 * time.Millisecond},
		{&c.LeaseTTL, 6 * time.Second}, {&c.OrphanWait, 2 * time.Second}, {&c.CatchUpTimeout, 2 * time.Minute}} {
		if *d.p <= 0 {
			*d.p = d.def
		}
	}
	if c.TPS <= 0 {
		c.TPS = 100
	}
	if c.InitialAccounts == 0 {
		c.InitialAccounts = 1000
	}
	sharedDefaults(&c.EpochLength, &c.TransactionBatchSize, &c.MaxChunkSize, &c.Logger)
	return nil
}

// killConfig returns the kill campaign's configuration of the same node and
// coordinator, for the helpers the two campaigns share.
func (c *FaultConfig) killConfig() *Config {
	return &Config{
		Binary: c.Binary, TPS: c.TPS, EpochLength: c.EpochLength, InitialAccounts: c.InitialAccounts,
		TransactionBatchSize: c.TransactionBatchSize, MaxChunkSize: c.MaxChunkSize, ShutdownGrace: c.ShutdownGrace,
		PollInterval: c.PollInterval, OrphanWait: c.OrphanWait, CatchUpTimeout: c.CatchUpTimeout, Logger: c.Logger,
	}
}

// FaultResult is what a fault campaign measured.
type FaultResult struct {
	// Backend, Seed, Rate, LeaseRate and FaultDuration repeat the configuration.
	Backend         Kind
	Seed            uint64
	Rate, LeaseRate float64
	FaultDuration   time.Duration
	// Counts are the storage operations (calls by command or S3 operation, with
	// faults on or off) and the faults injected, by kind.
	Counts faultinject.Counts
	// Retries is the coordinator's retries_total by kind of work, and Transient its
	// failures_total{class="transient"}, both read from its /metrics after the
	// catch-up.
	Retries, Transient map[string]float64
	// FaultsOffVersion is the node's version when the faults stopped; CatchUp is how
	// long after that the transaction backups covered it.
	FaultsOffVersion uint64
	CatchUp          time.Duration
	// CoordinatorExit is how the coordinator ended ("exit 0" expected, after the
	// SIGTERM that follows the catch-up); ExitedEarly says it ended by itself first.
	CoordinatorExit string
	ExitedEarly     bool
	// TempFilesBeforeGC counts temporary files (left by cut uploads) and open uploads
	// before gc.
	TempFilesBeforeGC int
	// PanicLines counts log lines of any process of the campaign that report a panic.
	PanicLines int
	// Checks is the kill campaign's result of the same end checks (orphans, partial
	// files, gc, audit, verify, restore roots) and every problem found.
	Checks Result
	// Duration is the campaign's wall time.
	Duration time.Duration
}

// Failed reports whether the campaign found a problem.
func (r *FaultResult) Failed() bool { return len(r.Checks.Problems) > 0 }

// injector is the fault injector of the campaign's backend.
type injector interface {
	SetRate(rate float64) error
	SetFocus(pattern string, rate float64, kinds ...faultinject.Kind) error
	Counts() (faultinject.Counts, error)
}

// leasePattern is in the name of every lease file (format/native.LeaseName).
const leasePattern = "lease_"

// setFaults turns the faults on (the rates of cfg) or off.
func setFaults(inj injector, cfg *FaultConfig, on bool) error {
	rate, lease := 0.0, 0.0
	if on {
		rate, lease = cfg.Rate, cfg.LeaseRate
	}
	if err := inj.SetRate(rate); err != nil {
		return err
	}
	if lease > 0 {
		return inj.SetFocus(leasePattern, lease, faultinject.CommitThenFail)
	}
	return inj.SetFocus("", 0)
}

// proxyInjector adapts faultinject.S3Proxy, whose counts cannot fail.
type proxyInjector struct{ *faultinject.S3Proxy }

func (p proxyInjector) Counts() (faultinject.Counts, error) { return p.S3Proxy.Counts(), nil }

// openFaultTarget opens the campaign's storage with its fault injector (faults off).
func openFaultTarget(ctx context.Context, cfg *FaultConfig, dir string) (*target, injector, error) {
	root := filepath.Join(dir, "store")
	switch cfg.Backend {
	case Shell:
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, nil, err
		}
		plain, err := WriteShellConfig(dir, root)
		if err != nil {
			return nil, nil, err
		}
		sc, err := shell.LoadConfig(plain)
		if err != nil {
			return nil, nil, err
		}
		fi, err := faultinject.NewShell(filepath.Join(dir, "faults"), cfg.Seed)
		if err != nil {
			return nil, nil, err
		}
		wrapped, err := fi.Wrap(sc)
		if err != nil {
			return nil, nil, err
		}
		p := filepath.Join(dir, "faulty-commands.yaml")
		if err := faultinject.WriteConfig(p, wrapped); err != nil {
			return nil, nil, err
		}
		return &target{args: []string{"--command-config", p}, raw: dirStore{root}, stop: func() error { return nil }}, fi, nil
	default:
		srv, err := startS3(ctx)
		if err != nil {
			return nil, nil, err
		}
		px, err := faultinject.NewS3Proxy(srv.url, cfg.Seed)
		if err != nil {
			srv.close()
			return nil, nil, err
		}
		prefix := "faults/" + filepath.Base(dir)
		url := fmt.Sprintf("s3://%s/%s?endpoint=%s&use_path_style=true&region=us-east-1", srv.bucket, prefix, px.URL())
		stop := func() error { return errors.Join(px.Close(), srv.close()) }
		return &target{args: []string{"--storage", url}, env: srv.env(), raw: srv.raw(prefix), stop: stop}, proxyInjector{px}, nil
	}
}

// RunFaults runs a fault campaign: a development node commits at cfg.TPS while
// the real coordinator binary backs it up to storage that fails cfg.Rate of its
// calls for cfg.FaultDuration; then the faults stop, the coordinator must catch
// up with the node and exit 0 on SIGTERM, leave no process behind and log no
// panic, and gc --grace 0s, verify and a restore (roots equal to the node's) must
// pass. An error means the campaign could not run to its end; what it measured,
// failed checks included, is in the result.
func RunFaults(ctx context.Context, cfg FaultConfig) (*FaultResult, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	start := time.Now()
	res := &FaultResult{Backend: cfg.Backend, Seed: cfg.Seed, Rate: cfg.Rate, LeaseRate: cfg.LeaseRate, FaultDuration: cfg.FaultDuration,
		Checks: Result{Kind: cfg.Backend, ExitStatuses: map[string]int{}}}
	defer func() { res.Duration = time.Since(start) }()
	dir := cfg.Dir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "ledgervault-faultcampaign-"); err != nil {
			return res, fmt.Errorf("fault campaign: %w", err)
		}
		if !cfg.Keep {
			defer os.RemoveAll(dir)
		}
	}
	err := runFaults(ctx, &cfg, dir, res)
	if err != nil {
		res.Checks.problem("campaign stopped: %v", err)
		err = fmt.Errorf("fault campaign %s: %w", cfg.Backend, err)
	}
	res.PanicLines = countPanics(filepath.Join(dir, "logs"))
	if res.PanicLines > 0 {
		res.Checks.problem("%d log lines report a panic (logs in %s)", res.PanicLines, filepath.Join(dir, "logs"))
	}
	return res, err
}

// runFaults is RunFaults in the work directory dir.
func runFaults(ctx context.Context, cfg *FaultConfig, dir string, res *FaultResult) (err error) {
	k := &kindRun{cfg: cfg.killConfig(), kind: cfg.Backend, dir: dir, logDir: filepath.Join(dir, "logs"), res: &res.Checks}
	if err := os.MkdirAll(k.logDir, 0o755); err != nil {
		return err
	}
	tgt, inj, err := openFaultTarget(ctx, cfg, dir)
	if err != nil {
		return err
	}
	k.tgt = tgt
	defer func() {
		if serr := tgt.stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop storage: %w", serr)
		}
	}()
	k.check = newChecker(tgt.raw)
	nodeDir := filepath.Join(dir, "node")
	if err := initNode(ctx, k.cfg, nodeDir); err != nil {
		return err
	}
	final := alignedEnd(uint64(cfg.TPS*(cfg.FaultDuration+cfg.NodeTail+5*time.Second).Seconds()), cfg.TransactionBatchSize)
	k.res.NodeFinalVersion = final // its --until-version: backed up before the SIGTERM
	if k.node, err = startNode(ctx, k.cfg, nodeDir, filepath.Join(k.logDir, "node.log"), final); err != nil {
		return err
	}
	defer func() {
		if k.node != nil {
			if serr := k.node.stop(); serr != nil && err == nil {
				err = serr
			}
		}
	}()
	c, metrics, err := startFaultCoordinator(ctx, k, cfg)
	if err != nil {
		return err
	}
	early, err := faultWindow(ctx, k, cfg, c, inj, res)
	if err == nil && !early {
		early, err = lastVersion(ctx, k, cfg, c, res)
	}
	if cerr := collectCounts(inj, res); err == nil {
		err = cerr
	}
	if err != nil {
		if !early {
			k.abandon(c)
		}
		return err
	}
	// A coordinator that exited by itself is a failure already recorded; the end
	// checks still run on what it left.
	if !early {
		err = stopFaultCoordinator(ctx, k, c, metrics, res)
	}
	if err == nil {
		err = finalCoverage(ctx, k)
	}
	if err != nil {
		return err
	}
	if err := k.node.stop(); err != nil {
		k.node = nil
		return fmt.Errorf("stop node: %w", err)
	}
	k.node = nil
	before, err := k.check.run(ctx)
	if err != nil {
		return fmt.Errorf("check storage before gc: %w", err)
	}
	res.TempFilesBeforeGC = before.Temp + before.OpenUploads
	res.Checks.PartialFiles += before.Bad()
	for _, p := range before.Problems {
		res.Checks.problem("before gc: %s", p)
	}
	return k.finish(ctx, nodeDir)
}

// collectCounts reads the injector's counts into res.
func collectCounts(inj injector, res *FaultResult) error {
	c, err := inj.Counts()
	if err != nil {
		return err
	}
	res.Counts = c
	return nil
}

// faultCoordinatorArgs returns the coordinator's command line: the kill
// campaign's, with a metrics server on a free port, the lease TTL and the metadata
// cache of cfg.
func faultCoordinatorArgs(k *kindRun, cfg *FaultConfig) []string {
	args := k.coordinatorArgs()
	for i, a := range args {
		if a == "--metrics-addr=" {
			args[i] = "--metrics-addr=127.0.0.1:0"
		}
		if a == "--owner" && i+1 < len(args) {
			args[i+1] = "faultcampaign-" + string(cfg.Backend)
		}
	}
	args = append(args, "--lease-ttl", cfg.LeaseTTL.String())
	if !cfg.NoMetadataCache {
		args = append(args, "--metadata-cache-dir", filepath.Join(k.dir, "metadata-cache"))
	}
	return args
}

// startFaultCoordinator starts the coordinator and waits for its metrics address.
func startFaultCoordinator(ctx context.Context, k *kindRun, cfg *FaultConfig) (*child, string, error) {
	k.starts++
	marker := fmt.Sprintf("faults-%s-%d-%d", cfg.Backend, os.Getpid(), time.Now().UnixNano())
	env := append([]string{MarkerEnv + "=" + marker}, k.tgt.env...)
	c, err := startChild(cfg.Binary, faultCoordinatorArgs(k, cfg), env, filepath.Join(k.logDir, "coordinator.log"), func(line []byte) bool {
		m := logField(line, "msg")
		return m == "metrics listening" || m == "backup completed"
	})
	if err != nil {
		return nil, "", err
	}
	deadline := time.Now().Add(time.Minute)
	for {
		for _, l := range c.kept() {
			if logField([]byte(l), "msg") == "metrics listening" {
				return c, logField([]byte(l), "addr"), nil
			}
		}
		select {
		case <-c.done:
			code, sig, _ := c.waitExit(0)
			return nil, "", fmt.Errorf("coordinator exited at start (status %d, signal %v): %s", code, sig, c.tail(2000))
		case <-ctx.Done():
			k.abandon(c)
			return nil, "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			k.abandon(c)
			return nil, "", fmt.Errorf("coordinator logged no metrics address within a minute: %s", c.tail(2000))
		}
	}
}

// faultWindow turns the faults on for cfg.FaultDuration, then off, and waits for
// the coordinator to back up the node's version of that moment. early reports that
// the coordinator exited by itself (recorded as a problem, with its status).
func faultWindow(ctx context.Context, k *kindRun, cfg *FaultConfig, c *child, inj injector, res *FaultResult) (early bool, err error) {
	if err := setFaults(inj, cfg, true); err != nil {
		return false, err
	}
	cfg.Logger.Info("fault campaign: faults on", "backend", cfg.Backend, "rate", cfg.Rate, "for", cfg.FaultDuration, "seed", cfg.Seed)
	end := time.Now().Add(cfg.FaultDuration)
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for time.Now().Before(end) {
		select {
		case <-c.done:
			setFaults(inj, cfg, false)
			exitedEarly(k, c, res, "during the faults")
			return true, nil
		case <-ctx.Done():
			setFaults(inj, cfg, false)
			return false, ctx.Err()
		case <-tick.C:
			if cnt, err := inj.Counts(); err == nil {
				cfg.Logger.Info("fault campaign: faults on", "backend", cfg.Backend, "calls", cnt.TotalCalls(), "faults", cnt.TotalInjected(), "left", time.Until(end).Round(time.Second))
			}
		case <-time.After(time.Until(end)):
		}
	}
	if err := setFaults(inj, cfg, false); err != nil {
		return false, err
	}
	off := time.Now()
	v, err := nodeVersionNow(ctx, k.node.addr)
	if err != nil {
		return false, err
	}
	res.FaultsOffVersion = v
	cfg.Logger.Info("fault campaign: faults off, catching up", "backend", cfg.Backend, "node_version", v)
	early, err = waitCovered(ctx, k, c, v, res)
	if err == nil && !early {
		res.CatchUp = time.Since(off)
	}
	return early, err
}

// lastVersion waits for the node to reach its last version, then for the
// coordinator to back it up.
func lastVersion(ctx context.Context, k *kindRun, cfg *FaultConfig, c *child, res *FaultResult) (early bool, err error) {
	left := time.Duration(float64(res.Checks.NodeFinalVersion-min(res.FaultsOffVersion, res.Checks.NodeFinalVersion)) / cfg.TPS * float64(time.Second))
	if err := k.node.waitUntilReached(ctx, time.Minute+2*left); err != nil {
		return false, err
	}
	cfg.Logger.Info("fault campaign: node at its last version", "backend", cfg.Backend, "node_version", res.Checks.NodeFinalVersion)
	return waitCovered(ctx, k, c, res.Checks.NodeFinalVersion, res)
}

// waitCovered waits until transaction backups cover version v, the coordinator
// running on. It reads the store (every metadata file, a heavy read on a large
// store) when the coordinator's log says a transaction backup reached v, and every
// few seconds in any case; storage, not the log, decides.
func waitCovered(ctx context.Context, k *kindRun, c *child, v uint64, res *FaultResult) (early bool, err error) {
	deadline := time.Now().Add(k.cfg.CatchUpTimeout)
	var next, logged uint64
	var lastRead time.Time
	for {
		if l := loggedTxnNext(c); l > logged {
			logged = l
			deadline = time.Now().Add(k.cfg.CatchUpTimeout)
		}
		if logged > v || time.Since(lastRead) >= coverageEvery {
			cov, err := coverage(ctx, k.tgt.raw)
			if err != nil {
				return false, err
			}
			lastRead = time.Now()
			if cov.txnNext > next {
				next = cov.txnNext
				deadline = time.Now().Add(k.cfg.CatchUpTimeout)
			}
			if next > v {
				return false, nil
			}
		}
		select {
		case <-c.done:
			exitedEarly(k, c, res, fmt.Sprintf("catching up (transactions cover [0, %d) of %d)", next, v+1))
			return true, nil
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return false, fmt.Errorf("coordinator made no progress towards version %d for %v (transactions cover [0, %d))", v, k.cfg.CatchUpTimeout, next)
		}
	}
}

// coverageEvery is how often waitCovered reads the store when the log says nothing.
const coverageEvery = 5 * time.Second

// loggedTxnNext returns the version after the last transaction backup the
// coordinator logged as completed (0 when none).
func loggedTxnNext(c *child) uint64 {
	var next uint64
	for _, l := range c.kept() {
		var m struct {
			Msg  string `json:"msg"`
			Type string `json:"type"`
			Last uint64 `json:"last"`
		}
		if json.Unmarshal([]byte(l), &m) == nil && m.Msg == "backup completed" && m.Type == "transaction" {
			next = max(next, m.Last+1)
		}
	}
	return next
}

// exitedEarly records a coordinator that ended by itself, and its orphans.
func exitedEarly(k *kindRun, c *child, res *FaultResult, when string) {
	code, sig, _ := c.waitExit(0)
	res.ExitedEarly = true
	res.CoordinatorExit = exitString(code, sig)
	res.Checks.UnexpectedExits++
	res.Checks.problem("coordinator exited by itself %s: %s: %s", when, res.CoordinatorExit, c.tail(800))
	noteOrphans(k, c)
}

func exitString(code int, sig syscall.Signal) string {
	if sig != 0 {
		return sig.String()
	}
	return fmt.Sprintf("exit %d", code)
}

// noteOrphans counts (and kills) processes of the coordinator's tree left after
// its exit.
func noteOrphans(k *kindRun, c *child) {
	left := survivors(c.marker, k.cfg.OrphanWait)
	k.res.OrphansSum += len(left)
	k.res.OrphansMax = max(k.res.OrphansMax, len(left))
	if len(left) > 0 {
		k.res.problem("%d processes of the coordinator alive %v after its exit", len(left), k.cfg.OrphanWait)
		killSurvivors(left)
	}
}

// stopFaultCoordinator reads the coordinator's retries and stops it with SIGTERM
// (exit 0 expected).
func stopFaultCoordinator(ctx context.Context, k *kindRun, c *child, metricsAddr string, res *FaultResult) error {
	var err error
	if res.Retries, res.Transient, err = scrapeRetries(ctx, metricsAddr); err != nil {
		res.Checks.problem("read the coordinator's metrics: %v", err)
	}
	c.signal(syscall.SIGTERM)
	code, sig, err := c.waitExit(k.cfg.ShutdownGrace + 30*time.Second)
	if err != nil {
		res.Checks.problem("coordinator after SIGTERM: %v", err)
	}
	res.CoordinatorExit = exitString(code, sig)
	res.Checks.ExitStatuses[res.CoordinatorExit]++
	if code != 0 || sig != 0 {
		res.Checks.UnexpectedExits++
		res.Checks.problem("coordinator: SIGTERM after catching up, then %s (want exit 0): %s", res.CoordinatorExit, c.tail(800))
	}
	k.collect(c)
	noteOrphans(k, c)
	return nil
}

// finalCoverage records the last version transaction backups cover, once the
// coordinator is gone.
func finalCoverage(ctx context.Context, k *kindRun) error {
	cov, err := coverage(ctx, k.tgt.raw)
	if err != nil {
		return err
	}
	if cov.txnNext == 0 {
		return errors.New("no transaction backed up")
	}
	k.res.FinalVersion = cov.txnNext - 1
	if k.res.FinalVersion != k.res.NodeFinalVersion {
		k.res.problem("transactions backed up to version %d, the node's last is %d", k.res.FinalVersion, k.res.NodeFinalVersion)
	}
	return nil
}

// nodeVersionNow asks the node's backup service for its last committed version.
func nodeVersionNow(ctx context.Context, addr string) (uint64, error) {
	cl, err := backupservice.New(addr, backupservice.ClientOptions{})
	if err != nil {
		return 0, err
	}
	defer cl.Close()
	s, err := cl.DBState(ctx)
	if err != nil {
		return 0, fmt.Errorf("node state: %w", err)
	}
	if s.NextVersion == 0 {
		return 0, errors.New("node state: no version committed")
	}
	return s.NextVersion - 1, nil
}

// maxMetricsBody bounds the coordinator's /metrics page.
const maxMetricsBody = 4 << 20

// scrapeRetries reads retries_total and failures_total{class="transient"} by kind
// from the coordinator's /metrics.
func scrapeRetries(ctx context.Context, addr string) (retries, transient map[string]float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return nil, nil, err
	}
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxMetricsBody))
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	fams, err := parseMetrics(b)
	if err != nil {
		return nil, nil, err
	}
	return counters(fams, "ledgervault_coordinator_retries_total", nil),
		counters(fams, "ledgervault_coordinator_failures_total", map[string]string{"class": "transient"}), nil
}

// parseMetrics parses a Prometheus text exposition page (client_golang's expfmt).
func parseMetrics(page []byte) (map[string]*dto.MetricFamily, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(page))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	return fams, nil
}

// counters returns the values of the counter (or untyped metric) name by their "kind"
// label, keeping only samples whose other labels match want.
func counters(fams map[string]*dto.MetricFamily, name string, want map[string]string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range fams[name].GetMetric() {
		labels := map[string]string{}
		for _, lp := range m.GetLabel() {
			labels[lp.GetName()] = lp.GetValue()
		}
		match := true
		for k, val := range want {
			match = match && labels[k] == val
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			out[labels["kind"]] = m.GetCounter().GetValue()
		case m.Untyped != nil:
			out[labels["kind"]] = m.GetUntyped().GetValue()
		}
	}
	return out
}

// countPanics counts lines reporting a Go panic in the log files of dir.
func countPanics(dir string) int {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			continue
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if bytes.Contains(l, []byte("panic: ")) || bytes.Contains(l, []byte("goroutine ")) && bytes.Contains(l, []byte("[running]")) {
				n++
			}
		}
	}
	return n
}

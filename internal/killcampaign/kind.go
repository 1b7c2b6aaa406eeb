package killcampaign

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/ledgervault/ledgervault/format/native"
)

// target is the storage one kind's campaign writes to.
type target struct {
	args []string // storage flags of the ledgervault commands
	env  []string // extra environment of the ledgervault commands
	raw  rawStore
	stop func() error
}

func openTarget(ctx context.Context, kind Kind, dir string) (*target, error) {
	root := filepath.Join(dir, "store")
	switch kind {
	case Local:
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
		return &target{args: []string{"--storage", "file://" + root}, raw: dirStore{root}, stop: func() error { return nil }}, nil
	case Shell:
		if err := os.MkdirAll(root, 0o755); err != nil {
			return nil, err
		}
		cfg, err := WriteShellConfig(dir, root)
		if err != nil {
			return nil, err
		}
		return &target{args: []string{"--command-config", cfg}, raw: dirStore{root}, stop: func() error { return nil }}, nil
	case S3:
		srv, err := startS3(ctx)
		if err != nil {
			return nil, err
		}
		prefix := "campaign/" + filepath.Base(dir)
		return &target{args: []string{"--storage", srv.storageURL(prefix)}, env: srv.env(), raw: srv.raw(prefix), stop: srv.close}, nil
	default:
		return nil, fmt.Errorf("unknown storage kind %q", kind)
	}
}

// kindRun is the state of one kind's campaign.
type kindRun struct {
	cfg    *Config
	kind   Kind
	dir    string
	logDir string
	tgt    *target
	node   *node
	res    *Result
	check  *checker
	starts int
}

func runKind(ctx context.Context, cfg *Config, r KindRun, dir string, rng *rand.Rand) (res *Result, err error) {
	start := time.Now()
	res = &Result{Kind: r.Kind, ExitStatuses: map[string]int{}}
	k := &kindRun{cfg: cfg, kind: r.Kind, dir: dir, logDir: filepath.Join(dir, "logs"), res: res}
	defer func() {
		res.Duration = time.Since(start)
		res.Restarts = max(k.starts-1, 0)
	}()
	if err := os.MkdirAll(k.logDir, 0o755); err != nil {
		return res, err
	}
	if k.tgt, err = openTarget(ctx, r.Kind, dir); err != nil {
		return res, err
	}
	defer func() {
		if serr := k.tgt.stop(); serr != nil && err == nil {
			err = fmt.Errorf("stop storage: %w", serr)
		}
	}()
	k.check = newChecker(k.tgt.raw)

	nodeDir := filepath.Join(dir, "node")
	if err := initNode(ctx, cfg, nodeDir); err != nil {
		return res, err
	}
	if k.node, err = startNode(ctx, cfg, nodeDir, filepath.Join(k.logDir, "node.log"), 0); err != nil {
		return res, err
	}
	defer func() {
		if k.node != nil {
			if serr := k.node.stop(); serr != nil && err == nil {
				err = serr
			}
		}
	}()

	for i := 0; i < r.Kills; i++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		if err := k.killOnce(ctx, i, randomWait(rng, cfg.MinWait, cfg.MaxWait), pickSignal(rng, cfg.SIGKILLFraction)); err != nil {
			return res, err
		}
	}

	// Stop the node, then let it commit up to the end of a transaction batch so that
	// the coordinator's aligned batches can cover its last version exactly.
	if err := k.node.stop(); err != nil {
		k.node = nil
		return res, fmt.Errorf("stop node: %w", err)
	}
	k.node = nil
	v, err := nodeVersion(ctx, nodeDir)
	if err != nil {
		return res, err
	}
	final := alignedEnd(v, cfg.TransactionBatchSize)
	if k.node, err = startNode(ctx, cfg, nodeDir, filepath.Join(k.logDir, "node-final.log"), final); err != nil {
		return res, err
	}
	if final > v {
		if err := k.node.waitUntilReached(ctx, time.Minute+time.Duration(float64(final-v)/cfg.TPS*float64(time.Second))); err != nil {
			return res, err
		}
	}
	res.NodeFinalVersion = final

	if err := k.catchUp(ctx, final); err != nil {
		return res, err
	}
	err = k.node.stop()
	k.node = nil
	if err != nil {
		return res, fmt.Errorf("stop node: %w", err)
	}
	if err := k.finish(ctx, nodeDir); err != nil {
		return res, err
	}
	return res, nil
}

// alignedEnd returns the last version of the transaction batch holding v.
func alignedEnd(v, batch uint64) uint64 {
	return (v/batch+1)*batch - 1
}

// coordinatorArgs returns the command line of a coordinator run.
func (k *kindRun) coordinatorArgs() []string {
	args := []string{"backup", "coordinator",
		"--backup-service-address", k.node.addr,
		"--poll-interval", k.cfg.PollInterval.String(),
		"--state-snapshot-interval-epochs", "1",
		"--transaction-batch-size", strconv.FormatUint(k.cfg.TransactionBatchSize, 10),
		"--max-chunk-size", strconv.FormatInt(k.cfg.MaxChunkSize, 10),
		"--shutdown-grace", k.cfg.ShutdownGrace.String(),
		"--owner", "killcampaign-" + string(k.kind),
		"--metrics-addr=",
		"--log-format", "json",
	}
	return append(args, k.tgt.args...)
}

// startCoordinator starts one coordinator run with a marker of its own.
func (k *kindRun) startCoordinator(name string) (*child, error) {
	k.starts++
	marker := fmt.Sprintf("%s-%d-%d-%s", k.kind, os.Getpid(), time.Now().UnixNano(), name)
	env := append([]string{MarkerEnv + "=" + marker}, k.tgt.env...)
	return startChild(k.cfg.Binary, k.coordinatorArgs(), env, filepath.Join(k.logDir, name+".log"), watchCoordinator)
}

// killOnce runs the coordinator for wait, sends sig and checks what it left.
func (k *kindRun) killOnce(ctx context.Context, i int, wait time.Duration, sig syscall.Signal) error {
	c, err := k.startCoordinator(fmt.Sprintf("coordinator-%03d", i))
	if err != nil {
		return err
	}
	t := time.NewTimer(wait)
	select {
	case <-t.C:
	case <-c.done:
		t.Stop()
	case <-ctx.Done():
		t.Stop()
		k.abandon(c)
		return ctx.Err()
	}
	res := k.res
	res.Kills++
	select {
	case <-c.done:
		code, _, _ := c.waitExit(0)
		res.UnexpectedExits++
		res.problem("kill %d: coordinator exited by itself before its %v signal (status %d): %s", i, sig, code, c.tail(600))
	default:
	}
	if sig == syscall.SIGKILL {
		res.SIGKILLs++
	} else {
		res.SIGTERMs++
	}
	c.signal(sig)
	code, got, err := c.waitExit(k.cfg.ShutdownGrace + 30*time.Second)
	if err != nil {
		res.problem("kill %d: %v", i, err)
		res.UnexpectedExits++
	}
	status := fmt.Sprintf("exit %d", code)
	if got != 0 {
		status = got.String()
	}
	res.ExitStatuses[status]++
	switch {
	case sig == syscall.SIGKILL && got != syscall.SIGKILL:
		res.UnexpectedExits++
		res.problem("kill %d: SIGKILL, then %s", i, status)
	case sig == syscall.SIGTERM && !(got == 0 && (code == 0 || code == 75)):
		res.UnexpectedExits++
		res.problem("kill %d: SIGTERM, then %s (want exit 0 or 75): %s", i, status, c.tail(600))
	}
	k.collect(c)

	left := survivors(c.marker, k.cfg.OrphanWait)
	res.OrphansSum += len(left)
	res.OrphansMax = max(res.OrphansMax, len(left))
	if len(left) > 0 {
		res.problem("kill %d (%v after %v): %d processes alive %v after the coordinator's exit", i, sig, wait, len(left), k.cfg.OrphanWait)
		killSurvivors(left)
	}

	sc, err := k.check.run(ctx)
	if err != nil {
		return fmt.Errorf("check storage after kill %d: %w", i, err)
	}
	res.PartialFiles += sc.Bad()
	res.TempFilesSeen = max(res.TempFilesSeen, sc.Temp)
	k.noteUnknown(sc)
	for _, p := range sc.Problems {
		res.problem("kill %d (%v after %v): %s", i, sig, wait, p)
	}
	k.cfg.Logger.Info("kill", "kind", k.kind, "n", i, "signal", sig.String(), "after", wait.Round(time.Millisecond),
		"status", status, "orphans", len(left), "partial", sc.Bad(), "temp", sc.Temp, "open_uploads", sc.OpenUploads,
		"files", sc.Files, "backups", sc.Metadata)
	return nil
}

// abandon SIGKILLs a coordinator the campaign gives up on, waits for it, and kills
// whatever of its tree is left, so that no process outlives Run (the orphans are
// not counted: the campaign is stopping for another reason).
func (k *kindRun) abandon(c *child) {
	c.signal(syscall.SIGKILL)
	c.waitExit(time.Minute)
	killSurvivors(survivors(c.marker, k.cfg.OrphanWait))
}

// catchUp runs the coordinator until metadata covers the node's versions up to final
// with transactions, then stops it with SIGTERM (exit 0 expected). It gives up when
// the coverage does not advance for Config.CatchUpTimeout.
func (k *kindRun) catchUp(ctx context.Context, final uint64) error {
	c, err := k.startCoordinator("coordinator-final")
	if err != nil {
		return err
	}
	deadline := time.Now().Add(k.cfg.CatchUpTimeout)
	var next uint64
	lastLog := time.Now()
	for {
		cov, err := coverage(ctx, k.tgt.raw)
		if err != nil {
			k.abandon(c)
			return err
		}
		if cov.txnNext > next {
			deadline = time.Now().Add(k.cfg.CatchUpTimeout)
		}
		next = cov.txnNext
		if next > final {
			break
		}
		if time.Since(lastLog) >= 30*time.Second {
			k.cfg.Logger.Info("catching up", "kind", k.kind, "transactions_backed_up_to", int64(next)-1, "node_version", final)
			lastLog = time.Now()
		}
		select {
		case <-c.done:
			code, sig, _ := c.waitExit(0)
			return fmt.Errorf("final coordinator exited (status %d, signal %v) at version %d of %d: %s", code, sig, next, final, c.tail(2000))
		case <-ctx.Done():
			k.abandon(c)
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			k.abandon(c)
			return fmt.Errorf("coordinator made no progress towards version %d for %v (transactions cover [0, %d))", final, k.cfg.CatchUpTimeout, next)
		}
	}
	c.signal(syscall.SIGTERM)
	code, sig, err := c.waitExit(k.cfg.ShutdownGrace + 30*time.Second)
	if err != nil {
		return err
	}
	if code != 0 || sig != 0 {
		k.res.UnexpectedExits++
		k.res.problem("final coordinator: SIGTERM after catching up, then status %d signal %v (want 0): %s", code, sig, c.tail(600))
	}
	k.collect(c)
	left := survivors(c.marker, k.cfg.OrphanWait)
	k.res.OrphansSum += len(left)
	k.res.OrphansMax = max(k.res.OrphansMax, len(left))
	killSurvivors(left)
	k.res.FinalVersion = next - 1
	return nil
}

// finish runs gc, checks storage once more, verifies, restores and compares roots.
func (k *kindRun) finish(ctx context.Context, nodeDir string) error {
	res := k.res
	// What the kills left, as audit sees it: unreferenced leftovers only, nothing
	// missing, partial or mismatched.
	before, err := k.audit(ctx, "before gc")
	if err == nil {
		res.AuditUnreferenced = before.unreferencedFolders + before.unreferencedFiles
	}
	// Everything unreferenced goes: nothing writes any more.
	out, _, err := runTool(ctx, k.cfg.Binary, k.tgt.env, append([]string{"gc", "--grace", "0s", "--json"}, k.tgt.args...)...)
	if err != nil {
		res.problem("gc: %v", err)
	} else {
		var g struct {
			BackupsRemoved      int `json:"backups_removed"`
			StaleUploadsAborted int `json:"stale_uploads_aborted"`
		}
		if err := json.Unmarshal(out, &g); err != nil {
			res.problem("gc --json output %q: %v", truncate(out), err)
		}
		res.LeftoversRemoved = g.BackupsRemoved + g.StaleUploadsAborted
		if before != nil && before.unreferencedFolders != g.BackupsRemoved {
			res.problem("audit found %d unreferenced folders before gc, gc --grace 0s removed %d", before.unreferencedFolders, g.BackupsRemoved)
		}
	}
	// gc removes folders; files of a resumed snapshot's earlier attempts stay in
	// their referenced folder.
	if after, err := k.audit(ctx, "after gc"); err == nil && after.unreferencedFolders != 0 {
		res.problem("audit after gc: %d unreferenced folders", after.unreferencedFolders)
	}

	sc, err := k.check.run(ctx)
	if err != nil {
		return fmt.Errorf("check storage after gc: %w", err)
	}
	res.PartialFiles += sc.Bad()
	k.noteUnknown(sc)
	res.BackupsCompleted = sc.Metadata
	res.UnreferencedAfter = sc.Unreferenced + sc.Temp + sc.OpenUploads
	for _, p := range sc.Problems {
		res.problem("after gc: %s", p)
	}
	if res.UnreferencedAfter > 0 {
		res.problem("after gc: %d unreferenced folders, %d temporary files, %d open uploads left", sc.Unreferenced, sc.Temp, sc.OpenUploads)
	}

	waypoint := filepath.Join(nodeDir, "waypoint.txt")
	if _, _, err := runTool(ctx, k.cfg.Binary, k.tgt.env, append([]string{"verify", "--waypoint-file", waypoint}, k.tgt.args...)...); err != nil {
		res.problem("verify: %v", err)
	} else {
		res.VerifyPassed = true
	}

	dbDir := filepath.Join(k.dir, "restored")
	out, _, err = runTool(ctx, k.cfg.Binary, k.tgt.env, append([]string{"restore", "--target-version", "latest", "--db", dbDir,
		"--waypoint-file", waypoint, "--progress", "none", "--json"}, k.tgt.args...)...)
	if err != nil {
		res.problem("restore: %v", err)
		return nil
	}
	var rs struct {
		TargetVersion   uint64 `json:"target_version"`
		StateRoot       string `json:"state_root"`
		AccumulatorRoot string `json:"accumulator_root"`
	}
	if err := json.Unmarshal(out, &rs); err != nil {
		res.problem("restore --json output %q: %v", truncate(out), err)
		return nil
	}
	res.RestoredVersion = rs.TargetVersion
	ns, na, err := roots(ctx, filepath.Join(nodeDir, "db"), rs.TargetVersion)
	if err != nil {
		res.problem("node roots: %v", err)
		return nil
	}
	rsr, rar, err := roots(ctx, dbDir, rs.TargetVersion)
	if err != nil {
		res.problem("restored roots: %v", err)
		return nil
	}
	res.RootsEqual = ns == rsr && na == rar && ns.String() == rs.StateRoot && na.String() == rs.AccumulatorRoot
	if !res.RootsEqual {
		res.problem("roots at %d: node state %s acc %s, restored state %s acc %s, restore printed state %s acc %s",
			rs.TargetVersion, ns, na, rsr, rar, rs.StateRoot, rs.AccumulatorRoot)
	}
	if rs.TargetVersion != res.FinalVersion {
		res.problem("restore of latest reached version %d, the coordinator backed up to %d", rs.TargetVersion, res.FinalVersion)
	}
	return nil
}

// auditCounts is what "ledgervault audit" reported.
type auditCounts struct {
	unreferencedFolders, unreferencedFiles int
}

// audit runs "ledgervault audit --json" on the store and records as problems any
// finding but an unreferenced folder or file (what interrupted backups leave).
func (k *kindRun) audit(ctx context.Context, when string) (*auditCounts, error) {
	out, code, err := runTool(ctx, k.cfg.Binary, k.tgt.env, append([]string{"audit", "--json", "--progress", "off"}, k.tgt.args...)...)
	if err != nil && code != 1 { // 1: findings
		k.res.problem("audit %s: %v", when, err)
		return nil, err
	}
	var rep struct {
		Format   string `json:"format"`
		Findings []struct {
			Kind, Handle, Detail string
		} `json:"findings"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		k.res.problem("audit %s: --json output %q: %v", when, truncate(out), err)
		return nil, err
	}
	if rep.Format != "ledgervault" {
		k.res.problem("audit %s: format %q", when, rep.Format)
	}
	c := &auditCounts{}
	for _, f := range rep.Findings {
		switch {
		case f.Kind == "unreferenced" && !strings.Contains(f.Handle, "/"):
			c.unreferencedFolders++
		case f.Kind == "unreferenced":
			c.unreferencedFiles++
		default:
			k.res.problem("audit %s: %s %s: %s", when, f.Kind, f.Handle, f.Detail)
		}
	}
	return c, nil
}

// noteUnknown records files the check could not classify.
func (k *kindRun) noteUnknown(sc *StorageCheck) {
	k.res.UncheckedFiles = max(k.res.UncheckedFiles, sc.Unknown)
	if len(sc.UnknownFiles) > 0 {
		k.res.UncheckedExamples = sc.UnknownFiles
	}
}

func truncate(b []byte) string {
	if len(b) > 300 {
		return string(b[:300]) + "..."
	}
	return string(b)
}

// coverageInfo is what metadata says is backed up.
type coverageInfo struct {
	// txnNext is the first version not covered by transaction backups contiguous from 0.
	txnNext uint64
	lines   int
}

// coverage reads every metadata file (names ending in .meta) of st.
func coverage(ctx context.Context, st rawStore) (coverageInfo, error) {
	objs, err := st.list(ctx)
	if err != nil {
		return coverageInfo{}, err
	}
	type rng struct{ first, last uint64 }
	var txns []rng
	var info coverageInfo
	for _, o := range objs {
		dir, name := path.Split(o.Key)
		if strings.TrimSuffix(dir, "/") != metadataDir || !native.IsMetadataName(name) || isTemp(name) {
			continue
		}
		b, err := readAll(ctx, st, o.Key, native.MaxMetadataSize)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				continue // removed by compaction meanwhile
			}
			return coverageInfo{}, err
		}
		lines, err := native.DecodeMetadataFile(o.Key, b)
		if err != nil {
			return coverageInfo{}, err
		}
		for _, m := range lines {
			info.lines++
			if m.Type == native.TypeTransaction {
				txns = append(txns, rng{m.FirstVersion, m.LastVersion})
			}
		}
	}
	sort.Slice(txns, func(i, j int) bool { return txns[i].first < txns[j].first })
	for _, r := range txns {
		if r.first > info.txnNext {
			break
		}
		info.txnNext = max(info.txnNext, r.last+1)
	}
	return info, nil
}

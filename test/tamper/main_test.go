package tamper

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/internal/proc"
)

func TestMain(m *testing.M) {
	if code, ok := proc.GuardMain(); ok {
		os.Exit(code)
	}
	// goleak hands the exit code (its own when it finds leaks) to the cleanup.
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		cleanupFixture()
		os.Exit(code)
	}))
}

// Shape of the good backup. The node changes epoch every epochLength versions; the
// snapshot is taken at the end of snapshotEpoch, so that restoring to the latest
// version replays several transaction chunks after it.
const (
	epochLength   = 200
	untilVersion  = 1500
	snapshotEpoch = 5
	// splitEpoch splits the epoch endings into two backups, [0, splitEpoch) and
	// [splitEpoch, current), so that one can be removed.
	splitEpoch = 4
	// Raw chunk sizes: small, so that every backup has several chunks.
	epochChunkSize = 1 << 10
	stateChunkSize = 1 << 10
	txnChunkSize   = 64 << 10
)

// fixture is the good backup every case starts from, made once per test binary.
type fixture struct {
	root      string // temp dir holding everything below
	bin       string // the ledgervault binary
	rssHelper string // the rsshelper binary (measures a command's own peak RSS)
	node      string // node directory (waypoint.txt)
	storage   string // the good backup storage directory
	waypoint  string // the node's waypoint.txt
	setupLog  bytes.Buffer
	goodRoots restoreSummary // the good restore's --json output
	latest    uint64         // the latest version backed up (target of "latest")
}

// restoreSummary is the part of `restore --json` the suite compares.
type restoreSummary struct {
	TargetVersion   uint64 `json:"target_version"`
	StateRoot       string `json:"state_root"`
	AccumulatorRoot string `json:"accumulator_root"`
}

var (
	fixOnce sync.Once
	fix     *fixture
	fixErr  error
)

// good returns the fixture, making it on first use; any failure fails the calling
// test (never a skip: a suite whose good backup does not restore proves nothing).
func good(t testing.TB) *fixture {
	t.Helper()
	fixOnce.Do(func() { fix, fixErr = makeFixture() })
	if fixErr != nil {
		t.Fatalf("making the good backup: %v", fixErr)
	}
	return fix
}

func cleanupFixture() {
	if fix != nil && fix.root != "" && os.Getenv("TAMPER_KEEP") == "" {
		os.RemoveAll(fix.root)
	}
}

func makeFixture() (*fixture, error) {
	root, err := os.MkdirTemp("", "ledgervault-tamper-")
	if err != nil {
		return nil, err
	}
	f := &fixture{root: root, bin: filepath.Join(root, "ledgervault"), node: filepath.Join(root, "node"), storage: filepath.Join(root, "good")}
	fix = f // for cleanup, even when setup fails below
	f.waypoint = filepath.Join(f.node, "waypoint.txt")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	f.rssHelper = filepath.Join(root, "rsshelper")
	build := exec.CommandContext(ctx, "go", "build", "-o", f.rssHelper, "github.com/ledgervault/ledgervault/test/tamper/rsshelper")
	if out, err := build.CombinedOutput(); err != nil {
		return f, fmt.Errorf("go build rsshelper: %v\n%s", err, out)
	}
	if bin := os.Getenv("TAMPER_BIN"); bin != "" {
		// A prebuilt binary (for example of another commit) instead of this tree's.
		f.bin = bin
	} else {
		build := exec.CommandContext(ctx, "go", "build", "-o", f.bin, "github.com/ledgervault/ledgervault/cmd/ledgervault")
		if out, err := build.CombinedOutput(); err != nil {
			return f, fmt.Errorf("go build: %v\n%s", err, out)
		}
	}
	if _, err := f.run(ctx, "node", "init", "--dir", f.node, "--epoch-length", strconv.Itoa(epochLength), "--seed", "7", "--log-level", "warn"); err != nil {
		return f, err
	}
	if err := f.backUp(ctx); err != nil {
		return f, err
	}
	return f, nil
}

// run runs the binary to completion and fails on a non-zero exit.
func (f *fixture) run(ctx context.Context, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, f.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	fmt.Fprintf(&f.setupLog, "$ ledgervault %s\n%s%s", strings.Join(args, " "), out.Bytes(), errb.Bytes())
	if err != nil {
		return nil, fmt.Errorf("ledgervault %s: %v\n%s", strings.Join(args, " "), err, errb.Bytes())
	}
	return out.Bytes(), nil
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// backUp runs the node until untilVersion and backs it up into f.storage: epoch
// endings in two backups, a state snapshot and one transaction backup, all with
// several chunks.
func (f *fixture) backUp(ctx context.Context) (err error) {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	node := exec.Command(f.bin, "node", "run", "--dir", f.node, "--backup-service-address", addr, "--metrics-addr", "",
		"--until-version", strconv.Itoa(untilVersion), "--log-level", "warn")
	var nodeErr bytes.Buffer
	node.Stdout, node.Stderr = &nodeErr, &nodeErr
	node.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := node.Start(); err != nil {
		return fmt.Errorf("start node: %w", err)
	}
	defer func() {
		node.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- node.Wait() }()
		select {
		case werr := <-done:
			if werr != nil && err == nil {
				err = fmt.Errorf("node run: %v\n%s", werr, nodeErr.Bytes())
			}
		case <-time.After(30 * time.Second):
			node.Process.Kill()
			<-done
			if err == nil {
				err = fmt.Errorf("node run did not stop on SIGTERM within 30s")
			}
		}
	}()
	epoch, err := waitCommitted(ctx, addr, untilVersion)
	if err != nil {
		return fmt.Errorf("%w\nnode output:\n%s", err, nodeErr.Bytes())
	}
	if epoch <= snapshotEpoch+1 || epoch <= splitEpoch+1 {
		return fmt.Errorf("node is in epoch %d at version %d: too few epochs for the fixture", epoch, untilVersion)
	}
	st := "file://" + f.storage
	common := []string{"--storage", st, "--backup-service-address", addr, "--log-level", "warn", "--progress", "none"}
	steps := [][]string{
		{"backup", "epoch-ending", "--start-epoch", "0", "--end-epoch", strconv.Itoa(splitEpoch), "--max-chunk-size", strconv.Itoa(epochChunkSize)},
		{"backup", "epoch-ending", "--start-epoch", strconv.Itoa(splitEpoch), "--end-epoch", strconv.FormatUint(epoch, 10), "--max-chunk-size", strconv.Itoa(epochChunkSize)},
		{"backup", "state-snapshot", "--epoch", strconv.Itoa(snapshotEpoch), "--max-chunk-size", strconv.Itoa(stateChunkSize)},
		{"backup", "transaction", "--start-version", "0", "--num-transactions", strconv.Itoa(untilVersion + 1), "--max-chunk-size", strconv.Itoa(txnChunkSize)},
	}
	for _, s := range steps {
		if _, err := f.run(ctx, append(s, common...)...); err != nil {
			return err
		}
	}
	f.latest = untilVersion
	return nil
}

// waitCommitted polls the node's backup service until version v is committed and
// returns the epoch of its latest ledger info.
func waitCommitted(ctx context.Context, addr string, v uint64) (uint64, error) {
	svc, err := backupservice.New(addr, backupservice.ClientOptions{})
	if err != nil {
		return 0, err
	}
	defer svc.Close()
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		ds, err := svc.DBState(ctx)
		if err == nil && ds.CommittedVersion != nil && *ds.CommittedVersion >= v {
			li, err := ds.LedgerInfo()
			if err != nil {
				return 0, fmt.Errorf("db state ledger info: %w", err)
			}
			return li.LedgerInfo.Epoch, nil
		}
		last = err
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return 0, fmt.Errorf("node did not commit version %d within 90s (last error: %v)", v, last)
}

// checkGood runs verify and restore on the good backup; both must succeed, and the
// restore's roots are kept to compare resumed restores with.
func (f *fixture) checkGood(t *testing.T) {
	t.Helper()
	if f.goodRoots.StateRoot != "" {
		return
	}
	dir := t.TempDir()
	v := f.runCase(t, dir, f.storage, "verify")
	if v.exit != 0 {
		t.Fatalf("verify of the good backup exited %d:\n%s", v.exit, v.stderr)
	}
	r := f.runCase(t, dir, f.storage, "restore", "latest")
	if r.exit != 0 {
		t.Fatalf("restore of the good backup exited %d:\n%s", r.exit, r.stderr)
	}
	var s restoreSummary
	if err := json.Unmarshal(bytes.TrimSpace(r.stdout), &s); err != nil {
		t.Fatalf("restore --json output %q: %v", r.stdout, err)
	}
	if s.TargetVersion != f.latest || s.StateRoot == "" || s.AccumulatorRoot == "" {
		t.Fatalf("restore of the good backup: %+v, want target version %d and both roots", s, f.latest)
	}
	t.Logf("good backup: verify %s, restore %s to version %d (peak RSS %s and %s)", v.took.Round(time.Millisecond),
		r.took.Round(time.Millisecond), s.TargetVersion, mib(v.maxRSS), mib(r.maxRSS))
	f.goodRoots = s
}

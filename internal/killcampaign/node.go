package killcampaign

import (
	"context"
	"fmt"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// node is a running "ledgervault node run".
type node struct {
	c    *child
	dir  string
	addr string // backup service host:port
}

// initNode writes a development node into dir.
func initNode(ctx context.Context, cfg *Config, dir string) error {
	_, _, err := runTool(ctx, cfg.Binary, nil, "node", "init", "--dir", dir,
		"--epoch-length", strconv.FormatUint(cfg.EpochLength, 10),
		"--initial-accounts", strconv.FormatUint(cfg.InitialAccounts, 10),
		"--large-value-size", "2048", "--log-format", "json")
	return err
}

// startNode runs the node in dir, serving its backup service on a free port of
// 127.0.0.1; with until > 0 it stops committing after that version and serves on.
func startNode(ctx context.Context, cfg *Config, dir, logPath string, until uint64) (*node, error) {
	args := []string{"node", "run", "--dir", dir, "--backup-service-address", "127.0.0.1:0", "--metrics-addr=",
		"--tps", strconv.FormatFloat(cfg.TPS, 'f', -1, 64), "--log-format", "json"}
	if until > 0 {
		args = append(args, "--until-version", strconv.FormatUint(until, 10))
	}
	c, err := startChild(cfg.Binary, args, nil, logPath, func(line []byte) bool {
		m := logField(line, "msg")
		return m == "node running" || m == "reached --until-version; serving until stopped"
	})
	if err != nil {
		return nil, err
	}
	n := &node{c: c, dir: dir}
	deadline := time.Now().Add(60 * time.Second)
	for n.addr == "" {
		for _, l := range c.kept() {
			if logField([]byte(l), "msg") == "node running" {
				n.addr = logField([]byte(l), "backup_service")
			}
		}
		if n.addr != "" {
			break
		}
		select {
		case <-c.done:
			return nil, fmt.Errorf("node exited before serving: %v: %s", c.err, c.tail(2000))
		case <-ctx.Done():
			n.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.stop()
			return nil, fmt.Errorf("node did not start serving within a minute: %s", c.tail(2000))
		}
	}
	return n, nil
}

// waitUntilReached waits for the node's "reached --until-version" log line.
func (n *node) waitUntilReached(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		for _, l := range n.c.kept() {
			if logField([]byte(l), "msg") != "node running" {
				return nil
			}
		}
		select {
		case <-n.c.done:
			return fmt.Errorf("node exited: %v: %s", n.c.err, n.c.tail(2000))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("node did not reach its --until-version within %v", timeout)
		}
	}
}

// stop stops the node with SIGTERM and waits for it.
func (n *node) stop() error {
	select {
	case <-n.c.done:
	default:
		n.c.signal(syscall.SIGTERM)
	}
	code, sig, err := n.c.waitExit(60 * time.Second)
	if err != nil {
		return err
	}
	if code != 0 || sig != 0 {
		return fmt.Errorf("node exit status %d (signal %v): %s", code, sig, n.c.tail(2000))
	}
	return nil
}

// nodeVersion returns the last committed version of a stopped node.
func nodeVersion(ctx context.Context, dir string) (uint64, error) {
	db, err := ledgerdb.Open(ctx, filepath.Join(dir, "db"), ledgerdb.Options{ReadOnly: true, CacheSize: 8 << 20})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	s, err := db.Summary(ctx)
	if err != nil {
		return 0, err
	}
	if s.NextVersion == 0 {
		return 0, fmt.Errorf("node store %s holds no version", dir)
	}
	return s.NextVersion - 1, nil
}

// roots returns the state root and accumulator root of the store in dbDir at v.
func roots(ctx context.Context, dbDir string, v uint64) (state, acc ledger.Hash, err error) {
	db, err := ledgerdb.Open(ctx, dbDir, ledgerdb.Options{ReadOnly: true, CacheSize: 8 << 20})
	if err != nil {
		return state, acc, err
	}
	defer db.Close()
	r, err := db.StateRoot(ctx, v)
	if err != nil {
		return state, acc, fmt.Errorf("state root of %s at %d: %w", dbDir, v, err)
	}
	acc, err = db.AccumulatorRoot(ctx, v)
	if err != nil {
		return state, acc, fmt.Errorf("accumulator root of %s at %d: %w", dbDir, v, err)
	}
	return r.RootHash(), acc, nil
}

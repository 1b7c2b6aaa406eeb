// Package quickstart runs the whole ledgervault cycle on local disk: it initialises a
// development node, lets it commit versions across several epochs, backs up epoch
// endings, a state snapshot and transactions, restores a fresh database from the
// backups alone (trusting only the genesis waypoint), verifies every backup and
// compares the restored roots with the node's.
package quickstart

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledgerdb"
	"github.com/ledgervault/ledgervault/node"
	"github.com/ledgervault/ledgervault/restore"
	"github.com/ledgervault/ledgervault/storage"
	"github.com/ledgervault/ledgervault/storage/local"
)

// Options shapes a quickstart run. The zero value takes the defaults.
type Options struct {
	// Dir receives the node (Dir/node), the backups (Dir/backups) and the restored
	// database (Dir/restored). It must be absent or empty.
	Dir string
	// Versions is how many versions (0 to Versions-1) the node commits before the
	// backups (default 20,000).
	Versions uint64
	// EpochLength is the number of versions per epoch (default 2,500).
	EpochLength uint64
	// InitialAccounts is the number of accounts created right after genesis, so that
	// the state snapshot has some size (default 50,000).
	InitialAccounts uint64
	// TransactionBatch is the number of versions per transaction backup (default 10,000).
	TransactionBatch uint64
	// MaxChunkSize caps the raw size of backup chunks (default 1 MiB, so that even a
	// small devnet produces several chunks per backup).
	MaxChunkSize int64
	// Logger receives progress (default: discard).
	Logger *slog.Logger
	// Step, if set, is told as each step starts.
	Step func(name string)
}

func (o *Options) defaults() {
	if o.Versions == 0 {
		o.Versions = 20_000
	}
	if o.EpochLength == 0 {
		o.EpochLength = 2_500
	}
	if o.InitialAccounts == 0 {
		o.InitialAccounts = 50_000
	}
	if o.TransactionBatch == 0 {
		o.TransactionBatch = 10_000
	}
	if o.MaxChunkSize == 0 {
		o.MaxChunkSize = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Step == nil {
		o.Step = func(string) {}
	}
}

// BackupLine describes one backup the quickstart made.
type BackupLine struct {
	// Type is the backup type (manifest.TypeEpochEnding, ...).
	Type string
	// Range says what it covers, in words.
	Range string
	// Items, RawBytes, StoredBytes and Files are the backup's counters.
	Items, RawBytes, StoredBytes, Files int64
	// Elapsed is the backup's wall time.
	Elapsed time.Duration
}

// Summary is what a quickstart run did and found.
type Summary struct {
	// Dir is the working directory; NodeDir, BackupDir and RestoreDir are inside it.
	Dir, NodeDir, BackupDir, RestoreDir string
	// Waypoint is the genesis waypoint the restore trusted.
	Waypoint ledger.Waypoint
	// NodeVersion is the last version the node committed; Epochs the epochs it ended.
	NodeVersion uint64
	Epochs      uint64
	// Backups lists the backups made.
	Backups []BackupLine
	// Restore is the restore's result.
	Restore *restore.Result
	// RestoreElapsed is the restore's wall time.
	RestoreElapsed time.Duration
	// Verify is the verify report of all backups.
	Verify *restore.Report
	// VerifyElapsed is verify's wall time.
	VerifyElapsed time.Duration
	// NodeStateRoot and NodeAccumulatorRoot are the node's roots at the restored version.
	NodeStateRoot, NodeAccumulatorRoot ledger.Hash
	// RootsEqual reports whether the restored database's roots equal the node's.
	RootsEqual bool
}

// Run performs the whole cycle. It returns an error if any step fails or if the
// restored roots differ from the node's.
func Run(ctx context.Context, o Options) (*Summary, error) {
	o.defaults()
	if o.Dir == "" {
		return nil, errors.New("quickstart: no directory")
	}
	if o.Versions <= o.EpochLength {
		return nil, fmt.Errorf("quickstart: %d versions do not end an epoch of %d versions; commit more", o.Versions, o.EpochLength)
	}
	if err := checkEmpty(o.Dir); err != nil {
		return nil, err
	}
	s := &Summary{Dir: o.Dir, NodeDir: filepath.Join(o.Dir, "node"), BackupDir: filepath.Join(o.Dir, "backups"), RestoreDir: filepath.Join(o.Dir, "restored")}

	o.Step("init devnet")
	init, err := node.Init(ctx, s.NodeDir, node.InitOptions{
		Config:          node.Config{EpochLength: o.EpochLength, LargeValueEvery: 500},
		InitialAccounts: o.InitialAccounts,
		Logger:          o.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("quickstart: %w", err)
	}
	s.Waypoint = init.Waypoint

	if err := os.MkdirAll(s.BackupDir, 0o755); err != nil {
		return nil, fmt.Errorf("quickstart: %w", err)
	}
	st, err := local.New(s.BackupDir)
	if err != nil {
		return nil, fmt.Errorf("quickstart: open backup storage: %w", err)
	}
	defer st.Close()

	if err := runNodeAndBackUp(ctx, s, st, o); err != nil {
		return nil, err
	}

	o.Step("restore")
	t0 := time.Now()
	res, err := restore.Run(ctx, st, restore.Options{
		Latest:    true,
		DBDir:     s.RestoreDir,
		Waypoints: []ledger.Waypoint{s.Waypoint},
		Logger:    o.Logger,
	})
	s.RestoreElapsed = time.Since(t0)
	if err != nil {
		return s, fmt.Errorf("quickstart: restore: %w", err)
	}
	s.Restore = res

	o.Step("verify")
	t0 = time.Now()
	rep, err := restore.Verify(ctx, st, restore.VerifyOptions{Waypoints: []ledger.Waypoint{s.Waypoint}, Logger: o.Logger})
	s.VerifyElapsed = time.Since(t0)
	s.Verify = rep
	if err != nil {
		return s, fmt.Errorf("quickstart: verify: %w", err)
	}
	if !rep.OK {
		return s, errors.New("quickstart: verify found failures")
	}

	o.Step("compare roots")
	if err := compareRoots(ctx, s); err != nil {
		return s, err
	}
	if !s.RootsEqual {
		return s, fmt.Errorf("quickstart: restored roots at version %d differ from the node's", res.TargetVersion)
	}
	return s, nil
}

func checkEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("quickstart: %w", err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("quickstart: %s is not empty; choose another --dir or remove it", dir)
	}
	return nil
}

// runNodeAndBackUp runs the node in process until it has committed o.Versions,
// then backs up from its backup service while it keeps serving, and stops it.
func runNodeAndBackUp(ctx context.Context, s *Summary, st storage.Store, o Options) (err error) {
	// A node that fails cancels nodeCtx with its error as the cause, so that the steps
	// it cuts short report why rather than a bare "context canceled".
	nodeCtx, stopNode := context.WithCancelCause(ctx)
	listening := make(chan string, 1)
	var wg sync.WaitGroup
	var nodeErr error
	wg.Add(1)
	go func() {
		defer wg.Done()
		nodeErr = node.Run(nodeCtx, s.NodeDir, node.RunOptions{
			BackupServiceAddress: "127.0.0.1:0",
			UntilVersion:         o.Versions - 1,
			Logger:               o.Logger,
			OnListening:          func(bs, _ string) { listening <- bs },
		})
		stopNode(nodeErr)
	}()
	defer func() {
		stopNode(nil)
		wg.Wait()
		if nodeErr != nil && !errors.Is(err, nodeErr) {
			err = errors.Join(err, fmt.Errorf("quickstart: node: %w", nodeErr))
		}
	}()

	o.Step("run node")
	var addr string
	select {
	case addr = <-listening:
	case <-nodeCtx.Done():
		return fmt.Errorf("quickstart: node stopped before serving: %w", context.Cause(nodeCtx))
	}
	svc, err := backupservice.New(addr, backupservice.ClientOptions{})
	if err != nil {
		return fmt.Errorf("quickstart: %w", err)
	}
	defer svc.Close()
	ds, err := waitForVersion(nodeCtx, svc, o.Versions-1)
	if err != nil {
		return err
	}
	s.NodeVersion = *ds.CommittedVersion
	s.Epochs = ds.Epoch // epochs 0 .. Epoch-1 have ended

	bo := backup.Options{MaxChunkSize: o.MaxChunkSize, Logger: o.Logger}
	add := func(what, rng string, r *backup.Result, err error) error {
		if err != nil {
			return fmt.Errorf("quickstart: %s backup: %w", what, err)
		}
		st := r.Stats
		s.Backups = append(s.Backups, BackupLine{Type: r.Metadata.Type, Range: rng, Items: st.Items, RawBytes: st.RawBytes,
			StoredBytes: st.StoredBytes, Files: st.Files, Elapsed: r.Elapsed})
		return nil
	}
	o.Step("back up epoch endings")
	r, err := backup.EpochEnding(nodeCtx, svc, st, 0, s.Epochs, bo)
	if err := add("epoch ending", fmt.Sprintf("epochs 0-%d", s.Epochs-1), r, err); err != nil {
		return err
	}
	o.Step("back up a state snapshot")
	snap, err := backup.EpochEndVersion(nodeCtx, svc, s.Epochs-1)
	if err != nil {
		return fmt.Errorf("quickstart: %w", err)
	}
	r, err = backup.StateSnapshot(nodeCtx, svc, st, snap, bo)
	if err := add("state snapshot", fmt.Sprintf("version %d", snap), r, err); err != nil {
		return err
	}
	o.Step("back up transactions")
	for first := uint64(0); first <= s.NodeVersion; first += o.TransactionBatch {
		n := min(o.TransactionBatch, s.NodeVersion-first+1)
		r, err = backup.Transactions(nodeCtx, svc, st, first, n, bo)
		if err := add("transaction", fmt.Sprintf("versions %d-%d", first, first+n-1), r, err); err != nil {
			return err
		}
	}
	return nil
}

// waitForVersion polls the node until it has committed version v.
func waitForVersion(ctx context.Context, svc *backupservice.Client, v uint64) (proof.DBState, error) {
	t := time.NewTicker(100 * time.Millisecond)
	defer t.Stop()
	for {
		ds, err := svc.DBState(ctx)
		if err != nil {
			return ds, fmt.Errorf("quickstart: node state: %w", err)
		}
		if ds.CommittedVersion != nil && *ds.CommittedVersion >= v {
			return ds, nil
		}
		select {
		case <-ctx.Done():
			return ds, fmt.Errorf("quickstart: waiting for version %d: %w", v, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// compareRoots opens the node's store and the restored one and compares their
// roots at the restored version.
func compareRoots(ctx context.Context, s *Summary) error {
	v := s.Restore.TargetVersion
	nr, na, err := storeRoots(ctx, "node", filepath.Join(s.NodeDir, node.DBDir), v)
	if err != nil {
		return err
	}
	s.NodeStateRoot, s.NodeAccumulatorRoot = nr, na
	rr, ra, err := storeRoots(ctx, "restored", s.RestoreDir, v)
	if err != nil {
		return err
	}
	s.RootsEqual = rr == nr && ra == na
	return nil
}

// storeRoots returns the state root and accumulator root at v of the store in dir,
// which it opens read-only; what names the store in errors.
func storeRoots(ctx context.Context, what, dir string, v uint64) (state, acc ledger.Hash, err error) {
	db, err := ledgerdb.Open(ctx, dir, ledgerdb.Options{ReadOnly: true})
	if err != nil {
		return state, acc, fmt.Errorf("quickstart: open %s store: %w", what, err)
	}
	defer db.Close()
	r, err := db.StateRoot(ctx, v)
	if err != nil {
		return state, acc, fmt.Errorf("quickstart: %s state root at %d: %w", what, v, err)
	}
	if acc, err = db.AccumulatorRoot(ctx, v); err != nil {
		return state, acc, fmt.Errorf("quickstart: %s accumulator root at %d: %w", what, v, err)
	}
	return r.RootHash(), acc, nil
}

// Package ledgerdb is the ledger's store on Pebble: it commits blocks of transactions
// atomically, keeps every version (an archive node), serves the ordered range reads and
// proofs that backups need, and takes the writes of a restore (state snapshot leaves
// ingested as SSTables, transactions saved without re-execution) with recorded progress.
//
// # Layout
//
// Every key starts with a table byte; numbers are big-endian so byte order is numeric:
//
//	0x01 meta           name → store state (JSON), restore progress
//	0x02 transactions   version → 0x01 ‖ TransactionWithOutput, its values left out (txnrecord.go)
//	0x04 accumulator    level ‖ index → hash of a perfect subtree (RFC 6962)
//	0x05 state values   SHA-256(key) ‖ ^version → flag ‖ uvarint(len key) ‖ key ‖ value
//	0x06 tree nodes     smt.NodeKey (version ‖ path ‖ depth) → smt.Node
//	0x07 state roots    version → smt.RootRef
//	0x08 epoch endings  epoch → LedgerInfoWithSignatures that ended it
//	0x09 ledger infos   version → LedgerInfoWithSignatures of the block ending there
//
// State values sort newest first within a key hash, so a seek to (keyHash, ^V) lands on
// the value at version V, and a scan in key-hash order yields the state at any version.
//
// # Writes
//
// A node commits with PrepareBlock (computes state roots, transaction infos and the
// accumulator root without writing) and CommitBlock (checks the block's signed ledger
// info against the current epoch's validators and writes everything in one synced
// batch). A restore writes with StartStateRestore/AddChunk/Finish (chunks verified by
// the smt Builder, values and nodes ingested as SSTables, progress recorded after every
// chunk so that a killed restore resumes), SeedAccumulator (the frontier from a verified
// range proof) and SaveTransactions (write sets applied, every state root checked
// against the transaction's info).
package ledgerdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"sync"
	"syscall"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
)

// ErrNotFound reports that a version, epoch or ledger info is not in the store.
var ErrNotFound = errors.New("not found in ledger store")

// Options configures a store.
type Options struct {
	// Logger receives Pebble's log messages (at debug and error levels). Nil discards them.
	Logger *slog.Logger
	// CacheSize is Pebble's block cache size in bytes (default 256 MiB).
	CacheSize int64
	// ReadOnly opens the store without writing to it.
	ReadOnly bool
	// NodeCacheSize is the most decoded state-tree nodes kept in memory (default
	// 131072, 232 bytes each, about 29 MiB, allocated as used). The cache keeps the
	// tree's upper levels (see nodeCache), so twice as many changed neither node init
	// nor transaction restore at 2M accounts.
	NodeCacheSize int
}

// DB is an open ledger store. Its methods are safe for concurrent use; commits are
// serialised.
type DB struct {
	pdb   *pebble.DB
	popts *pebble.Options
	dir   string
	log   *slog.Logger

	nodes *nodeCache

	mu    sync.RWMutex // guards st and acc
	st    dbState
	acc   *accumulator.Builder
	write sync.Mutex // serialises commits and restore writes
}

// dbState is the persisted summary of what the store holds, rewritten in the same batch
// as every commit.
type dbState struct {
	// NextVersion is the number of versions committed: every version below it has a
	// state root and a transaction info (for restored stores: from FirstTxnVersion on).
	NextVersion uint64 `json:"next_version"`
	// FirstTxnVersion is the first version whose transaction is stored (0 for a node
	// that committed from genesis; S+1 for a store restored from a snapshot at S).
	FirstTxnVersion uint64 `json:"first_txn_version"`
	// HasStateBase is set when the store was restored from a state snapshot at
	// StateBaseVersion (no transactions at or before it).
	HasStateBase     bool   `json:"has_state_base,omitempty"`
	StateBaseVersion uint64 `json:"state_base_version,omitempty"`
	// LatestLedgerInfoVersion is the version of the newest stored ledger info.
	HasLedgerInfo           bool   `json:"has_ledger_info,omitempty"`
	LatestLedgerInfoVersion uint64 `json:"latest_ledger_info_version,omitempty"`
	// LatestEpoch is the epoch of the newest stored ledger info.
	LatestEpoch uint64 `json:"latest_epoch"`
	// AccumulatorMissing is set between a state snapshot restore and SeedAccumulator:
	// the store has no accumulator frontier yet.
	AccumulatorMissing bool `json:"accumulator_missing,omitempty"`
	// NodeLayout is the layout of the state tree's nodes (nodeLayout); 0 in stores
	// written before layouts had a number.
	NodeLayout int `json:"node_layout,omitempty"`
}

// nodeLayout is the layout this code writes: committed versions store their tree nodes
// in groups of four levels (tableSMTGroup), a restored snapshot's version in groups too
// (tableSMTRestoredGroup) but for the nodes on its chunks' edges, one per record
// (tableSMTNode); groups are in the compact encoding (smt groupcodec.go), and
// transaction records reference their write sets' values in tableStateValue instead of
// holding them (txnRecordByRef). Layout 3 wrote groups in the plain encoding and held
// the values in the transaction records, layout 2 besides stored every restored node
// alone; both read the same (a group starts with its encoding's marker, a record without
// the tag is a whole transaction, a group not found is looked for alone), and a store of
// either takes new commits in this layout. Layout 0 stored every node alone. The number
// is raised with every change an older release would misread, so that the older release
// refuses the store instead.
const nodeLayout = 4

// ErrStoreLayout is wrapped by Open when the store's tree nodes are laid out in a way
// this version does not read.
var ErrStoreLayout = errors.New("unsupported store layout")

// checkLayout refuses a store whose committed versions use a node layout this code does
// not read (0, or one of a later release). A layout-0 store that holds only a restored
// snapshot (or nothing) reads the same in every layout.
func checkLayout(st dbState) error {
	if st.NodeLayout == nodeLayout || st.NodeLayout == 3 || st.NodeLayout == 2 {
		return nil
	}
	if st.NodeLayout == 0 && (st.NextVersion == 0 || (st.HasStateBase && st.NextVersion == st.StateBaseVersion+1)) {
		return nil
	}
	return fmt.Errorf("%w: it uses store layout %d and this ledgervault reads layouts 2 to %d "+
		"(tree nodes in groups of four levels); restore it again into an empty directory "+
		"with this version (ledgervault restore), or use the ledgervault release that wrote it", ErrStoreLayout, st.NodeLayout, nodeLayout)
}

const metaState = "state"

// Open opens (or creates) the store in dir.
func Open(ctx context.Context, dir string, o Options) (*DB, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cacheSize := o.CacheSize
	if cacheSize <= 0 {
		cacheSize = 256 << 20
	}
	cache := pebble.NewCache(cacheSize)
	defer cache.Unref()
	popts := &pebble.Options{
		Cache:                       cache,
		Logger:                      pebbleLogger{log},
		ReadOnly:                    o.ReadOnly,
		MemTableSize:                64 << 20,
		MemTableStopWritesThreshold: 4,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       32,
		FormatMajorVersion:          pebble.FormatNewest,
		// Obsolete WAL files are deleted, not kept for reuse (see logDeletingCleaner).
		Cleaner: logDeletingCleaner{},
	}
	// Tree nodes and state values are read by exact key: bloom filters let a point read
	// skip every table that does not hold the key.
	for i := range popts.Levels {
		popts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		popts.Levels[i].Compression = storeCompression
	}
	popts.EnsureDefaults()
	pdb, err := pebble.Open(dir, popts)
	if err != nil {
		if isLockConflict(err) {
			err = ErrLocked
		}
		return nil, fmt.Errorf("open ledger store %s: %w", dir, err)
	}
	nodeCacheSize := o.NodeCacheSize
	if nodeCacheSize <= 0 {
		nodeCacheSize = 1 << 17
	}
	d := &DB{pdb: pdb, popts: popts, dir: dir, log: log, nodes: newNodeCache(nodeCacheSize)}
	if err := d.load(ctx); err != nil {
		_ = pdb.Close()
		return nil, fmt.Errorf("open ledger store %s: %w", dir, err)
	}
	return d, nil
}

// ErrLocked is the error of Open when another process has the store open (Pebble
// holds an exclusive lock on the directory's LOCK file while it is open).
var ErrLocked = errors.New("the store is locked by another process (a node or restore using this directory is still running)")

// isLockConflict reports whether err is Pebble's failure to take the directory lock
// because another process holds it: fcntl(F_SETLK) answers EAGAIN or EACCES, returned
// bare. An EACCES while creating the LOCK file comes as an *fs.PathError and is a
// permission problem, not a lock conflict.
func isLockConflict(err error) bool {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return false
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EACCES)
}

// load reads the persisted state and rebuilds the in-memory accumulator frontier.
func (d *DB) load(ctx context.Context) error {
	b, closer, err := d.pdb.Get(metaKey(metaState))
	switch {
	case errors.Is(err, pebble.ErrNotFound):
		d.st = dbState{}
	case err != nil:
		return fmt.Errorf("read store state: %w", err)
	default:
		err = json.Unmarshal(b, &d.st)
		_ = closer.Close()
		if err != nil {
			return fmt.Errorf("decode store state: %w", err)
		}
		if err := checkLayout(d.st); err != nil {
			return err
		}
	}
	if d.st.AccumulatorMissing {
		d.acc = nil
		return nil
	}
	size := d.st.NextVersion
	ids := accumulator.FrontierIDs(size)
	frontier := make([]ledger.Hash, len(ids))
	for i, id := range ids {
		h, err := d.accNode(ctx, id)
		if err != nil {
			return fmt.Errorf("load accumulator frontier at size %d: %w", size, err)
		}
		frontier[i] = h
	}
	acc, err := accumulator.NewBuilderFromFrontier(size, frontier)
	if err != nil {
		return err
	}
	d.acc = acc
	return nil
}

// Close closes the store. A writable store first flushes its memtables, so that the
// directory holds no write-ahead log to replay on the next open (after a bulk load,
// hundreds of megabytes of it).
func (d *DB) Close() error {
	if !d.popts.ReadOnly {
		if err := d.pdb.Flush(); err != nil {
			_ = d.pdb.Close()
			return fmt.Errorf("close ledger store %s: flush: %w", d.dir, err)
		}
	}
	if err := d.pdb.Close(); err != nil {
		return fmt.Errorf("close ledger store %s: %w", d.dir, err)
	}
	return nil
}

// Dir returns the store's directory.
func (d *DB) Dir() string { return d.dir }

func (d *DB) state() dbState {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return d.st
}

func putState(b *pebble.Batch, st dbState) error {
	st.NodeLayout = nodeLayout
	v, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode store state: %w", err)
	}
	return b.Set(metaKey(metaState), v, nil)
}

// get copies the value of k, or returns ErrNotFound.
func (d *DB) get(k []byte) ([]byte, error) {
	v, closer, err := d.pdb.Get(k)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), v...)
	_ = closer.Close()
	return out, nil
}

// accNode reads an accumulator node.
func (d *DB) accNode(ctx context.Context, id accumulator.NodeID) (ledger.Hash, error) {
	if err := ctx.Err(); err != nil {
		return ledger.Hash{}, err
	}
	v, err := d.get(accNodeKey(id.Level, id.Index))
	if err != nil {
		return ledger.Hash{}, fmt.Errorf("accumulator node %s: %w", id, err)
	}
	return ledger.HashFromBytes(v)
}

// GetMeta reads a named value recorded with SetMeta (for example restore progress).
func (d *DB) GetMeta(ctx context.Context, name string) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, err := d.get(metaKey("x/" + name))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", name, err)
	}
	return v, nil
}

// SetMeta durably records a named value.
func (d *DB) SetMeta(ctx context.Context, name string, value []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := d.pdb.Set(metaKey("x/"+name), value, pebble.Sync); err != nil {
		return fmt.Errorf("record %s: %w", name, err)
	}
	return nil
}

// compression is the store's block compression: Snappy, as Pebble's default, but a
// block is stored compressed when that saves at least 5% instead of 12%. Tree node
// groups are hashes but for their keys, whose paths end in zero bytes (a group key is
// version ‖ 32-byte path ‖ depth and its path holds at most a few bytes of the key
// hash): their blocks compress by 5-12%, which the default threshold throws away. At 2M
// accounts after 20k transactions the store takes 696 instead of 768 MB, with node init
// and commits as fast (`node init --initial-accounts 2000000`: 14.7 s against 17.4;
// `node run --until-version 22000` after it: 3.0 s against 4.2, single runs).
var compression = func() *sstable.CompressionProfile {
	p := *sstable.SnappyCompression
	p.Name = "Snappy5"
	p.MinReductionPercent = 5
	return &p
}()

func storeCompression() *sstable.CompressionProfile { return compression }

// logDeletingCleaner deletes obsolete files as Pebble's DeleteCleaner does, and also
// keeps Pebble from recycling WAL files. By default Pebble keeps up to
// MemTableStopWritesThreshold+1 obsolete logs to write the next ones over: each as large as
// the batches it held (a bulk commit of `node init` writes one of 60 MB), and all of them
// left in the directory after a clean close, where they are the store's disk usage and
// what an operator's file-level backup of it copies (72 MB of a 349 MB node store at 500k
// accounts, 80 of 903 at 2M). Pebble does not recycle when the cleaner needs the files'
// contents (obsolete_files.go: base.NeedsFileContents, an interface of one unexported
// method); ArchiveCleaner has that marker, and embedding it one level deeper than
// DeleteCleaner promotes the marker while DeleteCleaner's Clean and String take
// precedence. A node's commit rate was the same either way (node run of 22k versions
// after node init of 500k accounts: 2.97-3.61 s recycling, 3.07 s not);
// TestNoObsoleteLogsAfterClose fails if a Pebble upgrade recycles again.
type logDeletingCleaner struct {
	pebble.DeleteCleaner
	archiveMarker
}

type archiveMarker struct{ pebble.ArchiveCleaner }

// pebbleLogger routes Pebble's messages to slog.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble")
}

func (p pebbleLogger) Fatalf(format string, args ...any) {
	// Pebble calls Fatalf only for unrecoverable corruption; it panics afterwards itself.
	p.l.Error(fmt.Sprintf(format, args...), "component", "pebble", "fatal", true)
	panic(fmt.Sprintf(format, args...))
}

package ledgerdb

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// SaveLedgerInfos stores signed ledger infos that a restore has already verified
// (epoch endings, and the ledger infos that transaction chunks are proven against).
func (d *DB) SaveLedgerInfos(ctx context.Context, lis []ledger.LedgerInfoWithSignatures) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.write.Lock()
	defer d.write.Unlock()
	b := d.pdb.NewBatch()
	defer b.Close()
	next := d.state()
	for i := range lis {
		if err := putLedgerInfo(b, &lis[i], &next); err != nil {
			return err
		}
	}
	if err := putState(b, next); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("save %d ledger infos: %w", len(lis), err)
	}
	d.mu.Lock()
	d.st = next
	d.mu.Unlock()
	return nil
}

// StateRecord is one state item of a snapshot chunk.
type StateRecord struct {
	Key   []byte
	Value []byte
}

// stateRestoreProgress is recorded after every chunk so that a killed restore resumes.
// (Records of earlier versions also hold the largest node key written, which is no
// longer needed: every chunk's own nodes sort after everything written before it.)
type stateRestoreProgress struct {
	Version    uint64      `json:"version"`
	Root       ledger.Hash `json:"root"`
	NextChunk  int         `json:"next_chunk"`
	Checkpoint []byte      `json:"checkpoint"`
}

const metaStateRestore = "state-restore"

// StateRestore rebuilds the state at one version from snapshot chunks, verifying each
// chunk against the expected root with its range proof, and loading values and tree
// nodes as SSTables (Pebble ingestion). It records progress after every chunk.
//
// Chunks are prepared concurrently (NewChunk: each chunk's values and the nodes of its
// own subtrees, hashed and written into two tables) and added in order (AddPrepared:
// the seam with the chunk before is folded, the range proof verified, and only then are
// the tables ingested). A chunk's own nodes sort after every node of the leaves before
// it, and its values after theirs, so each chunk's two tables land in the bottom level
// without overlapping anything and without compactions. The exception are the few
// nodes that hold leaves of earlier chunks too (folded by AddPrepared) and the
// ancestors of a chunk's nodes that complete after the builder handed those out: they
// sort before nodes already loaded and are written with the chunk's progress record in
// one synced batch.
type StateRestore struct {
	d       *DB
	version uint64
	root    ledger.Hash
	b       *smt.Builder
	next    int
	tmpDir  string
	nodeKey []byte
}

// StartStateRestore starts (or resumes, if an interrupted restore of the same version
// and root is recorded) restoring the state at version with the given root.
func (d *DB) StartStateRestore(ctx context.Context, version uint64, root ledger.Hash) (*StateRestore, error) {
	st := d.state()
	if st.NextVersion != 0 || st.HasStateBase {
		return nil, fmt.Errorf("start state restore at %d: store is not empty (next version %d)", version, st.NextVersion)
	}
	r := &StateRestore{d: d, version: version, root: root, tmpDir: filepath.Join(d.dir, "ingest-tmp")}
	raw, err := d.GetMeta(ctx, metaStateRestore)
	switch {
	case errors.Is(err, ErrNotFound):
		r.b = smt.NewBuilder(root, version)
	case err != nil:
		return nil, err
	default:
		var p stateRestoreProgress
		if err := json.Unmarshal(raw, &p); err != nil {
			return nil, fmt.Errorf("start state restore: decode recorded progress: %w", err)
		}
		if p.Version != version || p.Root != root {
			return nil, fmt.Errorf("start state restore at %d root %s: store holds an interrupted restore of version %d root %s",
				version, root.Short(), p.Version, p.Root.Short())
		}
		b, err := smt.ResumeBuilder(root, version, p.Checkpoint)
		if err != nil {
			return nil, fmt.Errorf("start state restore: resume: %w", err)
		}
		r.b, r.next = b, p.NextChunk
	}
	if err := os.RemoveAll(r.tmpDir); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(r.tmpDir, 0o755); err != nil {
		return nil, err
	}
	return r, nil
}

// NextChunk returns the index of the next chunk to add: 0 for a fresh restore, more
// for a resumed one.
func (r *StateRestore) NextChunk() int { return r.next }

// LeafCount returns the number of items restored so far.
func (r *StateRestore) LeafCount() uint64 { return r.b.LeafCount() }

// LastKeyHash returns the key hash of the last item restored so far (false if none):
// the prev of the next chunk's NewChunk.
func (r *StateRestore) LastKeyHash() (ledger.Hash, bool) { return r.b.LastKeyHash() }

// RemoveTemp removes the tables of chunks prepared but neither added nor discarded
// (after an error, once no ChunkBuilder runs); a restarted restore removes them too.
func (r *StateRestore) RemoveTemp() {
	entries, _ := os.ReadDir(r.tmpDir)
	for _, e := range entries {
		_ = os.Remove(filepath.Join(r.tmpDir, e.Name()))
	}
}

// AddChunk verifies and loads the next chunk: records sorted by key hash, continuing
// after everything added before, with the range proof of its last record. It is
// NewChunk, Add and Finish, then AddPrepared.
func (r *StateRestore) AddChunk(ctx context.Context, recs []StateRecord, proof smt.RangeProof) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var prev *ledger.Hash
	if h, ok := r.b.LastKeyHash(); ok {
		prev = &h
	}
	c, err := r.NewChunk(prev)
	if err != nil {
		return fmt.Errorf("state chunk %d: %w", r.next, err)
	}
	defer c.Abort()
	for i := range recs {
		if err := c.Add(recs[i].Key, recs[i].Value); err != nil {
			return fmt.Errorf("state chunk %d: record %d: %w", r.next, i, err)
		}
	}
	p, err := c.Finish()
	if err != nil {
		return fmt.Errorf("state chunk %d: %w", r.next, err)
	}
	return r.AddPrepared(ctx, p, proof)
}

// ChunkBuilder prepares one chunk of a StateRestore from its records, added in order:
// it hashes them and writes the values into a temporary table while a second goroutine
// builds the chunk's own subtrees (smt.SegmentBuilder) from the leaves, handed over in
// batches, and writes those nodes into another; AddPrepared ingests both once the chunk
// is verified. Distinct ChunkBuilders of one StateRestore may run concurrently with each
// other and with AddPrepared; one is not safe for concurrent use. Finish or Abort
// (always deferred) ends its goroutine.
type ChunkBuilder struct {
	r       *StateRestore
	values  *sstable.Writer
	path    string
	valKey  []byte
	valBuf  []byte
	batch   []smt.Leaf
	lastKey ledger.Hash
	count   uint64
	full    chan []smt.Leaf // to the tree goroutine; closed at the end
	free    chan []smt.Leaf
	result  chan treeResult
	failed  atomic.Bool // the tree goroutine failed: stop sending
	done    bool
	tree    treeBuilder // owned by the tree goroutine
}

// treeBuilder is the tree goroutine's part of a ChunkBuilder. It receives the chunk's
// own nodes in post-order (smt.NewSegmentBuilderPostOrder) and writes each node group
// when its root completes (smt.PostOrderGrouper), under its post-order key: the
// table's keys grow as the groups complete, as the table requires. A group whose root
// also holds leaves of other chunks (the few on the chunk's edges) is still open when
// the chunk ends: its nodes here are stored one per record instead, through late.
type treeBuilder struct {
	r      *StateRestore
	sb     *smt.SegmentBuilder
	groups smt.PostOrderGrouper
	nodes  *sstable.Writer
	path   string
	key    []byte
	// late holds the nodes stored one per record, for the batch: entries of key
	// (1+NodeKeySize bytes) then value, ending at lateEnds.
	late     []byte
	lateEnds []int
}

type treeResult struct {
	seg *smt.Segment
	err error
}

// Leaves handed to the tree goroutine at a time, and the batches in flight.
const (
	chunkBatch   = 2048
	chunkBatches = 3
)

// NewChunk starts preparing the chunk whose first record follows the record with key
// hash prev (nil for the first chunk of the snapshot). AddPrepared refuses the chunk if
// prev is not the key hash of the last record added before it.
func (r *StateRestore) NewChunk(prev *ledger.Hash) (*ChunkBuilder, error) {
	c := &ChunkBuilder{r: r, full: make(chan []smt.Leaf, chunkBatches), free: make(chan []smt.Leaf, chunkBatches),
		result: make(chan treeResult, 1), tree: treeBuilder{r: r}}
	c.tree.sb = smt.NewSegmentBuilderPostOrder(r.version, prev, c.tree.node)
	for range chunkBatches - 1 {
		c.free <- make([]smt.Leaf, 0, chunkBatch)
	}
	c.batch = make([]smt.Leaf, 0, chunkBatch)
	go c.buildTree()
	return c, nil
}

// buildTree adds the leaves it receives to the segment until full is closed.
func (c *ChunkBuilder) buildTree() {
	t := &c.tree
	var err error
	for batch := range c.full {
		for i := 0; err == nil && i < len(batch); i++ {
			err = t.sb.Add(batch[i])
		}
		if err != nil {
			c.failed.Store(true)
		}
		c.free <- batch[:0]
	}
	var seg *smt.Segment
	if err == nil {
		seg, err = t.sb.Finish()
	}
	if err == nil {
		err = t.closeOpen()
	}
	if err == nil && t.nodes != nil {
		err = t.nodes.Close()
		t.nodes = nil
		if err != nil {
			err = fmt.Errorf("close sstable: %w", err)
		}
	}
	if err != nil {
		t.discard()
	}
	c.result <- treeResult{seg, err}
}

// node receives the chunk's own nodes from the segment builder, in post-order.
func (t *treeBuilder) node(w *smt.NodeWrite) error {
	g, enc, ok, err := t.groups.Add(w)
	if err != nil || !ok {
		return err
	}
	if t.nodes == nil {
		// Node hashes do not compress: the table is written uncompressed.
		if t.path, t.nodes, err = t.r.d.createSST(t.r.tmpDir, sstable.NoCompression); err != nil {
			return err
		}
	}
	// The table refuses a key that does not follow the one before.
	t.key = restoredGroupKey(t.key, g)
	if err := t.nodes.Set(t.key, enc); err != nil {
		return fmt.Errorf("write smt node group %s: %w", g, err)
	}
	return nil
}

// closeOpen moves the nodes of the groups still open at the end of the chunk (their
// roots hold leaves of other chunks too) to late, one per record.
func (t *treeBuilder) closeOpen() error {
	return t.groups.Rest(func(k smt.NodeKey, enc []byte) error {
		t.late = append(t.late, tableSMTNode)
		t.late, _ = k.AppendBinary(t.late)
		t.late = append(t.late, enc...)
		t.lateEnds = append(t.lateEnds, len(t.late))
		return nil
	})
}

func (t *treeBuilder) discard() {
	if t.nodes != nil {
		_ = t.nodes.Close()
		t.nodes = nil
	}
	if t.path != "" {
		_ = os.Remove(t.path)
		t.path = ""
	}
}

// Add appends the next record of the chunk; records are in strictly increasing order of
// their keys' hashes, after prev.
func (c *ChunkBuilder) Add(key, value []byte) error {
	if c.done {
		return errors.New("state chunk: already finished")
	}
	kh := smt.KeyHash(key)
	// The tree goroutine checks the order too, later: check it before the values'
	// table refuses the record with a less telling error.
	if c.count > 0 && bytes.Compare(kh[:], c.lastKey[:]) <= 0 {
		return fmt.Errorf("record %d: key hash %s does not follow %s", c.count, kh.Short(), c.lastKey.Short())
	}
	c.lastKey = kh
	c.count++
	c.batch = append(c.batch, smt.Leaf{KeyHash: kh, ValueHash: smt.ValueHash(value)})
	if len(c.batch) == chunkBatch {
		if c.failed.Load() {
			return c.wait()
		}
		c.full <- c.batch
		c.batch = <-c.free
	}
	if c.values == nil {
		var err error
		if c.path, c.values, err = c.r.d.createSST(c.r.tmpDir, nil); err != nil {
			return err
		}
	}
	c.valKey = stateValueKey(c.valKey, (*[32]byte)(&kh), c.r.version)
	c.valBuf = appendStateValue(c.valBuf[:0], key, value, false)
	if err := c.values.Set(c.valKey, c.valBuf); err != nil {
		return fmt.Errorf("write state values: %w", err)
	}
	return nil
}

// wait ends the tree goroutine and returns its segment or error.
func (c *ChunkBuilder) wait() error {
	_, err := c.finishTree()
	if err == nil {
		err = errors.New("state chunk: tree builder stopped")
	}
	return err
}

// finishTree hands over the last leaves, ends the tree goroutine and returns its result.
func (c *ChunkBuilder) finishTree() (*smt.Segment, error) {
	if c.done {
		return nil, errors.New("state chunk: already finished")
	}
	c.done = true
	if len(c.batch) > 0 && !c.failed.Load() {
		c.full <- c.batch
	}
	c.batch = nil
	close(c.full)
	res := <-c.result
	return res.seg, res.err
}

// Finish completes the chunk's tables. The chunk needs at least one record.
func (c *ChunkBuilder) Finish() (*PreparedChunk, error) {
	seg, err := c.finishTree()
	if err != nil {
		c.discardValues()
		return nil, err
	}
	t := &c.tree
	p := &PreparedChunk{seg: seg, late: t.late, lateEnds: t.lateEnds}
	if t.path != "" {
		p.paths = append(p.paths, t.path)
		t.path = ""
	}
	if c.values != nil {
		err := c.values.Close()
		c.values = nil
		p.paths = append(p.paths, c.path)
		c.path = ""
		if err != nil {
			p.Discard()
			return nil, fmt.Errorf("close sstable: %w", err)
		}
	}
	return p, nil
}

// Abort discards the chunk's tables and ends its goroutine; it is a no-op after
// Finish.
func (c *ChunkBuilder) Abort() {
	if !c.done {
		if _, err := c.finishTree(); err == nil {
			c.tree.discard()
		}
	}
	c.discardValues()
}

func (c *ChunkBuilder) discardValues() {
	if c.values != nil {
		_ = c.values.Close()
		c.values = nil
	}
	if c.path != "" {
		_ = os.Remove(c.path)
		c.path = ""
	}
}

// PreparedChunk is a chunk prepared by a ChunkBuilder, waiting for AddPrepared.
type PreparedChunk struct {
	seg      *smt.Segment
	paths    []string // tables, not yet ingested
	late     []byte
	lateEnds []int
}

// Len returns the number of records of the chunk.
func (p *PreparedChunk) Len() uint64 { return p.seg.Len() }

// FirstKeyHash returns the key hash of the chunk's first record.
func (p *PreparedChunk) FirstKeyHash() ledger.Hash { return p.seg.FirstKeyHash() }

// LastKeyHash returns the key hash of the chunk's last record.
func (p *PreparedChunk) LastKeyHash() ledger.Hash { return p.seg.LastKeyHash() }

// Discard removes the chunk's tables if they were not ingested; it is safe to call
// twice.
func (p *PreparedChunk) Discard() {
	for _, path := range p.paths {
		_ = os.Remove(path)
	}
	p.paths = nil
}

// AddPrepared verifies and loads the next chunk, prepared by NewChunk with the key hash
// of the last record added before it: it folds the chunk into the tree, checks its
// range proof (the proof of its last record) and ingests its tables. A rejected chunk
// leaves the restore as it was. The chunk's tables are gone when it returns.
func (r *StateRestore) AddPrepared(ctx context.Context, p *PreparedChunk, proof smt.RangeProof) error {
	defer p.Discard()
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := r.addPrepared(ctx, p, proof); err != nil {
		return fmt.Errorf("state chunk %d: %w", r.next, err)
	}
	r.next++
	return nil
}

func (r *StateRestore) addPrepared(ctx context.Context, p *PreparedChunk, proof smt.RangeProof) error {
	batch := r.d.pdb.NewBatch()
	defer batch.Close()
	err := r.b.AddSegment(p.seg, proof, func(k, v []byte) error {
		r.nodeKey = append(append(r.nodeKey[:0], tableSMTNode), k...)
		return batch.Set(r.nodeKey, v, nil)
	})
	if err != nil {
		return err
	}
	const kl = 1 + smt.NodeKeySize
	start := 0
	for _, end := range p.lateEnds {
		e := p.late[start:end]
		if err := batch.Set(e[:kl], e[kl:], nil); err != nil {
			return err
		}
		start = end
	}
	if len(p.paths) > 0 {
		if err := r.d.pdb.Ingest(ctx, p.paths); err != nil {
			return fmt.Errorf("ingest: %w", err)
		}
		p.paths = nil // moved into the store
	}
	pr := stateRestoreProgress{Version: r.version, Root: r.root, NextChunk: r.next + 1, Checkpoint: r.b.Checkpoint()}
	raw, err := json.Marshal(pr)
	if err != nil {
		return err
	}
	if err := batch.Set(metaKey("x/"+metaStateRestore), raw, nil); err != nil {
		return err
	}
	if err := batch.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("record progress: %w", err)
	}
	return nil
}

// createSST creates a temporary SSTable in dir for ingestion and returns its path and
// writer; a non-nil compression profile overrides the store's.
func (d *DB) createSST(dir string, compression *sstable.CompressionProfile) (string, *sstable.Writer, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	path := filepath.Join(dir, hex.EncodeToString(rnd[:])+".sst")
	f, err := d.popts.FS.Create(path, "")
	if err != nil {
		return "", nil, fmt.Errorf("create sstable: %w", err)
	}
	wo := d.popts.MakeWriterOptions(0, d.pdb.TableFormat())
	if compression != nil {
		wo.Compression = compression
	}
	// Restored values are only read by seeks, which bloom filters do not serve, and every
	// node of the restored version is in these tables (or above them, in the ancestors
	// written by batch): a filter would only cost time and space.
	wo.FilterPolicy = pebble.NoFilterPolicy
	return path, sstable.NewWriter(objstorageprovider.NewFileWritable(f), wo), nil
}

// Finish checks that the restored tree has exactly the expected root, writes the last
// nodes and makes the store a state base at the version.
func (r *StateRestore) Finish(ctx context.Context) (smt.RootRef, error) {
	root, nodes, err := r.b.Finish()
	if err != nil {
		return smt.RootRef{}, fmt.Errorf("finish state restore at %d: %w", r.version, err)
	}
	d := r.d
	d.write.Lock()
	defer d.write.Unlock()
	b := d.pdb.NewBatch()
	defer b.Close()
	if err := putSingleNodes(b, nodes); err != nil {
		return smt.RootRef{}, err
	}
	rb, err := root.AppendBinary(nil)
	if err != nil {
		return smt.RootRef{}, err
	}
	if err := b.Set(versionKey(tableStateRoot, r.version), rb, nil); err != nil {
		return smt.RootRef{}, err
	}
	next := d.state()
	next.HasStateBase = true
	next.StateBaseVersion = r.version
	next.NextVersion = r.version + 1
	next.FirstTxnVersion = r.version + 1
	next.AccumulatorMissing = true
	if err := putState(b, next); err != nil {
		return smt.RootRef{}, err
	}
	if err := b.Delete(metaKey("x/"+metaStateRestore), nil); err != nil {
		return smt.RootRef{}, err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return smt.RootRef{}, fmt.Errorf("finish state restore at %d: %w", r.version, err)
	}
	d.mu.Lock()
	d.st = next
	d.acc = nil // seeded by SeedAccumulator from the first transaction chunk's proof
	d.mu.Unlock()
	_ = os.RemoveAll(r.tmpDir)
	return root, nil
}

// SeedAccumulator gives a store restored from a state snapshot the accumulator frontier
// at size leaves (the Left part of a verified range proof that starts at size), so that
// it can append the transactions that follow.
func (d *DB) SeedAccumulator(ctx context.Context, size uint64, frontier []ledger.Hash) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	d.write.Lock()
	defer d.write.Unlock()
	st := d.state()
	if st.NextVersion != size {
		return fmt.Errorf("seed accumulator at size %d: store is at version %d", size, st.NextVersion)
	}
	acc, err := accumulator.NewBuilderFromFrontier(size, frontier)
	if err != nil {
		return err
	}
	b := d.pdb.NewBatch()
	defer b.Close()
	for i, id := range accumulator.FrontierIDs(size) {
		if err := b.Set(accNodeKey(id.Level, id.Index), frontier[i][:], nil); err != nil {
			return err
		}
	}
	next := st
	next.AccumulatorMissing = false
	if err := putState(b, next); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("seed accumulator at size %d: %w", size, err)
	}
	d.mu.Lock()
	d.st = next
	d.acc = acc
	d.mu.Unlock()
	return nil
}

// stateChange is one write of a version's write set, with its key hash.
type stateChange struct {
	kh ledger.Hash
	v  uint64
	op *ledger.WriteOp
}

// txnSaveStep is the most transactions SaveTransactions applies and writes in one
// batch: it bounds the memory of the nodes in flight.
const txnSaveStep = 512

// SaveTransactions saves transactions that a restore has verified against the
// accumulator, starting at the store's next version, without re-executing them: it
// applies each write set to the state and requires the resulting state root to equal
// the one in the transaction's info (so a write set that does not match the signed
// history is rejected). They are applied in steps of txnSaveStep versions and written
// in groups of steps, each group atomic, the last one synced: when it returns without
// error all of them are durable, and a crash or error before leaves the store at the
// end of one of the groups (after an error in applying a step, at the end of the step
// before it).
//
// While one step is written, the next one is applied to the tree, reading the nodes
// of the steps not yet durable from the node cache, where they are pinned (not
// evicted) until they are.
//
// A group's tree nodes, transactions and state roots, most of what it writes, are not
// written through the memtable but ingested as SSTables just before the rest (state
// values, accumulator nodes, the store's version) commits: their keys begin with the
// version, so each group's tables sort after everything stored and land in the bottom
// level without overlapping anything, and are never flushed or compacted again. A
// crash between the two leaves entries of versions the store has not reached: reads
// stop at the store's version, nothing refers to them, and saving those versions again
// writes the same keys with the same contents.
func (d *DB) SaveTransactions(ctx context.Context, first uint64, txns []ledger.TransactionWithOutput) (err error) {
	if len(txns) == 0 {
		return nil
	}
	d.write.Lock()
	defer d.write.Unlock()
	d.mu.RLock()
	st, acc := d.st, d.acc
	d.mu.RUnlock()
	if first != st.NextVersion {
		return fmt.Errorf("save transactions from %d: store is at version %d", first, st.NextVersion)
	}
	if acc == nil {
		return fmt.Errorf("save transactions from %d: accumulator not seeded", first)
	}
	root, err := d.latestRoot(ctx, st)
	if err != nil {
		return fmt.Errorf("save transactions from %d: %w", first, err)
	}
	tmp := filepath.Join(d.dir, txnIngestDir)
	if err := os.RemoveAll(tmp); err != nil { // tables of an interrupted call
		return fmt.Errorf("save transactions from %d: %w", first, err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return fmt.Errorf("save transactions from %d: %w", first, err)
	}
	defer func() { _ = os.Remove(tmp) }() // empty unless a table's removal failed
	// The step being applied reads nodes of the steps not yet durable (pinned in the
	// cache from the first version not durable) or durable ones. The nodes of versions
	// not written when this returns (after an error) leave the cache: the store may yet
	// save other contents for them.
	d.nodes.pin(first)
	defer func() {
		if err != nil {
			d.nodes.dropFrom(d.state().NextVersion)
		}
		d.nodes.unpin()
	}()
	steps := make(chan *txnStep)
	written := make(chan error, 1)
	go func() { written <- d.writeTxnSteps(ctx, tmp, steps, st, acc) }()
	// A step's Apply reads the tree's nodes itself, on two goroutines when the tree is
	// large (see smt.ApplyBlockLive); after a state restore the lower levels come from
	// the store.
	reader := d.NodeReader()
	for lo := 0; lo < len(txns); lo += txnSaveStep {
		s := newTxnStep(first+uint64(lo), txns[lo:min(lo+txnSaveStep, len(txns))])
		if err = applyTxnStep(ctx, reader, root, s); err != nil {
			break
		}
		s.sync = lo+len(s.txns) == len(txns)
		// Only the newest tree is read again: cache its nodes, not the ones the later
		// versions of this step replaced.
		d.cacheNodes(s.live)
		steps <- s
		root = s.roots[len(s.roots)-1]
	}
	close(steps)
	if werr := <-written; err == nil {
		err = werr
	}
	return err
}

// txnStep is one batch of SaveTransactions, applied to the tree and checked.
type txnStep struct {
	first uint64
	txns  []ledger.TransactionWithOutput
	ups   [][]smt.Update
	roots []smt.RootRef
	nodes []smt.NodeWrite
	live  []smt.NodeWrite // the nodes of nodes that the last version's tree holds
	sync  bool
}

// newTxnStep returns the step of txns from version first, with their updates.
func newTxnStep(first uint64, txns []ledger.TransactionWithOutput) *txnStep {
	s := &txnStep{first: first, txns: txns, ups: make([][]smt.Update, len(txns))}
	for i := range txns {
		s.ups[i] = writeSetUpdates(txns[i].WriteSet)
	}
	return s
}

// applyTxnStep applies the write sets of step s on top of root and checks every
// version's state root against its transaction info.
func applyTxnStep(ctx context.Context, r smt.NodeReader, root smt.RootRef, s *txnStep) error {
	txns, first := s.txns, s.first
	var err error
	if s.roots, s.nodes, s.live, err = smt.ApplyBlockLive(ctx, r, root, first, s.ups); err != nil {
		return fmt.Errorf("save transactions from %d: %w", first, err)
	}
	for i := range txns {
		if got, want := s.roots[i].RootHash(), txns[i].Info.StateRootHash; got != want {
			return fmt.Errorf("save transaction %d: state root after its write set is %s, its info says %s", first+uint64(i), got.Short(), want.Short())
		}
	}
	return nil
}

// writeTxnSteps writes the steps it receives, in order, on top of st and acc, in
// groups of about txnIngestGroup transactions, and publishes each group's state. Steps
// received before an error in applying a later one are still written (closing steps
// ends the group); after a write error it only drains steps.
func (d *DB) writeTxnSteps(ctx context.Context, tmp string, steps <-chan *txnStep, st dbState, acc *accumulator.Builder) error {
	var err error
	var g *txnGroup
	defer func() {
		if g != nil {
			g.discard()
		}
	}()
	commit := func(sync bool) {
		if err = g.commit(ctx, st, sync); err != nil {
			return
		}
		st.NextVersion, acc = g.next, g.acc
		g.discard()
		g = nil
		d.mu.Lock()
		d.st = st
		d.acc = acc
		d.mu.Unlock()
		d.nodes.pin(st.NextVersion) // the group's nodes are durable
	}
	for s := range steps {
		if err != nil {
			continue
		}
		if g == nil {
			if g, err = d.newTxnGroup(tmp, s.first, acc); err != nil {
				continue
			}
		}
		if err = g.add(s); err != nil {
			continue
		}
		if s.sync || g.next-g.first >= txnIngestGroup {
			commit(s.sync)
		}
	}
	if err == nil && g != nil {
		commit(true)
	}
	return err
}

// txnIngestGroup is about the most transactions whose tables are ingested together:
// fewer, larger tables cost less to create and ingest.
const txnIngestGroup = 4096

// txnGroup is a run of steps written together: their transactions, state roots and
// tree nodes streamed into one SSTable each (keys only grow from step to step), their
// state values and accumulator nodes into one batch.
type txnGroup struct {
	d           *DB
	first, next uint64 // versions [first, next) added
	acc         *accumulator.Builder
	paths       []string // transactions, state roots, nodes
	tables      [3]*sstable.Writer
	b           *pebble.Batch
	nodes       int // nodes written into tables[2]
	key, vkey   []byte
	buf, rec    []byte
	vals        []stateChange
	accNodes    []accWrite
}

// newTxnGroup starts a group at version first on top of the accumulator acc.
func (d *DB) newTxnGroup(tmp string, first uint64, acc *accumulator.Builder) (*txnGroup, error) {
	next, err := accumulator.NewBuilderFromFrontier(acc.Size(), acc.Frontier())
	if err != nil {
		return nil, err
	}
	g := &txnGroup{d: d, first: first, next: first, acc: next, b: d.pdb.NewBatchWithSize(txnIngestGroup * 256), key: make([]byte, 9)}
	// Hashes do not compress: only the transactions' table is compressed (as the
	// store compresses).
	for i, c := range []*sstable.CompressionProfile{nil, sstable.NoCompression, sstable.NoCompression} {
		path, w, err := d.createSST(tmp, c)
		if err != nil {
			g.discard()
			return nil, err
		}
		g.paths = append(g.paths, path)
		g.tables[i] = w
	}
	return g, nil
}

// add appends step s, which must start at the group's next version.
func (g *txnGroup) add(s *txnStep) error {
	if s.first != g.next {
		return fmt.Errorf("save transactions: step at %d after version %d", s.first, g.next-1)
	}
	for i := range s.txns {
		v := s.first + uint64(i)
		t := &s.txns[i]
		var err error
		if g.rec, err = appendTxnRecord(g.rec[:0], t); err != nil {
			return fmt.Errorf("save transaction %d: %w", v, err)
		}
		if err := g.tables[0].Set(putVersionKey(g.key, tableTxn, v), g.rec); err != nil {
			return fmt.Errorf("write transaction %d: %w", v, err)
		}
		if g.buf, err = s.roots[i].AppendBinary(g.buf[:0]); err != nil {
			return err
		}
		if err := g.tables[1].Set(putVersionKey(g.key, tableStateRoot, v), g.buf); err != nil {
			return fmt.Errorf("write state root %d: %w", v, err)
		}
	}
	if err := putNodesSorted(func(k, v []byte) error { return g.tables[2].Set(k, v) }, s.nodes); err != nil {
		return fmt.Errorf("write smt nodes from %d: %w", s.first, err)
	}
	// The batch is filled table by table in key order within a step: the memtable
	// inserts each key next to the one before instead of searching from its top.
	g.vals, g.accNodes = g.vals[:0], g.accNodes[:0]
	for i := range s.txns {
		v := s.first + uint64(i)
		t := &s.txns[i]
		for j := range t.WriteSet {
			g.vals = append(g.vals, stateChange{kh: s.ups[i][j].KeyHash, v: v, op: &t.WriteSet[j]})
		}
		if err := g.acc.Append(t.Info.Hash(), func(id accumulator.NodeID, h ledger.Hash) {
			g.accNodes = append(g.accNodes, accWrite{id, h})
		}); err != nil {
			return err
		}
	}
	slices.SortFunc(g.accNodes, func(a, b accWrite) int {
		if c := cmp.Compare(a.id.Level, b.id.Level); c != 0 {
			return c
		}
		return cmp.Compare(a.id.Index, b.id.Index)
	})
	for _, n := range g.accNodes {
		if err := g.b.Set(accNodeKey(n.id.Level, n.id.Index), n.h[:], nil); err != nil {
			return err
		}
	}
	// Key hash, then newest version first (the key holds ^version).
	slices.SortFunc(g.vals, func(a, b stateChange) int {
		if c := bytes.Compare(a.kh[:], b.kh[:]); c != 0 {
			return c
		}
		return cmp.Compare(b.v, a.v)
	})
	for i := range g.vals {
		c := &g.vals[i]
		g.vkey = stateValueKey(g.vkey, (*[32]byte)(&c.kh), c.v)
		g.buf = appendStateValue(g.buf[:0], c.op.Key, c.op.Value, c.op.Deleted)
		if err := g.b.Set(g.vkey, g.buf, nil); err != nil {
			return err
		}
	}
	g.nodes += len(s.nodes)
	g.next += uint64(len(s.txns))
	return nil
}

// commit ingests the group's tables and then commits its batch, which records the
// store at the group's last version: once it returns without error the versions are
// part of the store, durably if sync.
func (g *txnGroup) commit(ctx context.Context, st dbState, sync bool) error {
	first, last := g.first, g.next-1
	for i, w := range g.tables {
		g.tables[i] = nil
		if err := w.Close(); err != nil {
			return fmt.Errorf("save transactions [%d, %d]: close table: %w", first, last, err)
		}
	}
	if g.nodes == 0 { // write sets that changed nothing: no table to ingest
		_ = os.Remove(g.paths[2])
		g.paths = g.paths[:2]
	}
	if err := g.d.pdb.Ingest(ctx, g.paths); err != nil {
		return fmt.Errorf("save transactions [%d, %d]: ingest: %w", first, last, err)
	}
	g.paths = nil // moved into the store
	if hook := ingestedHook; hook != nil {
		if err := hook(first); err != nil {
			return fmt.Errorf("save transactions [%d, %d]: %w", first, last, err)
		}
	}
	st.NextVersion = g.next
	if err := putState(g.b, st); err != nil {
		return err
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	if err := g.b.Commit(opts); err != nil {
		return fmt.Errorf("save transactions [%d, %d]: %w", first, last, err)
	}
	return nil
}

// discard releases what the group holds and removes tables not ingested.
func (g *txnGroup) discard() {
	for i, w := range g.tables {
		if w != nil {
			_ = w.Close()
			g.tables[i] = nil
		}
	}
	for _, p := range g.paths {
		_ = os.Remove(p)
	}
	g.paths = nil
	if g.b != nil {
		_ = g.b.Close()
		g.b = nil
	}
}

// ingestedHook, set by tests only, runs between a group's ingestion and its
// batch with the group's first version; an error stands for a crash there.
var ingestedHook func(first uint64) error

// txnIngestDir is the directory, inside the store's, of the tables SaveTransactions
// ingests.
const txnIngestDir = "txn-ingest-tmp"

// putNodesSorted passes nodes, as ApplyBlock writes them, to set as node groups in key
// order.
func putNodesSorted(set func(k, v []byte) error, nodes []smt.NodeWrite) error {
	var kbuf []byte
	return smt.GroupNodeWrites(nodes, func(g smt.NodeKey, enc []byte) error {
		kbuf = smtGroupKey(kbuf, g)
		return set(kbuf, enc)
	})
}

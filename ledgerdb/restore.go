package ledgerdb

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

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
type StateRestore struct {
	d       *DB
	version uint64
	root    ledger.Hash
	b       *smt.Builder
	next    int
	tmpDir  string

	leaves   []smt.Leaf
	keyBuf   []byte
	nodeKeys []byte  // encoded node keys of the chunk being written
	order    []int32 // sort order of nodeKeys
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

// AddChunk verifies and loads the next chunk: records sorted by key hash, continuing
// after everything added before, with the range proof of its last record.
func (r *StateRestore) AddChunk(ctx context.Context, recs []StateRecord, proof smt.RangeProof) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.leaves = r.leaves[:0]
	for i := range recs {
		r.leaves = append(r.leaves, smt.Leaf{KeyHash: smt.KeyHash(recs[i].Key), ValueHash: smt.ValueHash(recs[i].Value)})
	}
	// The builder checks the order; the values are written in the same order.
	frozen, err := r.b.AddChunk(r.leaves, proof)
	if err != nil {
		return fmt.Errorf("state chunk %d: %w", r.next, err)
	}
	if err := r.ingest(ctx, recs, frozen); err != nil {
		return fmt.Errorf("state chunk %d: %w", r.next, err)
	}
	r.next++
	p := stateRestoreProgress{Version: r.version, Root: r.root, NextChunk: r.next, Checkpoint: r.b.Checkpoint()}
	raw, err := json.Marshal(p)
	if err != nil {
		return err
	}
	return r.d.SetMeta(ctx, metaStateRestore, raw)
}

// ingest writes the chunk's values and frozen nodes as SSTables and ingests them.
func (r *StateRestore) ingest(ctx context.Context, recs []StateRecord, nodes []smt.NodeWrite) error {
	var paths []string
	defer func() {
		for _, p := range paths {
			_ = os.Remove(p) // Ingest removed them on success
		}
	}()
	if len(recs) > 0 {
		p, err := r.writeSST(func(w *sstable.Writer) error {
			var vbuf []byte
			for i := range recs {
				r.keyBuf = stateValueKey(r.keyBuf, (*[32]byte)(&r.leaves[i].KeyHash), r.version)
				vbuf = appendStateValue(vbuf[:0], recs[i].Key, recs[i].Value, false)
				if err := w.Set(r.keyBuf, vbuf); err != nil {
					return err
				}
			}
			return nil
		}, nil)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	if len(nodes) > 0 {
		p, err := r.writeNodesSST(nodes)
		if err != nil {
			return err
		}
		paths = append(paths, p)
	}
	if len(paths) == 0 {
		return nil
	}
	if err := r.d.pdb.Ingest(ctx, paths); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return nil
}

// writeNodesSST writes tree nodes, sorted by their keys, into one SSTable. It sorts
// encoded keys with an index rather than moving the nodes themselves; node hashes do
// not compress, so the table is written uncompressed.
func (r *StateRestore) writeNodesSST(nodes []smt.NodeWrite) (string, error) {
	const kl = 1 + smt.NodeKeySize
	r.nodeKeys = slices.Grow(r.nodeKeys[:0], len(nodes)*kl)[:len(nodes)*kl]
	r.order = slices.Grow(r.order[:0], len(nodes))[:len(nodes)]
	for i := range nodes {
		smtNodeKey(r.nodeKeys[i*kl:i*kl], nodes[i].Key)
		r.order[i] = int32(i)
	}
	keys := r.nodeKeys
	key := func(i int32) []byte { return keys[int(i)*kl : int(i+1)*kl] }
	slices.SortFunc(r.order, func(a, b int32) int { return bytes.Compare(key(a), key(b)) })
	var vbuf []byte
	return r.writeSST(func(w *sstable.Writer) error {
		for j, i := range r.order {
			if j > 0 && bytes.Equal(key(i), key(r.order[j-1])) {
				continue
			}
			var err error
			if vbuf, err = nodes[i].Node.AppendBinary(vbuf[:0]); err != nil {
				return fmt.Errorf("encode smt node %s: %w", nodes[i].Key, err)
			}
			if err := w.Set(key(i), vbuf); err != nil {
				return err
			}
		}
		return nil
	}, sstable.NoCompression)
}

// writeSST creates a temporary SSTable filled by fill and returns its path; a non-nil
// compression profile overrides the store's.
func (r *StateRestore) writeSST(fill func(w *sstable.Writer) error, compression *sstable.CompressionProfile) (string, error) {
	var rnd [8]byte
	_, _ = rand.Read(rnd[:])
	path := filepath.Join(r.tmpDir, hex.EncodeToString(rnd[:])+".sst")
	f, err := r.d.popts.FS.Create(path, "")
	if err != nil {
		return "", fmt.Errorf("create sstable: %w", err)
	}
	wo := r.d.popts.MakeWriterOptions(0, r.d.pdb.TableFormat())
	if compression != nil {
		wo.Compression = compression
	}
	w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), wo)
	if err := fill(w); err != nil {
		_ = w.Close()
		_ = os.Remove(path)
		return "", fmt.Errorf("write sstable: %w", err)
	}
	if err := w.Close(); err != nil {
		_ = os.Remove(path)
		return "", fmt.Errorf("close sstable: %w", err)
	}
	return path, nil
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
	if err := putNodes(b, nodes); err != nil {
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

// SaveTransactions saves transactions that a restore has verified against the
// accumulator, starting at the store's next version, without re-executing them: it
// applies each write set to the state and requires the resulting state root to equal
// the one in the transaction's info (so a write set that does not match the signed
// history is rejected). All of them are written in one synced batch.
func (d *DB) SaveTransactions(ctx context.Context, first uint64, txns []ledger.TransactionWithOutput) error {
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
	prev, err := d.latestRoot(ctx, st)
	if err != nil {
		return fmt.Errorf("save transactions from %d: %w", first, err)
	}
	batches := make([][]smt.Update, len(txns))
	for i := range txns {
		batches[i] = writeSetUpdates(txns[i].WriteSet)
	}
	roots, nodes, err := smt.ApplyBlock(ctx, d.NodeReader(), prev, first, batches)
	if err != nil {
		return fmt.Errorf("save transactions from %d: %w", first, err)
	}
	next, err := accumulator.NewBuilderFromFrontier(acc.Size(), acc.Frontier())
	if err != nil {
		return err
	}
	b := d.pdb.NewBatch()
	defer b.Close()
	var kbuf, vbuf []byte
	for i := range txns {
		v := first + uint64(i)
		t := &txns[i]
		if got, want := roots[i].RootHash(), t.Info.StateRootHash; got != want {
			return fmt.Errorf("save transaction %d: state root after its write set is %s, its info says %s", v, got.Short(), want.Short())
		}
		enc, err := t.Encode()
		if err != nil {
			return fmt.Errorf("save transaction %d: %w", v, err)
		}
		if err := b.Set(versionKey(tableTxn, v), enc, nil); err != nil {
			return err
		}
		if err := d.putStateChanges(b, v, t.WriteSet, &kbuf, &vbuf); err != nil {
			return err
		}
		rb, err := roots[i].AppendBinary(nil)
		if err != nil {
			return err
		}
		if err := b.Set(versionKey(tableStateRoot, v), rb, nil); err != nil {
			return err
		}
		var werr error
		if err := next.Append(t.Info.Hash(), func(id accumulator.NodeID, h ledger.Hash) {
			if werr == nil {
				werr = b.Set(accNodeKey(id.Level, id.Index), h[:], nil)
			}
		}); err != nil {
			return err
		}
		if werr != nil {
			return werr
		}
	}
	if err := putNodes(b, nodes); err != nil {
		return err
	}
	ns := st
	ns.NextVersion = first + uint64(len(txns))
	if err := putState(b, ns); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("save transactions [%d, %d]: %w", first, ns.NextVersion-1, err)
	}
	d.mu.Lock()
	d.st = ns
	d.acc = next
	d.mu.Unlock()
	d.cacheNodes(nodes)
	return nil
}

package ledgerdb

import (
	"context"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// TxnInput is a transaction and what executing it produced, before the store computes
// its state root and TransactionInfo.
type TxnInput struct {
	Transaction ledger.Transaction
	WriteSet    ledger.WriteSet
	Events      []ledger.Event
	Status      ledger.TransactionStatus
}

// accWrite is an accumulator node to persist.
type accWrite struct {
	id accumulator.NodeID
	h  ledger.Hash
}

// PreparedBlock is a block whose state roots, transaction infos and accumulator root
// have been computed but which is not yet committed. It is valid only for the store
// state it was prepared on.
type PreparedBlock struct {
	first    uint64
	txns     []ledger.TransactionWithOutput
	writeSet []ledger.WriteSet // per version, the state changes to record
	roots    []smt.RootRef
	nodes    []smt.NodeWrite
	accNodes []accWrite
	acc      *accumulator.Builder
}

// FirstVersion returns the block's first version.
func (p *PreparedBlock) FirstVersion() uint64 { return p.first }

// LastVersion returns the block's last version.
func (p *PreparedBlock) LastVersion() uint64 { return p.first + uint64(len(p.txns)) - 1 }

// AccumulatorRoot returns the accumulator root after the block's last version: what
// the block's ledger info must sign.
func (p *PreparedBlock) AccumulatorRoot() ledger.Hash { return p.acc.Root() }

// StateRoot returns the state root after the block's last version.
func (p *PreparedBlock) StateRoot() ledger.Hash { return p.roots[len(p.roots)-1].RootHash() }

// Transactions returns the block's transactions with their computed infos.
func (p *PreparedBlock) Transactions() []ledger.TransactionWithOutput { return p.txns }

// latestRoot returns the state root after the newest committed version (the empty tree
// for an empty store).
func (d *DB) latestRoot(ctx context.Context, st dbState) (smt.RootRef, error) {
	if st.NextVersion == 0 {
		return smt.EmptyRoot(), nil
	}
	return d.StateRoot(ctx, st.NextVersion-1)
}

// PrepareBlock executes the state changes of txns on top of the committed state: it
// computes every version's state root, the TransactionInfos and the accumulator root,
// without writing anything.
func (d *DB) PrepareBlock(ctx context.Context, txns []TxnInput) (*PreparedBlock, error) {
	if len(txns) == 0 {
		return nil, errors.New("prepare block: no transactions")
	}
	d.mu.RLock()
	st, cur := d.st, d.acc
	d.mu.RUnlock()
	if cur == nil {
		return nil, fmt.Errorf("prepare block: store restored at version %d has no accumulator yet", st.StateBaseVersion)
	}
	accFrontier := cur.Frontier()
	prev, err := d.latestRoot(ctx, st)
	if err != nil {
		return nil, fmt.Errorf("prepare block at version %d: %w", st.NextVersion, err)
	}
	batches := make([][]smt.Update, len(txns))
	sets := make([]ledger.WriteSet, len(txns))
	for i := range txns {
		ws := txns[i].WriteSet
		if err := ws.Validate(); err != nil {
			return nil, fmt.Errorf("prepare block: version %d: %w", st.NextVersion+uint64(i), err)
		}
		batches[i] = writeSetUpdates(ws)
		sets[i] = ws
	}
	roots, nodes, err := smt.ApplyBlock(ctx, d.NodeReader(), prev, st.NextVersion, batches)
	if err != nil {
		return nil, fmt.Errorf("prepare block at version %d: %w", st.NextVersion, err)
	}
	acc, err := accumulator.NewBuilderFromFrontier(st.NextVersion, accFrontier)
	if err != nil {
		return nil, err
	}
	pb := &PreparedBlock{first: st.NextVersion, writeSet: sets, roots: roots, nodes: nodes, acc: acc}
	pb.txns = make([]ledger.TransactionWithOutput, len(txns))
	for i := range txns {
		t := &txns[i]
		two, err := ledger.NewTransactionWithOutput(t.Transaction, t.WriteSet, t.Events, t.Status, roots[i].RootHash())
		if err != nil {
			return nil, fmt.Errorf("prepare block: version %d: %w", pb.first+uint64(i), err)
		}
		pb.txns[i] = two
		if err := acc.Append(two.Info.Hash(), func(id accumulator.NodeID, h ledger.Hash) {
			pb.accNodes = append(pb.accNodes, accWrite{id, h})
		}); err != nil {
			return nil, err
		}
	}
	return pb, nil
}

// writeSetUpdates turns a write set into tree updates.
func writeSetUpdates(ws ledger.WriteSet) []smt.Update {
	ups := make([]smt.Update, len(ws))
	for i := range ws {
		ups[i].KeyHash = smt.KeyHash(ws[i].Key)
		if ws[i].Deleted {
			ups[i].Delete = true
		} else {
			ups[i].ValueHash = smt.ValueHash(ws[i].Value)
		}
	}
	return ups
}

// currentValidators returns the validator set that must sign the next ledger info and
// its epoch, from the newest epoch-ending ledger info.
func (d *DB) currentValidators(ctx context.Context, st dbState) (*ledger.ValidatorSet, uint64, error) {
	if !st.HasLedgerInfo {
		return nil, 0, nil
	}
	latest, err := d.LedgerInfoAt(ctx, st.LatestLedgerInfoVersion)
	if err != nil {
		return nil, 0, err
	}
	if latest.LedgerInfo.EndsEpoch() {
		return latest.LedgerInfo.NextValidatorSet, latest.LedgerInfo.Epoch + 1, nil
	}
	ending, err := d.EpochEnding(ctx, latest.LedgerInfo.Epoch-1)
	if err != nil {
		return nil, 0, err
	}
	return ending.LedgerInfo.NextValidatorSet, latest.LedgerInfo.Epoch, nil
}

// CommitBlock atomically writes a prepared block with the ledger info that signs its
// last version, in one synced batch: a crash loses either the whole block or nothing.
// The ledger info must be for the block's last version and accumulator root, in the
// current epoch (or the next, right after an epoch ended), and signed by a quorum of the
// epoch's validators; the very first ledger info (genesis) is trusted as given, its
// waypoint being the root of trust.
func (d *DB) CommitBlock(ctx context.Context, pb *PreparedBlock, li ledger.LedgerInfoWithSignatures) error {
	d.write.Lock()
	defer d.write.Unlock()
	st := d.state()
	if pb.first != st.NextVersion {
		return fmt.Errorf("commit block at version %d: store is at version %d (prepared on a different state)", pb.first, st.NextVersion)
	}
	info := &li.LedgerInfo
	if info.Version != pb.LastVersion() || info.AccumulatorRoot != pb.AccumulatorRoot() {
		return fmt.Errorf("commit block [%d, %d]: ledger info is for version %d root %s, block ends with root %s",
			pb.first, pb.LastVersion(), info.Version, info.AccumulatorRoot.Short(), pb.AccumulatorRoot().Short())
	}
	if err := d.checkLedgerInfo(ctx, st, &li); err != nil {
		return fmt.Errorf("commit block [%d, %d]: %w", pb.first, pb.LastVersion(), err)
	}

	b := d.pdb.NewBatch()
	defer b.Close()
	var kbuf, vbuf, tbuf []byte
	for i := range pb.txns {
		v := pb.first + uint64(i)
		var err error
		if tbuf, err = appendTxnRecord(tbuf[:0], &pb.txns[i]); err != nil {
			return fmt.Errorf("commit block: encode transaction %d: %w", v, err)
		}
		if err := b.Set(versionKey(tableTxn, v), tbuf, nil); err != nil {
			return err
		}
		if err := d.putStateChanges(b, v, pb.writeSet[i], &kbuf, &vbuf); err != nil {
			return err
		}
		rb, err := pb.roots[i].AppendBinary(nil)
		if err != nil {
			return err
		}
		if err := b.Set(versionKey(tableStateRoot, v), rb, nil); err != nil {
			return err
		}
	}
	if err := putNodes(b, pb.nodes); err != nil {
		return err
	}
	for _, n := range pb.accNodes {
		if err := b.Set(accNodeKey(n.id.Level, n.id.Index), n.h[:], nil); err != nil {
			return err
		}
	}
	next := st
	next.NextVersion = pb.LastVersion() + 1
	if err := putLedgerInfo(b, &li, &next); err != nil {
		return err
	}
	if err := putState(b, next); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit block [%d, %d]: %w", pb.first, pb.LastVersion(), err)
	}
	d.mu.Lock()
	d.st = next
	d.acc = pb.acc
	d.mu.Unlock()
	d.cacheNodes(pb.nodes)
	return nil
}

// cacheNodes puts freshly committed nodes in the node cache: the next block reads the
// upper levels of the tree it just wrote.
func (d *DB) cacheNodes(nodes []smt.NodeWrite) {
	for i := range nodes {
		d.nodes.put(nodes[i].Key, nodes[i].Node)
	}
}

// checkLedgerInfo checks that li may follow the store's newest ledger info.
func (d *DB) checkLedgerInfo(ctx context.Context, st dbState, li *ledger.LedgerInfoWithSignatures) error {
	if err := li.Validate(); err != nil {
		return err
	}
	vs, epoch, err := d.currentValidators(ctx, st)
	if err != nil {
		return err
	}
	if vs == nil { // genesis
		if li.LedgerInfo.Epoch != 0 || !li.LedgerInfo.EndsEpoch() {
			return fmt.Errorf("the first ledger info must be genesis: epoch 0 with the first validator set")
		}
		return nil
	}
	if li.LedgerInfo.Epoch != epoch {
		return fmt.Errorf("ledger info is for epoch %d, the store is in epoch %d", li.LedgerInfo.Epoch, epoch)
	}
	return li.VerifySignatures(vs)
}

// putLedgerInfo adds li to b and advances st's ledger info fields.
func putLedgerInfo(b *pebble.Batch, li *ledger.LedgerInfoWithSignatures, st *dbState) error {
	enc, err := li.Encode()
	if err != nil {
		return fmt.Errorf("encode ledger info: %w", err)
	}
	info := &li.LedgerInfo
	if err := b.Set(versionKey(tableLedgerInfo, info.Version), enc, nil); err != nil {
		return err
	}
	if info.EndsEpoch() {
		if err := b.Set(versionKey(tableEpochEnding, info.Epoch), enc, nil); err != nil {
			return err
		}
	}
	if !st.HasLedgerInfo || info.Version >= st.LatestLedgerInfoVersion {
		st.HasLedgerInfo = true
		st.LatestLedgerInfoVersion = info.Version
		st.LatestEpoch = info.Epoch
	}
	return nil
}

// putStateChanges records the values a version's write set sets or deletes.
func (d *DB) putStateChanges(b *pebble.Batch, v uint64, ws ledger.WriteSet, kbuf, vbuf *[]byte) error {
	for j := range ws {
		op := &ws[j]
		kh := smt.KeyHash(op.Key)
		*kbuf = stateValueKey(*kbuf, (*[32]byte)(&kh), v)
		*vbuf = appendStateValue((*vbuf)[:0], op.Key, op.Value, op.Deleted)
		if err := b.Set(*kbuf, *vbuf, nil); err != nil {
			return err
		}
	}
	return nil
}

// putNodes adds SMT nodes of committed versions to b, in node groups.
func putNodes(b *pebble.Batch, nodes []smt.NodeWrite) error {
	var kbuf []byte
	return smt.GroupNodeWrites(nodes, func(g smt.NodeKey, enc []byte) error {
		kbuf = smtGroupKey(kbuf, g)
		return b.Set(kbuf, enc, nil)
	})
}

// putSingleNodes adds SMT nodes of a restored snapshot's version to b, one per record.
func putSingleNodes(b *pebble.Batch, nodes []smt.NodeWrite) error {
	var kbuf, vbuf []byte
	for i := range nodes {
		kbuf = smtNodeKey(kbuf, nodes[i].Key)
		var err error
		vbuf, err = nodes[i].Node.AppendBinary(vbuf[:0])
		if err != nil {
			return fmt.Errorf("encode smt node %s: %w", nodes[i].Key, err)
		}
		if err := b.Set(kbuf, vbuf, nil); err != nil {
			return err
		}
	}
	return nil
}

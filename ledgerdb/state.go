package ledgerdb

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// State value records in tableStateValue: flag(1) ‖ uvarint(len(key)) ‖ key ‖ value,
// where flag is 0 for a value and 1 for a deletion (then value is empty).
const (
	valueFlagSet     byte = 0
	valueFlagDeleted byte = 1
)

func appendStateValue(dst []byte, key, value []byte, deleted bool) []byte {
	if deleted {
		dst = append(dst, valueFlagDeleted)
	} else {
		dst = append(dst, valueFlagSet)
	}
	dst = binary.AppendUvarint(dst, uint64(len(key)))
	dst = append(dst, key...)
	return append(dst, value...)
}

func parseStateValue(b []byte) (key, value []byte, deleted bool, err error) {
	if len(b) < 2 || b[0] > valueFlagDeleted {
		return nil, nil, false, fmt.Errorf("ledgerdb: malformed state value record")
	}
	n, w := binary.Uvarint(b[1:])
	if w <= 0 || n > uint64(len(b)-1-w) {
		return nil, nil, false, fmt.Errorf("ledgerdb: malformed state value record key length")
	}
	key = b[1+w : 1+w+int(n)]
	return key, b[1+w+int(n):], b[0] == valueFlagDeleted, nil
}

// nodeReader reads SMT nodes from Pebble through the node cache. The nodes of every
// committed or replayed version are stored in groups of four levels (see
// smt.GroupNodeWrites) in tableSMTGroup, about a quarter of the records per update. The
// tree of a restored state snapshot, written at the snapshot's version by StateRestore,
// is stored in groups too, in tableSMTRestoredGroup under post-order keys (the order a
// restore completes them in), except the nodes of groups whose root holds leaves of more
// than one chunk: those few, on the chunks' edges, are stored one per record in
// tableSMTNode (as every restored node was in layout 2).
type nodeReader struct {
	pdb   *pebble.DB
	cache *nodeCache
	// single and singleVersion: the version of the restored snapshot.
	single        bool
	singleVersion uint64
}

func smtNodeKey(dst []byte, k smt.NodeKey) []byte {
	dst = append(dst[:0], tableSMTNode)
	dst, _ = k.AppendBinary(dst)
	return dst
}

func smtGroupKey(dst []byte, g smt.NodeKey) []byte {
	dst = append(dst[:0], tableSMTGroup)
	dst, _ = g.AppendBinary(dst)
	return dst
}

func restoredGroupKey(dst []byte, g smt.NodeKey) []byte {
	dst = append(dst[:0], tableSMTRestoredGroup)
	return g.AppendPostOrderKey(dst)
}

// GetNode implements smt.NodeReader.
func (r nodeReader) GetNode(ctx context.Context, k smt.NodeKey) (smt.Node, error) {
	if n, ok := r.cache.get(k); ok {
		return n, nil
	}
	if err := k.Validate(); err != nil {
		return smt.Node{}, fmt.Errorf("smt node %s: %w", k, err)
	}
	var buf [1 + smt.NodeKeySize]byte
	g := k.GroupKey()
	if r.single && k.Version == r.singleVersion {
		n, ok, err := r.getGrouped(k, g, restoredGroupKey(buf[:0], g))
		if ok || err != nil {
			return n, err
		}
		return r.getSingle(k)
	}
	n, ok, err := r.getGrouped(k, g, smtGroupKey(buf[:0], g))
	if err == nil && !ok {
		err = fmt.Errorf("smt node %s (in group %s, table %#x): %w", k, g, tableSMTGroup, smt.ErrNodeNotFound)
	}
	return n, err
}

// getSingle reads the node stored alone under k.
func (r nodeReader) getSingle(k smt.NodeKey) (smt.Node, error) {
	var buf [1 + smt.NodeKeySize]byte
	v, closer, err := r.pdb.Get(smtNodeKey(buf[:0], k))
	if errors.Is(err, pebble.ErrNotFound) {
		return smt.Node{}, fmt.Errorf("smt node %s: %w", k, smt.ErrNodeNotFound)
	}
	if err != nil {
		return smt.Node{}, fmt.Errorf("smt node %s: %w", k, err)
	}
	defer closer.Close()
	n, err := smt.DecodeNode(v)
	if err != nil {
		return smt.Node{}, fmt.Errorf("smt node %s: %w", k, err)
	}
	r.cache.put(k, n)
	return n, nil
}

// getGrouped reads the record under key of k's group g, which holds k if k exists and
// is stored in a group, and caches all of its nodes: a descent reads the deeper nodes of
// the group next when they were written with k. It reports whether it found k.
func (r nodeReader) getGrouped(k, g smt.NodeKey, key []byte) (smt.Node, bool, error) {
	v, closer, err := r.pdb.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return smt.Node{}, false, nil
	}
	if err != nil {
		return smt.Node{}, false, fmt.Errorf("smt node %s: %w", k, err)
	}
	var members [smt.GroupLevels * 4]smt.NodeWrite
	nodes, err := smt.DecodeGroup(members[:0], g, v)
	_ = closer.Close()
	if err != nil {
		return smt.Node{}, false, fmt.Errorf("smt node %s: %w", k, err)
	}
	found := -1
	for i := range nodes {
		r.cache.put(nodes[i].Key, nodes[i].Node)
		if nodes[i].Key == k {
			found = i
		}
	}
	if found < 0 {
		return smt.Node{}, false, nil
	}
	return nodes[found].Node, true, nil
}

// NodeReader returns the store's SMT node reader.
func (d *DB) NodeReader() smt.NodeReader {
	st := d.state()
	return nodeReader{pdb: d.pdb, cache: d.nodes, single: st.HasStateBase, singleVersion: st.StateBaseVersion}
}

// StateRoot returns the state tree root after version v.
func (d *DB) StateRoot(ctx context.Context, v uint64) (smt.RootRef, error) {
	if err := ctx.Err(); err != nil {
		return smt.RootRef{}, err
	}
	// A restore ingests state roots just before it records their versions.
	if st := d.state(); v >= st.NextVersion {
		return smt.RootRef{}, fmt.Errorf("state root at version %d: only %d versions committed: %w", v, st.NextVersion, ErrNotFound)
	}
	b, err := d.get(versionKey(tableStateRoot, v))
	if err != nil {
		return smt.RootRef{}, fmt.Errorf("state root at version %d: %w", v, err)
	}
	r, err := smt.DecodeRootRef(b)
	if err != nil {
		return smt.RootRef{}, fmt.Errorf("state root at version %d: %w", v, err)
	}
	return r, nil
}

// StateItemCount returns the number of state items at version v.
func (d *DB) StateItemCount(ctx context.Context, v uint64) (uint64, error) {
	r, err := d.StateRoot(ctx, v)
	if err != nil {
		return 0, err
	}
	return r.LeafCount, nil
}

// StateRangeProof proves "all leaves up to key hash last" at version v (the siblings
// right of last's path).
func (d *DB) StateRangeProof(ctx context.Context, v uint64, last ledger.Hash) (smt.RangeProof, error) {
	r, err := d.StateRoot(ctx, v)
	if err != nil {
		return smt.RangeProof{}, err
	}
	p, err := smt.ProveRange(ctx, d.NodeReader(), r, last)
	if err != nil {
		return smt.RangeProof{}, fmt.Errorf("state range proof at version %d: %w", v, err)
	}
	return p, nil
}

// StateProof proves the presence or absence of a key hash at version v.
func (d *DB) StateProof(ctx context.Context, v uint64, keyHash ledger.Hash) (smt.Proof, error) {
	r, err := d.StateRoot(ctx, v)
	if err != nil {
		return smt.Proof{}, err
	}
	p, err := smt.Prove(ctx, d.NodeReader(), r, keyHash)
	if err != nil {
		return smt.Proof{}, fmt.Errorf("state proof at version %d: %w", v, err)
	}
	return p, nil
}

// StateValue returns the value of key at version v, or ErrNotFound.
func (d *DB) StateValue(ctx context.Context, v uint64, key []byte) ([]byte, error) {
	kh := smt.KeyHash(key)
	lo, hi := tableBounds(tableStateValue)
	it, err := d.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	if !it.SeekGE(stateValueKey(nil, (*[32]byte)(&kh), v)) {
		return nil, fmt.Errorf("state value at version %d: %w", v, ErrNotFound)
	}
	gotKH, _, err := parseStateValueKey(it.Key())
	if err != nil {
		return nil, err
	}
	if gotKH != kh {
		return nil, fmt.Errorf("state value at version %d: %w", v, ErrNotFound)
	}
	_, val, deleted, err := parseStateValue(it.Value())
	if err != nil {
		return nil, err
	}
	if deleted {
		return nil, fmt.Errorf("state value at version %d: %w", v, ErrNotFound)
	}
	return append([]byte(nil), val...), nil
}

// StateValues calls fn with the state items at version v in key-hash order, starting at
// item index start, for at most limit items (0: all). It reads without holding the range
// in memory; key and value are valid only during the call.
func (d *DB) StateValues(ctx context.Context, v, start, limit uint64, fn func(index uint64, key, value []byte) error) error {
	root, err := d.StateRoot(ctx, v)
	if err != nil {
		return err
	}
	if start >= root.LeafCount {
		if start == root.LeafCount {
			return nil
		}
		return fmt.Errorf("state values at version %d: start index %d beyond %d items: %w", v, start, root.LeafCount, ErrNotFound)
	}
	end := root.LeafCount
	if limit > 0 && start+limit < end {
		end = start + limit
	}
	firstKH, _, err := smt.LeafAtIndex(ctx, d.NodeReader(), root, start)
	if err != nil {
		return fmt.Errorf("state values at version %d: find item %d: %w", v, start, err)
	}
	lo, hi := tableBounds(tableStateValue)
	it, err := d.pdb.NewIterWithContext(ctx, &pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return err
	}
	defer it.Close()
	var seekBuf []byte
	ok := it.SeekGE(stateValueKey(seekBuf, (*[32]byte)(&firstKH), v))
	index := start
	for ok && index < end {
		if index&1023 == 0 {
			if err := ctx.Err(); err != nil {
				return err
			}
		}
		kh, ver, err := parseStateValueKey(it.Key())
		if err != nil {
			return err
		}
		if ver > v {
			// Newer than v: jump to the newest entry at or before v.
			seekBuf = stateValueKey(seekBuf, &kh, v)
			ok = it.SeekGE(seekBuf)
			continue
		}
		key, val, deleted, err := parseStateValue(it.Value())
		if err != nil {
			return err
		}
		if !deleted {
			if err := fn(index, key, val); err != nil {
				return err
			}
			index++
		}
		// Skip the older entries of this key hash: a few steps, then a seek.
		ok = it.Next()
		for steps := 0; ok; steps++ {
			k := it.Key()
			if len(k) != 41 || string(k[1:33]) != string(kh[:]) {
				break
			}
			if steps == 4 {
				// (kh, version 0) is the last possible key of kh; seek just past it.
				seekBuf = append(stateValueKey(seekBuf, &kh, 0), 0)
				ok = it.SeekGE(seekBuf)
				break
			}
			ok = it.Next()
		}
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("state values at version %d: %w", v, err)
	}
	if index != end {
		return fmt.Errorf("state values at version %d: found %d items from %d, the tree has %d: store inconsistent", v, index-start, start, end-start)
	}
	return nil
}

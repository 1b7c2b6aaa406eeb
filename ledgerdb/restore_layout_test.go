package ledgerdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// TestStateRestoreLayout restores a state in chunks and checks where its tables went:
// every chunk's values and nodes sort after everything loaded before, so they are
// ingested into the bottom level without compactions, while the ancestors of nodes
// written before go through the write batch. The restored store holds exactly the nodes
// Apply writes for the same state at the same version, and serves the source's range
// proofs, also after a reopen that resumes the restore half way. The first chunks are
// small; the later ones are large enough for the builder to hand out their nodes in
// several runs. A progress record of an older version (with the largest node key
// written) resumes the same way.
func TestStateRestoreLayout(t *testing.T) {
	for _, legacy := range []bool{false, true} {
		t.Run(fmt.Sprintf("legacy-record=%v", legacy), func(t *testing.T) { testStateRestoreLayout(t, legacy) })
	}
}

func testStateRestoreLayout(t *testing.T, legacy bool) {
	ctx := context.Background()
	const n, version = 40_000, 7
	ends := []int{97, 194, 1000, 3001, 20_000, n}
	src := smt.NewOverlay(nil)
	recs := make([]StateRecord, n)
	ups := make([]smt.Update, n)
	for i := range recs {
		recs[i] = StateRecord{Key: fmt.Appendf(nil, "account-%d", i), Value: binary.BigEndian.AppendUint64(nil, uint64(i))}
		ups[i] = smt.Update{KeyHash: smt.KeyHash(recs[i].Key), ValueHash: smt.ValueHash(recs[i].Value)}
	}
	slices.SortFunc(recs, func(a, b StateRecord) int {
		ka, kb := smt.KeyHash(a.Key), smt.KeyHash(b.Key)
		return bytes.Compare(ka[:], kb[:])
	})
	root, writes, err := smt.Apply(ctx, src, smt.EmptyRoot(), version, ups)
	if err != nil {
		t.Fatal(err)
	}
	src.Put(writes...)
	proof := func(end int) smt.RangeProof {
		p, err := smt.ProveRange(ctx, src, root, smt.KeyHash(recs[end-1].Key))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	dir := t.TempDir()
	open := func() *DB {
		d, err := Open(ctx, dir, Options{})
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	d := open()
	sr, err := d.StartStateRestore(ctx, version, root.RootHash())
	if err != nil {
		t.Fatal(err)
	}
	// A reopen flushes the batches (ancestors, progress) into L0; ingestion never does.
	add := func(c int, placed bool) {
		i, end := 0, ends[c]
		if c > 0 {
			i = ends[c-1]
		}
		m := d.pdb.Metrics()
		if err := sr.AddChunk(ctx, recs[i:end], proof(end)); err != nil {
			t.Fatalf("chunk at %d: %v", i, err)
		}
		after := d.pdb.Metrics()
		if placed && (after.Levels[0].TablesCount != m.Levels[0].TablesCount || after.Compact.Count != m.Compact.Count ||
			after.Levels[6].TablesCount != m.Levels[6].TablesCount+2) {
			t.Fatalf("chunk at %d: L0 tables %d -> %d, L6 tables %d -> %d, compactions %d -> %d", i,
				m.Levels[0].TablesCount, after.Levels[0].TablesCount, m.Levels[6].TablesCount, after.Levels[6].TablesCount,
				m.Compact.Count, after.Compact.Count)
		}
	}
	const half = 4
	for c := range half {
		add(c, true)
	}
	if legacy {
		// Earlier versions also recorded the largest node key written.
		raw, err := d.GetMeta(ctx, metaStateRestore)
		if err != nil {
			t.Fatal(err)
		}
		var p map[string]any
		if err := json.Unmarshal(raw, &p); err != nil {
			t.Fatal(err)
		}
		p["last_node_key"] = []byte{tableSMTNode, 1, 2, 3}
		if raw, err = json.Marshal(p); err != nil {
			t.Fatal(err)
		}
		if err := d.SetMeta(ctx, metaStateRestore, raw); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	d = open()
	defer d.Close()
	if sr, err = d.StartStateRestore(ctx, version, root.RootHash()); err != nil {
		t.Fatal(err)
	}
	if sr.NextChunk() != half || sr.LeafCount() != uint64(ends[half-1]) {
		t.Fatalf("resumed at chunk %d with %d leaves, want %d with %d", sr.NextChunk(), sr.LeafCount(), half, ends[half-1])
	}
	// The rest prepared concurrently, added in order.
	prepared := make([]*PreparedChunk, len(ends))
	errs := make([]error, len(ends))
	var wg sync.WaitGroup
	for c := half; c < len(ends); c++ {
		wg.Go(func() {
			prev := smt.KeyHash(recs[ends[c-1]-1].Key)
			cb, err := sr.NewChunk(&prev)
			if err != nil {
				errs[c] = err
				return
			}
			defer cb.Abort()
			for _, rec := range recs[ends[c-1]:ends[c]] {
				if errs[c] = cb.Add(rec.Key, rec.Value); errs[c] != nil {
					return
				}
			}
			prepared[c], errs[c] = cb.Finish()
		})
	}
	wg.Wait()
	for c := half; c < len(ends); c++ {
		if errs[c] != nil {
			t.Fatalf("prepare chunk %d: %v", c, errs[c])
		}
		m := d.pdb.Metrics()
		if err := sr.AddPrepared(ctx, prepared[c], proof(ends[c])); err != nil {
			t.Fatalf("chunk %d: %v", c, err)
		}
		after := d.pdb.Metrics()
		if after.Levels[0].TablesCount != m.Levels[0].TablesCount || after.Compact.Count != m.Compact.Count ||
			after.Levels[6].TablesCount != m.Levels[6].TablesCount+2 {
			t.Fatalf("chunk %d: L0 tables %d -> %d, L6 tables %d -> %d, compactions %d -> %d", c,
				m.Levels[0].TablesCount, after.Levels[0].TablesCount, m.Levels[6].TablesCount, after.Levels[6].TablesCount,
				m.Compact.Count, after.Compact.Count)
		}
	}
	if left, _ := os.ReadDir(sr.tmpDir); len(left) != 0 {
		t.Fatalf("%d temporary tables left", len(left))
	}
	got, err := sr.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.RootHash() != root.RootHash() || got.LeafCount != n {
		t.Fatalf("restored root %s/%d, want %s/%d", got.RootHash().Short(), got.LeafCount, root.RootHash().Short(), n)
	}
	// The node tables hold exactly Apply's nodes: in groups, but for a few on the
	// chunks' edges.
	want := make(map[string][]byte, len(writes))
	for _, w := range writes {
		v, err := w.Node.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want[string(smtNodeKey(nil, w.Key))] = v
	}
	stored := restoredNodes(t, d)
	for k, v := range stored {
		if w, ok := want[k]; !ok || !bytes.Equal(v.value, w) {
			t.Fatalf("node %x: stored %x, Apply writes %x", k, v.value, w)
		}
	}
	if len(stored) != len(want) {
		t.Fatalf("store holds %d nodes, Apply writes %d", len(stored), len(want))
	}
	singles := 0
	for _, v := range stored {
		if !v.grouped {
			singles++
		}
	}
	// Per chunk edge, at most the open groups on two paths (15 nodes per group level).
	if limit := len(ends) * 2 * (smt.MaxDepth / smt.GroupLevels) * 15; singles > limit || singles*20 > len(stored) {
		t.Fatalf("%d of %d nodes stored alone (limit %d)", singles, len(stored), limit)
	}
	checkRangeProofs(t, d, src, root, recs, version, 997)
}

// TestStateRestoreRefusesChunks checks that a chunk prepared after the wrong record, a
// chunk with a changed value, and records out of order are refused, leave no table
// behind and leave the restore able to continue with the right chunk.
func TestStateRestoreRefusesChunks(t *testing.T) {
	ctx := context.Background()
	const n, version = 12000, 3
	src, recs, root, _ := sourceState(t, n, version)
	proof := func(end int) smt.RangeProof {
		p, err := smt.ProveRange(ctx, src, root, smt.KeyHash(recs[end-1].Key))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	d, err := Open(ctx, t.TempDir(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	sr, err := d.StartStateRestore(ctx, version, root.RootHash())
	if err != nil {
		t.Fatal(err)
	}
	prepare := func(prev *ledger.Hash, rs []StateRecord) (*PreparedChunk, error) {
		cb, err := sr.NewChunk(prev)
		if err != nil {
			return nil, err
		}
		defer cb.Abort()
		for _, r := range rs {
			if err := cb.Add(r.Key, r.Value); err != nil {
				return nil, err
			}
		}
		return cb.Finish()
	}
	empty := func(what string) {
		t.Helper()
		if left, _ := os.ReadDir(sr.tmpDir); len(left) != 0 {
			t.Fatalf("%s: %d temporary tables left", what, len(left))
		}
	}
	const cut = 7000
	if err := sr.AddChunk(ctx, recs[:cut], proof(cut)); err != nil {
		t.Fatal(err)
	}
	// Out of order: refused while preparing, within a batch and across batches.
	for _, at := range []int{1, chunkBatch, 2*chunkBatch + 5} {
		bad := slices.Clone(recs[:cut])
		bad[at-1], bad[at] = bad[at], bad[at-1]
		if _, err := prepare(nil, bad); err == nil || !strings.Contains(err.Error(), "does not follow") {
			t.Fatalf("records swapped at %d: %v", at, err)
		}
		empty("swapped records")
	}
	// A first record before the assumed previous one: refused by the tree goroutine.
	after := smt.KeyHash(recs[cut+5].Key)
	if _, err := prepare(&after, recs[cut:]); err == nil || !strings.Contains(err.Error(), "does not follow") {
		t.Fatalf("chunk before its assumed predecessor: %v", err)
	}
	empty("chunk before its assumed predecessor")
	last := smt.KeyHash(recs[cut-1].Key)
	wrongPrev := smt.KeyHash(recs[cut-2].Key)
	changed := slices.Clone(recs[cut:])
	changed[7].Value = []byte("changed")
	for _, c := range []struct {
		name string
		prev *ledger.Hash
		recs []StateRecord
	}{
		{"prepared as the first chunk", nil, recs[cut:]},
		{"prepared after another record", &wrongPrev, recs[cut:]},
		{"changed value", &last, changed},
		{"a record missing", &last, recs[cut+1:]},
	} {
		p, err := prepare(c.prev, c.recs)
		if err != nil {
			t.Fatalf("%s: prepare: %v", c.name, err)
		}
		if err := sr.AddPrepared(ctx, p, proof(n)); err == nil {
			t.Fatalf("%s: accepted", c.name)
		}
		empty(c.name)
		if sr.NextChunk() != 1 || sr.LeafCount() != cut {
			t.Fatalf("%s: the refused chunk moved the restore to chunk %d, %d leaves", c.name, sr.NextChunk(), sr.LeafCount())
		}
	}
	p, err := prepare(&last, recs[cut:])
	if err != nil {
		t.Fatal(err)
	}
	if err := sr.AddPrepared(ctx, p, proof(n)); err != nil {
		t.Fatal(err)
	}
	stored, err := sr.Finish(ctx)
	if err != nil || stored.RootHash() != root.RootHash() {
		t.Fatalf("finish: %v, root %s want %s", err, stored.RootHash().Short(), root.RootHash().Short())
	}
}

// storedNode is a node of the restored version as the store holds it.
type storedNode struct {
	value   []byte
	grouped bool
}

// restoredNodes returns every node of the store's restored node tables (the groups of
// tableSMTRestoredGroup and the nodes alone in tableSMTNode) by smtNodeKey; a node
// stored twice fails the test.
func restoredNodes(t *testing.T, d *DB) map[string]storedNode {
	t.Helper()
	out := map[string]storedNode{}
	add := func(k smt.NodeKey, n smt.Node, grouped bool) {
		v, err := n.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		key := string(smtNodeKey(nil, k))
		if _, dup := out[key]; dup {
			t.Fatalf("node %s stored twice", k)
		}
		out[key] = storedNode{v, grouped}
	}
	for _, table := range []byte{tableSMTRestoredGroup, tableSMTNode} {
		lo, hi := tableBounds(table)
		it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			t.Fatal(err)
		}
		for ok := it.First(); ok; ok = it.Next() {
			if table == tableSMTNode {
				k, err := smt.DecodeNodeKey(it.Key()[1:])
				if err != nil {
					t.Fatal(err)
				}
				n, err := smt.DecodeNode(it.Value())
				if err != nil {
					t.Fatal(err)
				}
				add(k, n, false)
				continue
			}
			g := parseRestoredGroupKey(t, it.Key())
			ms, err := smt.DecodeGroup(nil, g, it.Value())
			if err != nil {
				t.Fatalf("group %s: %v", g, err)
			}
			for _, m := range ms {
				add(m.Key, m.Node, true)
			}
		}
		if err := it.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// parseRestoredGroupKey inverts restoredGroupKey.
func parseRestoredGroupKey(t *testing.T, b []byte) smt.NodeKey {
	t.Helper()
	if len(b) != 1+smt.NodeKeySize || b[0] != tableSMTRestoredGroup {
		t.Fatalf("malformed restored group key %x", b)
	}
	var g smt.NodeKey
	g.Version = binary.BigEndian.Uint64(b[1:])
	g.Depth = 0xffff - binary.BigEndian.Uint16(b[1+8+32:])
	copy(g.Path[:], b[9:41])
	for i := int(g.Depth); i < smt.MaxDepth; i++ {
		g.Path[i>>3] &^= 1 << (7 - uint(i&7))
	}
	if key := restoredGroupKey(nil, g); !bytes.Equal(key, b) {
		t.Fatalf("restored group key %x is not the key of group %s", b, g)
	}
	return g
}

// TestLayout2RestoredNodesRead: a store restored before restored nodes were grouped
// (layout 2: every node of the restored version alone in tableSMTNode) opens and serves
// the same proofs and values: a group not found is read alone.
func TestLayout2RestoredNodesRead(t *testing.T) {
	ctx := context.Background()
	const n, version = 5000, 4
	src, recs, root, writes := sourceState(t, n, version)
	dir := t.TempDir()
	d, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	sr, err := d.StartStateRestore(ctx, version, root.RootHash())
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < n; i += 1000 {
		p, err := smt.ProveRange(ctx, src, root, smt.KeyHash(recs[i+999].Key))
		if err != nil {
			t.Fatal(err)
		}
		if err := sr.AddChunk(ctx, recs[i:i+1000], p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := sr.Finish(ctx); err != nil {
		t.Fatal(err)
	}
	// Rewrite the store as layout 2 laid it out.
	nodes := restoredNodes(t, d)
	b := d.pdb.NewBatch()
	lo, hi := tableBounds(tableSMTRestoredGroup)
	if err := b.DeleteRange(lo, hi, nil); err != nil {
		t.Fatal(err)
	}
	for k, v := range nodes {
		if err := b.Set([]byte(k), v.value, nil); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := d.get(metaKey(metaState))
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	st["node_layout"] = 2
	raw, _ = json.Marshal(st)
	if err := b.Set(metaKey(metaState), raw, nil); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if d, err = Open(ctx, dir, Options{}); err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if got := restoredNodes(t, d); len(got) != len(writes) {
		t.Fatalf("rewritten store holds %d nodes, want %d", len(got), len(writes))
	}
	checkRangeProofs(t, d, src, root, recs, version, 211)
	count := 0
	if err := d.StateValues(ctx, version, 0, 0, func(uint64, []byte, []byte) error { count++; return nil }); err != nil || count != n {
		t.Fatalf("state values: %d of %d, %v", count, n, err)
	}
}

// sourceState returns a tree of n records ("k-i" = "v-i") written at version, the
// records in key-hash order, its root and Apply's nodes.
func sourceState(t *testing.T, n int, version uint64) (*smt.Overlay, []StateRecord, smt.RootRef, []smt.NodeWrite) {
	t.Helper()
	src := smt.NewOverlay(nil)
	recs := make([]StateRecord, n)
	ups := make([]smt.Update, n)
	for i := range recs {
		recs[i] = StateRecord{Key: fmt.Appendf(nil, "k-%d", i), Value: fmt.Appendf(nil, "v-%d", i)}
		ups[i] = smt.Update{KeyHash: smt.KeyHash(recs[i].Key), ValueHash: smt.ValueHash(recs[i].Value)}
	}
	slices.SortFunc(recs, func(a, b StateRecord) int {
		ka, kb := smt.KeyHash(a.Key), smt.KeyHash(b.Key)
		return bytes.Compare(ka[:], kb[:])
	})
	root, writes, err := smt.Apply(context.Background(), src, smt.EmptyRoot(), version, ups)
	if err != nil {
		t.Fatal(err)
	}
	src.Put(writes...)
	return src, recs, root, writes
}

// checkRangeProofs checks that d serves the source's range proof of every step-th record.
func checkRangeProofs(t *testing.T, d *DB, src *smt.Overlay, root smt.RootRef, recs []StateRecord, version uint64, step int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < len(recs); i += step {
		kh := smt.KeyHash(recs[i].Key)
		want, err := smt.ProveRange(ctx, src, root, kh)
		if err != nil {
			t.Fatal(err)
		}
		have, err := d.StateRangeProof(ctx, version, kh)
		if err != nil {
			t.Fatalf("range proof of record %d: %v", i, err)
		}
		if !slices.Equal(have.Siblings, want.Siblings) {
			t.Fatalf("range proof of record %d differs from the source's", i)
		}
	}
}

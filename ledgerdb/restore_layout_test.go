package ledgerdb

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"github.com/cockroachdb/pebble/v2"
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
	for c := half; c < len(ends); c++ {
		add(c, true)
	}
	got, err := sr.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.RootHash() != root.RootHash() || got.LeafCount != n {
		t.Fatalf("restored root %s/%d, want %s/%d", got.RootHash().Short(), got.LeafCount, root.RootHash().Short(), n)
	}
	// The node table holds exactly Apply's nodes.
	want := make(map[string][]byte, len(writes))
	for _, w := range writes {
		v, err := w.Node.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		want[string(smtNodeKey(nil, w.Key))] = v
	}
	lo, hi := tableBounds(tableSMTNode)
	it, err := d.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for ok := it.First(); ok; ok = it.Next() {
		if v, ok := want[string(it.Key())]; !ok || !bytes.Equal(v, it.Value()) {
			t.Fatalf("node %x: stored %x, Apply writes %x", it.Key(), it.Value(), v)
		}
		found++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if found != len(want) {
		t.Fatalf("store holds %d nodes, Apply writes %d", found, len(want))
	}
	for i := 0; i < n; i += 997 {
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

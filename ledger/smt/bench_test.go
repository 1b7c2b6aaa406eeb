package smt

import (
	"context"
	"encoding/binary"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/ledger"
)

const benchKeys = 1 << 20

var bench struct {
	once   sync.Once
	store  *Overlay
	root   RootRef
	leaves []Leaf
	err    error
}

func benchKey(i uint64) ledger.Hash {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], i)
	return KeyHash(b[:])
}

// benchTree returns an in-memory tree of 1M keys (built once per process with Apply).
func benchTree(b *testing.B) (*Overlay, RootRef, []Leaf) {
	bench.once.Do(func() {
		ups := make([]Update, benchKeys)
		for i := range ups {
			ups[i] = Update{KeyHash: benchKey(uint64(i)), ValueHash: benchKey(uint64(i) + 1<<40)}
		}
		bench.store = NewOverlay(nil)
		var w []NodeWrite
		bench.root, w, bench.err = Apply(context.Background(), bench.store, EmptyRoot(), 1, ups)
		bench.store.Put(w...)
		bench.leaves = sortedLeavesOf(ups)
	})
	if bench.err != nil {
		b.Fatal(bench.err)
	}
	return bench.store, bench.root, bench.leaves
}

func sortedLeavesOf(ups []Update) []Leaf {
	m := make(map[ledger.Hash]ledger.Hash, len(ups))
	for _, u := range ups {
		m[u.KeyHash] = u.ValueHash
	}
	return sortedLeaves(m)
}

// benchApply applies b.N versions of perVersion keys (half updates of existing keys,
// half new keys) on top of the 1M-key tree and reports the cost per key.
func benchApply(b *testing.B, perVersion int) {
	ctx := context.Background()
	base, root, _ := benchTree(b)
	store := NewOverlay(base)
	next := uint64(benchKeys)
	ups := make([]Update, perVersion)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j := range ups {
			k := next
			if j%2 == 0 {
				k = (next * 2654435761) % benchKeys // an existing key
			}
			next++
			ups[j] = Update{KeyHash: benchKey(k), ValueHash: benchKey(next)}
		}
		var w []NodeWrite
		var err error
		root, w, err = Apply(ctx, store, root, uint64(i)+2, ups)
		if err != nil {
			b.Fatal(err)
		}
		store.Put(w...)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*perVersion), "ns/key")
}

func BenchmarkApply2KeysPerVersion(b *testing.B)    { benchApply(b, 2) }
func BenchmarkApply100KeysPerVersion(b *testing.B)  { benchApply(b, 100) }
func BenchmarkApply5000KeysPerVersion(b *testing.B) { benchApply(b, 5000) }

func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	store, root, leaves := benchTree(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, ok, err := Get(ctx, store, root, leaves[(i*7919)%len(leaves)].KeyHash); !ok || err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProve(b *testing.B) {
	ctx := context.Background()
	store, root, leaves := benchTree(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Prove(ctx, store, root, leaves[(i*7919)%len(leaves)].KeyHash); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkProveRange(b *testing.B) {
	ctx := context.Background()
	store, root, leaves := benchTree(b)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := ProveRange(ctx, store, root, leaves[(i*7919)%len(leaves)].KeyHash); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyProof(b *testing.B) {
	ctx := context.Background()
	store, root, leaves := benchTree(b)
	l := leaves[12345]
	p, err := Prove(ctx, store, root, l.KeyHash)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if err := p.Verify(root.Hash, l.KeyHash, &l.ValueHash); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuilder restores the 1M-leaf tree in chunks of 10k leaves, verifying each
// chunk and collecting the frozen nodes as a store would; it reports leaves/s. The
// baseline is BenchmarkBuilderBaselineHashing: SHA-256 of the leaf and internal hashes
// alone.
func BenchmarkBuilder(b *testing.B) {
	const chunk = 10000
	ctx := context.Background()
	store, root, leaves := benchTree(b)
	var proofs []RangeProof
	for start := 0; start < len(leaves); start += chunk {
		end := min(start+chunk, len(leaves))
		p, err := ProveRange(ctx, store, root, leaves[end-1].KeyHash)
		if err != nil {
			b.Fatal(err)
		}
		proofs = append(proofs, p)
	}
	b.ResetTimer()
	var nodes int
	for i := 0; i < b.N; i++ {
		bl := NewBuilder(root.Hash, 9)
		nodes = 0
		for c, start := 0, 0; start < len(leaves); c, start = c+1, start+chunk {
			frozen, err := bl.AddChunk(leaves[start:min(start+chunk, len(leaves))], proofs[c])
			if err != nil {
				b.Fatal(err)
			}
			nodes += len(frozen)
		}
		r, last, err := bl.Finish()
		if err != nil || r != (RootRef{Key: NodeKey{Version: 9}, Hash: root.Hash, LeafCount: root.LeafCount}) {
			b.Fatal(err)
		}
		nodes += len(last)
	}
	b.ReportMetric(float64(b.N*len(leaves))/b.Elapsed().Seconds(), "leaves/s")
	b.ReportMetric(float64(nodes)/float64(len(leaves)), "nodes/leaf")
}

// BenchmarkBuilderFunc is BenchmarkBuilder through AddChunkFunc, the store's path: nodes
// handed out encoded, in runs, to a callback that only counts their bytes.
func BenchmarkBuilderFunc(b *testing.B) {
	const chunk = 10000
	ctx := context.Background()
	store, root, leaves := benchTree(b)
	var proofs []RangeProof
	for start := 0; start < len(leaves); start += chunk {
		p, err := ProveRange(ctx, store, root, leaves[min(start+chunk, len(leaves))-1].KeyHash)
		if err != nil {
			b.Fatal(err)
		}
		proofs = append(proofs, p)
	}
	b.ResetTimer()
	var nodes, size int
	count := func(k, v []byte) error {
		nodes++
		size += len(k) + len(v)
		return nil
	}
	for i := 0; i < b.N; i++ {
		bl := NewBuilder(root.Hash, 9)
		nodes, size = 0, 0
		for c, start := 0, 0; start < len(leaves); c, start = c+1, start+chunk {
			if err := bl.AddChunkFunc(leaves[start:min(start+chunk, len(leaves))], proofs[c], count); err != nil {
				b.Fatal(err)
			}
		}
		r, last, err := bl.Finish()
		if err != nil || r.Hash != root.Hash {
			b.Fatal(err)
		}
		nodes += len(last)
	}
	b.ReportMetric(float64(b.N*len(leaves))/b.Elapsed().Seconds(), "leaves/s")
	b.ReportMetric(float64(nodes)/float64(len(leaves)), "nodes/leaf")
	b.ReportMetric(float64(size)/float64(len(leaves)), "bytes/leaf")
}

// BenchmarkBuilderBaselineHashing hashes every leaf and, as the tree has about one
// internal node per leaf, one internal node per leaf: the floor under BenchmarkBuilder.
func BenchmarkBuilderBaselineHashing(b *testing.B) {
	_, _, leaves := benchTree(b)
	b.ResetTimer()
	var acc ledger.Hash
	for i := 0; i < b.N; i++ {
		for j := range leaves {
			h := LeafHash(&leaves[j].KeyHash, &leaves[j].ValueHash)
			acc = InternalHash(&acc, &h)
		}
	}
	b.ReportMetric(float64(b.N*len(leaves))/b.Elapsed().Seconds(), "leaves/s")
}

func BenchmarkInternalHash(b *testing.B) {
	l, r := benchKey(1), benchKey(2)
	for i := 0; i < b.N; i++ {
		l = InternalHash(&l, &r)
	}
}

// benchUpdateWrites returns the node writes of one version of 65536 updates (half new
// keys) in the benchmark tree.
func benchUpdateWrites(b *testing.B) []NodeWrite {
	b.Helper()
	ctx := context.Background()
	base, root, _ := benchTree(b)
	ups := make([]Update, 1<<16)
	for i := range ups {
		ups[i] = Update{KeyHash: benchKey(uint64(i) * 31), ValueHash: benchKey(uint64(i) + 1<<41)}
	}
	_, writes, err := Apply(ctx, NewOverlay(base), root, 2, ups)
	if err != nil {
		b.Fatal(err)
	}
	return writes
}

// BenchmarkGroupNodeWrites groups the nodes one version of 65536 updates (half new
// keys) writes in a tree of 1M leaves (a bulk commit of node init), and reports nodes/s;
// the baseline in the same run sorts the same nodes by key alone.
func BenchmarkGroupNodeWrites(b *testing.B) {
	writes := benchUpdateWrites(b)
	b.ResetTimer()
	var grouped, sorted time.Duration
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		if err := GroupNodeWrites(writes, func(NodeKey, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
		grouped += time.Since(t0)
		ws := slices.Clone(writes)
		t0 = time.Now()
		slices.SortFunc(ws, func(x, y NodeWrite) int { return compareNodeKeys(&x.Key, &y.Key) })
		sorted += time.Since(t0)
	}
	n := float64(len(writes) * b.N)
	b.ReportMetric(n/grouped.Seconds(), "nodes/s")
	b.ReportMetric(n/sorted.Seconds(), "baseline-sort-nodes/s")
}

// BenchmarkDecodeGroup decodes the groups of the same update (benchUpdateWrites): compact
// groups as this code writes them, and, as the baseline of the same run, the same groups
// in the plain encoding of store layouts 2 and 3, which needs no hashing to decode.
func BenchmarkDecodeGroup(b *testing.B) {
	writes := benchUpdateWrites(b)
	var err error
	type group struct {
		key            NodeKey
		compact, plain []byte
	}
	var groups []group
	var compactBytes, plainBytes int
	if err := GroupNodeWrites(writes, func(k NodeKey, enc []byte) error {
		nodes, err := DecodeGroup(nil, k, enc)
		if err != nil {
			return err
		}
		g := group{key: k, compact: slices.Clone(enc), plain: appendPlainGroup(nil, nodes)}
		compactBytes += len(g.compact)
		plainBytes += len(g.plain)
		groups = append(groups, g)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var compact, plain time.Duration
	var dst []NodeWrite
	for i := 0; i < b.N; i++ {
		t0 := time.Now()
		for _, g := range groups {
			if dst, err = DecodeGroup(dst[:0], g.key, g.compact); err != nil {
				b.Fatal(err)
			}
		}
		compact += time.Since(t0)
		t0 = time.Now()
		for _, g := range groups {
			if dst, err = DecodeGroup(dst[:0], g.key, g.plain); err != nil {
				b.Fatal(err)
			}
		}
		plain += time.Since(t0)
	}
	n := float64(len(groups) * b.N)
	b.ReportMetric(n/compact.Seconds(), "groups/s")
	b.ReportMetric(n/plain.Seconds(), "baseline-plain-groups/s")
	b.ReportMetric(float64(compactBytes)/float64(plainBytes), "compact/plain-bytes")
}

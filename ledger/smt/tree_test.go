package smt

import (
	"context"
	"errors"
	"maps"
	"slices"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"pgregory.net/rapid"
)

// snap is the model of the tree at one version.
type snap struct {
	version uint64
	root    RootRef
	m       map[ledger.Hash]ledger.Hash
}

func sortedLeaves(m map[ledger.Hash]ledger.Hash) []Leaf {
	leaves := make([]Leaf, 0, len(m))
	for k, v := range m {
		leaves = append(leaves, Leaf{k, v})
	}
	slices.SortFunc(leaves, func(a, b Leaf) int { return cmpUpdate(Update{KeyHash: a.KeyHash}, Update{KeyHash: b.KeyHash}) })
	return leaves
}

// drawHash draws 32 random bytes.
func drawHash(t *rapid.T, label string) ledger.Hash {
	var h ledger.Hash
	copy(h[:], rapid.SliceOfN(rapid.Byte(), 32, 32).Draw(t, label))
	return h
}

// drawKey draws a key hash that shares a random number of leading bits with one of the
// bases (often many, to force deep collisions) and differs from it at the next bit.
func drawKey(t *rapid.T, bases []ledger.Hash) ledger.Hash {
	base := bases[rapid.IntRange(0, len(bases)-1).Draw(t, "base")]
	p := rapid.OneOf(rapid.IntRange(0, 255), rapid.SampledFrom([]int{0, 1, 7, 8, 63, 64, 128, 200, 250, 254, 255})).Draw(t, "prefix")
	k := drawHash(t, "rand")
	for i := 0; i < p; i++ {
		if bit(&base, i) != bit(&k, i) {
			k[i/8] ^= 0x80 >> (i % 8)
		}
	}
	if bit(&base, p) == bit(&k, p) {
		k[p/8] ^= 0x80 >> (p % 8)
	}
	return k
}

// drawBatch draws one version's write set against model m and applies it to m.
func drawBatch(t *rapid.T, bases []ledger.Hash, m map[ledger.Hash]ledger.Hash) []Update {
	n := rapid.IntRange(0, 8).Draw(t, "batch")
	seen := map[ledger.Hash]bool{}
	var ups []Update
	for range n {
		var u Update
		existing := slices.Collect(maps.Keys(m))
		slices.SortFunc(existing, func(a, b ledger.Hash) int { return cmpUpdate(Update{KeyHash: a}, Update{KeyHash: b}) })
		op := rapid.IntRange(0, 3).Draw(t, "op")
		if len(existing) == 0 {
			op = 0
		}
		switch op {
		case 0: // insert (or overwrite by chance)
			u = Update{KeyHash: drawKey(t, bases), ValueHash: drawHash(t, "value")}
		case 1: // update
			u = Update{KeyHash: rapid.SampledFrom(existing).Draw(t, "key"), ValueHash: drawHash(t, "value")}
		case 2: // delete
			u = Update{KeyHash: rapid.SampledFrom(existing).Draw(t, "key"), Delete: true}
		case 3: // delete an absent key
			u = Update{KeyHash: drawKey(t, bases), Delete: true}
		}
		if seen[u.KeyHash] {
			continue
		}
		seen[u.KeyHash] = true
		ups = append(ups, u)
	}
	for _, u := range ups {
		if u.Delete {
			delete(m, u.KeyHash)
		} else {
			m[u.KeyHash] = u.ValueHash
		}
	}
	return ups
}

// buildHistory applies random versions to an in-memory store, checking the root of each
// version against the reference, and returns the store and every version's model.
func buildHistory(t *rapid.T) (*encStore, []snap, []ledger.Hash) {
	ctx := context.Background()
	bases := []ledger.Hash{drawHash(t, "base0"), drawHash(t, "base1")}
	store := newEncStore(t)
	m := map[ledger.Hash]ledger.Hash{}
	hist := []snap{{root: EmptyRoot(), m: maps.Clone(m)}}
	version := uint64(0)
	for range rapid.IntRange(1, 10).Draw(t, "blocks") {
		nv := rapid.IntRange(1, 3).Draw(t, "versions")
		var batches [][]Update
		var models []map[ledger.Hash]ledger.Hash
		for range nv {
			batches = append(batches, drawBatch(t, bases, m))
			models = append(models, maps.Clone(m))
		}
		prev := hist[len(hist)-1].root
		var roots []RootRef
		if nv == 1 && rapid.Bool().Draw(t, "single") {
			root, w, err := Apply(ctx, store, prev, version+1, batches[0])
			if err != nil {
				t.Fatalf("apply: %v", err)
			}
			store.Put(w...)
			roots = []RootRef{root}
		} else {
			var w []NodeWrite
			var err error
			roots, w, err = ApplyBlock(ctx, store, prev, version+1, batches)
			if err != nil {
				t.Fatalf("apply block: %v", err)
			}
			store.Put(w...)
		}
		for i, root := range roots {
			version++
			want := refRoot(models[i])
			if root.RootHash() != want || root.LeafCount != uint64(len(models[i])) {
				t.Fatalf("version %d: root %s/%d, reference %s/%d", version, root.RootHash().Short(), root.LeafCount, want.Short(), len(models[i]))
			}
			if err := root.Validate(); err != nil {
				t.Fatalf("version %d: %v", version, err)
			}
			hist = append(hist, snap{version: version, root: root, m: models[i]})
		}
	}
	return store, hist, bases
}

func TestRapidHistory(t *testing.T) {
	ctx := context.Background()
	deepest := 0 // the longest proof seen, to check that keys do collide deeply
	defer func() {
		if !t.Failed() && deepest < 200 {
			t.Errorf("deepest proof has %d siblings: the key generator no longer forces deep collisions", deepest)
		}
	}()
	rapid.Check(t, func(t *rapid.T) {
		store, hist, bases := buildHistory(t)
		for _, s := range hist {
			leaves := sortedLeaves(s.m)
			// Get and inclusion proofs of every key of the version.
			for i, l := range leaves {
				v, ok, err := Get(ctx, store, s.root, l.KeyHash)
				if err != nil || !ok || v != l.ValueHash {
					t.Fatalf("version %d: get %s = %s %v %v", s.version, l.KeyHash.Short(), v.Short(), ok, err)
				}
				k, v, err := LeafAtIndex(ctx, store, s.root, uint64(i))
				if err != nil || k != l.KeyHash || v != l.ValueHash {
					t.Fatalf("version %d: leaf at %d: %s %v", s.version, i, k.Short(), err)
				}
				p, err := Prove(ctx, store, s.root, l.KeyHash)
				if err != nil {
					t.Fatalf("prove: %v", err)
				}
				checkProof(t, s, p, l.KeyHash, &l.ValueHash)
				deepest = max(deepest, len(p.Siblings))
			}
			if _, _, err := LeafAtIndex(ctx, store, s.root, uint64(len(leaves))); err == nil {
				t.Fatalf("leaf past the end found")
			}
			var walked []Leaf
			start := uint64(rapid.IntRange(0, len(leaves)).Draw(t, "start"))
			err := Leaves(ctx, store, s.root, start, func(i uint64, l Leaf) error {
				if i != start+uint64(len(walked)) {
					t.Fatalf("leaves: index %d", i)
				}
				walked = append(walked, l)
				return nil
			})
			if err != nil || !slices.Equal(walked, leaves[start:]) {
				t.Fatalf("version %d: leaves from %d: %d leaves, %v", s.version, start, len(walked), err)
			}
			// Non-inclusion proofs of absent keys near the tree's keys.
			for range 3 {
				k := drawKey(t, bases)
				if _, in := s.m[k]; in {
					continue
				}
				if _, ok, err := Get(ctx, store, s.root, k); ok || err != nil {
					t.Fatalf("absent key found: %v", err)
				}
				p, err := Prove(ctx, store, s.root, k)
				if err != nil {
					t.Fatalf("prove absent: %v", err)
				}
				checkProof(t, s, p, k, nil)
			}
			// Range proofs at every chunk boundary of a random chunking.
			for _, end := range drawChunkEnds(t, len(leaves)) {
				rp, err := ProveRange(ctx, store, s.root, leaves[end-1].KeyHash)
				if err != nil {
					t.Fatalf("prove range: %v", err)
				}
				checkRangeProof(t, s, leaves[:end], rp, bases)
			}
		}
	})
}

// drawChunkEnds draws increasing chunk ends covering n leaves.
func drawChunkEnds(t *rapid.T, n int) []int {
	var ends []int
	for i := 0; i < n; {
		i += rapid.IntRange(1, 1+n/2).Draw(t, "chunk")
		ends = append(ends, min(i, n))
	}
	return ends
}

// checkProof checks that p verifies for (key, value) and that a single-bit change to the
// encoded proof, the key, the value or the root makes it fail.
func checkProof(t *rapid.T, s snap, p Proof, key ledger.Hash, value *ledger.Hash) {
	root := s.root.RootHash()
	if err := p.Verify(root, key, value); err != nil {
		t.Fatalf("version %d: proof of %s: %v", s.version, key.Short(), err)
	}
	if value != nil {
		if err := p.Verify(root, key, nil); err == nil {
			t.Fatalf("inclusion proof accepted as non-inclusion")
		}
	} else if err := p.Verify(root, key, &root); err == nil {
		t.Fatalf("non-inclusion proof accepted as inclusion")
	}
	enc, err := p.MarshalBinary()
	if err != nil {
		t.Fatalf("encode proof: %v", err)
	}
	dec, err := DecodeProof(enc)
	if err != nil || dec.Verify(root, key, value) != nil {
		t.Fatalf("decoded proof: %v", err)
	}
	i := rapid.IntRange(0, 8*len(enc)-1).Draw(t, "proof bit")
	bad := slices.Clone(enc)
	bad[i/8] ^= 0x80 >> (i % 8)
	if dec, err := DecodeProof(bad); err == nil && dec.Verify(root, key, value) == nil {
		t.Fatalf("proof with bit %d flipped verifies", i)
	}
	j := rapid.IntRange(0, 255).Draw(t, "hash bit")
	if err := p.Verify(flip(root, j), key, value); err == nil {
		t.Fatalf("proof verifies against a changed root")
	}
	if value != nil {
		v := flip(*value, j)
		if err := p.Verify(root, key, &v); err == nil {
			t.Fatalf("proof verifies with a changed value")
		}
	}
	k := flip(key, j)
	_, present := s.m[k]
	// A non-inclusion proof also proves absent every key sharing the proven path.
	wantOK := value == nil && !present && j >= len(p.Siblings)
	if err := p.Verify(root, k, value); (err == nil) != wantOK {
		t.Fatalf("proof with key bit %d flipped: err %v, want ok=%v", j, err, wantOK)
	}
}

func flip(h ledger.Hash, i int) ledger.Hash {
	h[i/8] ^= 0x80 >> (i % 8)
	return h
}

// checkRangeProof checks that the range proof verifies for the leaves and rejects
// tampered proofs and missing, extra, reordered, duplicated or altered leaves.
func checkRangeProof(t *rapid.T, s snap, leaves []Leaf, rp RangeProof, bases []ledger.Hash) {
	root := s.root.RootHash()
	if err := VerifyRange(root, leaves, rp); err != nil {
		t.Fatalf("version %d: range proof of %d leaves: %v", s.version, len(leaves), err)
	}
	enc, err := rp.MarshalBinary()
	if err != nil {
		t.Fatalf("encode range proof: %v", err)
	}
	if dec, err := DecodeRangeProof(enc); err != nil || VerifyRange(root, leaves, dec) != nil {
		t.Fatalf("decoded range proof: %v", err)
	}
	i := rapid.IntRange(0, 8*len(enc)-1).Draw(t, "range bit")
	bad := slices.Clone(enc)
	bad[i/8] ^= 0x80 >> (i % 8)
	if dec, err := DecodeRangeProof(bad); err == nil && VerifyRange(root, leaves, dec) == nil {
		t.Fatalf("range proof with bit %d flipped verifies", i)
	}
	if err := VerifyRange(flip(root, rapid.IntRange(0, 255).Draw(t, "root bit")), leaves, rp); err == nil {
		t.Fatalf("range proof verifies against a changed root")
	}
	if bad, what := tamperLeaves(t, leaves, s.m, bases); bad != nil {
		if err := VerifyRange(root, bad, rp); err == nil {
			t.Fatalf("range proof verifies with %s", what)
		}
	}
}

// tamperLeaves returns a corrupted copy of leaves (nil if none applies) and what was done.
func tamperLeaves(t *rapid.T, leaves []Leaf, m map[ledger.Hash]ledger.Hash, bases []ledger.Hash) ([]Leaf, string) {
	bad := slices.Clone(leaves)
	i := rapid.IntRange(0, len(bad)-1).Draw(t, "tamper at")
	switch rapid.IntRange(0, 4).Draw(t, "tamper") {
	case 0:
		if len(bad) == 1 {
			return nil, ""
		}
		return slices.Delete(bad, i, i+1), "a missing leaf"
	case 1:
		k := drawKey(t, bases)
		if _, in := m[k]; in || !less(&k, &bad[len(bad)-1].KeyHash) {
			return nil, ""
		}
		bad = append(bad, Leaf{k, drawHash(t, "v")})
		slices.SortFunc(bad, func(a, b Leaf) int { return cmpUpdate(Update{KeyHash: a.KeyHash}, Update{KeyHash: b.KeyHash}) })
		return bad, "an extra leaf"
	case 2:
		if len(bad) == 1 {
			return nil, ""
		}
		j := rapid.IntRange(0, len(bad)-1).Draw(t, "swap")
		if i == j {
			return nil, ""
		}
		bad[i], bad[j] = bad[j], bad[i]
		return bad, "reordered leaves"
	case 3:
		return slices.Insert(bad, i, bad[i]), "a duplicated leaf"
	default:
		j := rapid.IntRange(0, 511).Draw(t, "alter bit")
		if j < 256 {
			bad[i].KeyHash = flip(bad[i].KeyHash, j)
		} else {
			bad[i].ValueHash = flip(bad[i].ValueHash, j-256)
		}
		return bad, "an altered leaf"
	}
}

func TestRapidBuilder(t *testing.T) {
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		store, hist, bases := buildHistory(t)
		s := hist[rapid.IntRange(0, len(hist)-1).Draw(t, "restore version")]
		leaves := sortedLeaves(s.m)
		root := s.root.RootHash()
		const restoreVersion = 1000
		b := NewBuilder(root, restoreVersion)
		verifier := NewChunkVerifier(root)
		restored := NewOverlay(nil)
		ends := drawChunkEnds(t, len(leaves))
		resumeAt := rapid.IntRange(0, len(ends)).Draw(t, "resume at")
		start := 0
		for ci, end := range ends {
			if ci == resumeAt {
				cp := b.Checkpoint()
				var err error
				if b, err = ResumeBuilder(root, restoreVersion, cp); err != nil {
					t.Fatalf("resume: %v", err)
				}
				if !slices.Equal(b.Checkpoint(), cp) {
					t.Fatalf("checkpoint does not round-trip")
				}
				if _, err := ResumeBuilder(root, restoreVersion+1, cp); err == nil {
					t.Fatalf("checkpoint resumed at another version")
				}
			}
			rp, err := ProveRange(ctx, store, s.root, leaves[end-1].KeyHash)
			if err != nil {
				t.Fatalf("prove range: %v", err)
			}
			chunk := leaves[start:end]
			if bad, what := tamperChunk(t, leaves, start, end, s.m, bases); bad != nil {
				if _, err := b.AddChunk(bad, rp); err == nil {
					t.Fatalf("builder accepted a chunk with %s", what)
				}
			}
			frozen, err := b.AddChunk(chunk, rp)
			if err != nil {
				t.Fatalf("chunk %d [%d,%d): %v", ci, start, end, err)
			}
			restored.Put(frozen...)
			if nodes, err := verifier.AddChunk(chunk, rp); err != nil || len(nodes) != 0 {
				t.Fatalf("verifier: chunk %d: %d nodes, %v", ci, len(nodes), err)
			}
			start = end
		}
		if resumeAt == len(ends) {
			var err error
			if b, err = ResumeBuilder(root, restoreVersion, b.Checkpoint()); err != nil {
				t.Fatalf("resume at end: %v", err)
			}
		}
		if r, nodes, err := verifier.Finish(); err != nil || len(nodes) != 0 || r.RootHash() != root {
			t.Fatalf("verifier finish: %v", err)
		}
		got, last, err := b.Finish()
		if err != nil {
			t.Fatalf("finish: %v", err)
		}
		restored.Put(last...)
		if got.RootHash() != root || got.LeafCount != uint64(len(leaves)) {
			t.Fatalf("restored root %s/%d, want %s/%d", got.RootHash().Short(), got.LeafCount, root.Short(), len(leaves))
		}
		// The builder writes exactly the nodes Apply writes for the same set.
		ups := make([]Update, len(leaves))
		for i, l := range leaves {
			ups[i] = Update{KeyHash: l.KeyHash, ValueHash: l.ValueHash}
		}
		fresh, writes, err := Apply(ctx, NewOverlay(nil), EmptyRoot(), restoreVersion, ups)
		if err != nil {
			t.Fatalf("fresh apply: %v", err)
		}
		if fresh != got {
			t.Fatalf("restored root ref %+v, fresh apply %+v", got, fresh)
		}
		want := NewOverlay(nil)
		want.Put(writes...)
		if !maps.Equal(want.nodes, restored.nodes) {
			t.Fatalf("builder wrote %d nodes, apply %d, or they differ", restored.Len(), want.Len())
		}
		// The restored tree serves reads and proofs and takes later write sets.
		for i, l := range leaves {
			if k, _, err := LeafAtIndex(ctx, restored, got, uint64(i)); err != nil || k != l.KeyHash {
				t.Fatalf("restored leaf at %d: %v", i, err)
			}
			p, err := Prove(ctx, restored, got, l.KeyHash)
			if err != nil || p.Verify(root, l.KeyHash, &l.ValueHash) != nil {
				t.Fatalf("restored proof: %v", err)
			}
		}
		m := maps.Clone(s.m)
		next, w, err := Apply(ctx, restored, got, restoreVersion+1, drawBatch(t, bases, m))
		if err != nil {
			t.Fatalf("apply after restore: %v", err)
		}
		restored.Put(w...)
		if next.RootHash() != refRoot(m) {
			t.Fatalf("root after restore and update differs from reference")
		}
		if _, _, err := b.Finish(); err == nil {
			t.Fatalf("finish twice")
		}
	})
}

// tamperChunk returns a corrupted version of the chunk leaves[start:end] (nil if none
// applies): a missing, extra, reordered, duplicated or altered leaf.
func tamperChunk(t *rapid.T, leaves []Leaf, start, end int, m map[ledger.Hash]ledger.Hash, bases []ledger.Hash) ([]Leaf, string) {
	chunk := slices.Clone(leaves[start:end])
	i := rapid.IntRange(0, len(chunk)-1).Draw(t, "tamper at")
	switch rapid.IntRange(0, 5).Draw(t, "tamper") {
	case 0:
		if len(chunk) == 1 {
			return nil, ""
		}
		return slices.Delete(chunk, i, i+1), "a missing leaf"
	case 1:
		k := drawKey(t, bases)
		if _, in := m[k]; in {
			return nil, ""
		}
		chunk = append(chunk, Leaf{k, drawHash(t, "v")})
		slices.SortFunc(chunk, func(a, b Leaf) int { return cmpUpdate(Update{KeyHash: a.KeyHash}, Update{KeyHash: b.KeyHash}) })
		return chunk, "an extra leaf"
	case 2:
		if len(chunk) == 1 {
			return nil, ""
		}
		j := rapid.IntRange(0, len(chunk)-1).Draw(t, "swap")
		if i == j {
			return nil, ""
		}
		chunk[i], chunk[j] = chunk[j], chunk[i]
		return chunk, "reordered leaves"
	case 3:
		return slices.Insert(chunk, i, chunk[i]), "a duplicated leaf"
	case 4:
		if start == 0 {
			return nil, ""
		}
		return append([]Leaf{leaves[start-1]}, chunk...), "a leaf of the previous chunk"
	default:
		j := rapid.IntRange(0, 511).Draw(t, "alter bit")
		if j < 256 {
			chunk[i].KeyHash = flip(chunk[i].KeyHash, j)
		} else {
			chunk[i].ValueHash = flip(chunk[i].ValueHash, j-256)
		}
		return chunk, "an altered leaf"
	}
}

func TestEmptyTree(t *testing.T) {
	ctx := context.Background()
	store := NewOverlay(nil)
	var zero RootRef
	if zero.RootHash() != refRoot(nil) || EmptyRoot().RootHash() != PlaceholderHash {
		t.Fatal("empty root hash")
	}
	k := KeyHash([]byte("k"))
	if _, ok, err := Get(ctx, store, zero, k); ok || err != nil {
		t.Fatalf("get in empty tree: %v %v", ok, err)
	}
	p, err := Prove(ctx, store, zero, k)
	if err != nil || p.Verify(PlaceholderHash, k, nil) != nil {
		t.Fatalf("empty proof: %v", err)
	}
	b := NewBuilder(PlaceholderHash, 3)
	if r, w, err := b.Finish(); err != nil || !r.IsEmpty() || len(w) != 0 {
		t.Fatalf("empty restore: %v", err)
	}
	if _, _, err := NewBuilder(KeyHash(nil), 3).Finish(); !errors.Is(err, ErrRootMismatch) {
		t.Fatalf("empty restore of a non-empty root: %v", err)
	}
	// Deleting the last key returns to the empty tree.
	v := ValueHash([]byte("v"))
	r, w, err := Apply(ctx, store, zero, 1, []Update{{KeyHash: k, ValueHash: v}})
	if err != nil || !r.IsLeaf || r.Hash != LeafHash(&k, &v) {
		t.Fatalf("one leaf: %+v %v", r, err)
	}
	store.Put(w...)
	r, w, err = Apply(ctx, store, r, 2, []Update{{KeyHash: k, Delete: true}})
	if err != nil || !r.IsEmpty() || len(w) != 0 {
		t.Fatalf("delete last: %+v %v", r, err)
	}
}

func TestApplyRejects(t *testing.T) {
	ctx := context.Background()
	store := NewOverlay(nil)
	k := KeyHash([]byte("k"))
	r, w, err := Apply(ctx, store, EmptyRoot(), 5, []Update{{KeyHash: k}, {KeyHash: KeyHash([]byte("j"))}})
	if err != nil {
		t.Fatal(err)
	}
	store.Put(w...)
	if _, _, err := Apply(ctx, store, r, 5, []Update{{KeyHash: k, Delete: true}}); err == nil {
		t.Fatal("apply at the root's own version accepted")
	}
	if _, _, err := Apply(ctx, store, r, 6, []Update{{KeyHash: k}, {KeyHash: k, Delete: true}}); err == nil {
		t.Fatal("duplicate key accepted")
	}
	// A missing node is reported, wrapped.
	if _, _, err := Get(ctx, NewOverlay(nil), r, k); !errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("missing node: %v", err)
	}
	// Unchanged values write nothing and keep the root.
	r2, w, err := Apply(ctx, store, r, 6, []Update{{KeyHash: k}, {KeyHash: KeyHash([]byte("absent")), Delete: true}})
	if err != nil || r2 != r || len(w) != 0 {
		t.Fatalf("no-op update: %+v %d writes %v", r2, len(w), err)
	}
}

func TestHashesMatchLedger(t *testing.T) {
	a, b := KeyHash([]byte("a")), KeyHash([]byte("b"))
	if LeafHash(&a, &b) != ledger.HashOf(ledger.DomainSMTLeaf, a[:], b[:]) {
		t.Fatal("leaf hash")
	}
	if InternalHash(&a, &b) != ledger.HashOf(ledger.DomainSMTInternal, a[:], b[:]) {
		t.Fatal("internal hash")
	}
	if ValueHash([]byte("x")) != ledger.HashOf(ledger.DomainStateValue, []byte("x")) {
		t.Fatal("value hash")
	}
	for d := 0; d <= 256; d++ {
		p := prefix(a, d)
		for i := 0; i < 256; i++ {
			if want := i < d && bit(&a, i) == 1; (bit(&p, i) == 1) != want {
				t.Fatalf("prefix(%d) bit %d", d, i)
			}
		}
	}
}

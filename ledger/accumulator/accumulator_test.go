package accumulator

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	"pgregory.net/rapid"

	"github.com/ledgervault/ledgervault/ledger"
)

// refRoot is the RFC 6962 Merkle Tree Hash, written from the RFC's definition.
func refRoot(leaves []ledger.Hash) ledger.Hash {
	switch len(leaves) {
	case 0:
		return sha256.Sum256(nil)
	case 1:
		return sha256.Sum256(append([]byte{0}, leaves[0][:]...))
	}
	k := 1
	for k*2 < len(leaves) {
		k *= 2
	}
	l, r := refRoot(leaves[:k]), refRoot(leaves[k:])
	return sha256.Sum256(append(append([]byte{1}, l[:]...), r[:]...))
}

// fataler is what testing.TB and rapid.T share.
type fataler interface {
	Fatalf(string, ...any)
	Fatal(...any)
}

// memTree is a store of nodes as ledgerdb keeps them: every node the builder reports.
type memTree struct {
	nodes  map[NodeID]ledger.Hash
	leaves []ledger.Hash
	b      *Builder
	roots  []ledger.Hash // roots[n] = root at size n
}

func newMemTree() *memTree {
	return &memTree{nodes: map[NodeID]ledger.Hash{}, b: NewBuilder(), roots: []ledger.Hash{EmptyRoot()}}
}

func (m *memTree) append(t fataler, h ledger.Hash) {
	if err := m.b.Append(h, func(id NodeID, nh ledger.Hash) {
		if _, dup := m.nodes[id]; dup {
			t.Fatalf("node %s reported twice", id)
		}
		m.nodes[id] = nh
	}); err != nil {
		t.Fatal(err)
	}
	m.leaves = append(m.leaves, h)
	m.roots = append(m.roots, m.b.Root())
}

func (m *memTree) get(_ context.Context, id NodeID) (ledger.Hash, error) {
	h, ok := m.nodes[id]
	if !ok {
		return ledger.Hash{}, fmt.Errorf("node %s not stored", id)
	}
	return h, nil
}

func leafN(i uint64) ledger.Hash {
	return ledger.HashOf(ledger.DomainTransactionInfo, []byte(fmt.Sprint(i)))
}

func buildTree(t fataler, n uint64) *memTree {
	m := newMemTree()
	for i := uint64(0); i < n; i++ {
		m.append(t, leafN(i))
	}
	return m
}

func TestRootsMatchReference(t *testing.T) {
	m := buildTree(t, 300)
	ctx := context.Background()
	for n := 0; n <= 300; n++ {
		want := refRoot(m.leaves[:n])
		if m.roots[n] != want {
			t.Fatalf("builder root at %d = %s, want %s", n, m.roots[n], want)
		}
		got, err := RootAt(ctx, m.get, uint64(n))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Fatalf("RootAt(%d) = %s, want %s", n, got, want)
		}
	}
}

func TestRapidRootAndResume(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Uint64Range(0, 600).Draw(t, "n")
		k := rapid.Uint64Range(0, n).Draw(t, "k")
		m := newMemTree()
		for i := uint64(0); i < n; i++ {
			m.append(t, ledger.HashOf(ledger.DomainTransactionInfo, rapid.SliceOfN(rapid.Byte(), 1, 8).Draw(t, "leaf")))
		}
		if got, want := m.b.Root(), refRoot(m.leaves); got != want {
			t.Fatalf("root at %d = %s, want %s", n, got, want)
		}
		// Resume from the frontier stored at k and append the rest.
		ctx := context.Background()
		frontier, err := getAll(ctx, m.get, FrontierIDs(k))
		if err != nil {
			t.Fatal(err)
		}
		b, err := NewBuilderFromFrontier(k, frontier)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range m.leaves[k:] {
			if err := b.Append(h, nil); err != nil {
				t.Fatal(err)
			}
		}
		if b.Root() != m.b.Root() {
			t.Fatalf("resumed builder at %d: root %s, want %s", k, b.Root(), m.b.Root())
		}
	})
}

func TestRapidInclusion(t *testing.T) {
	m := buildTree(t, 1100)
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Uint64Range(1, 1100).Draw(t, "n")
		i := rapid.Uint64Range(0, n-1).Draw(t, "i")
		root := m.roots[n]
		p, err := ProveInclusion(ctx, m.get, i, n)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		p2, err := DecodeInclusionProof(enc)
		if err != nil {
			t.Fatal(err)
		}
		if err := VerifyInclusion(root, n, i, m.leaves[i], p2); err != nil {
			t.Fatalf("valid proof of %d in %d rejected: %v", i, n, err)
		}
		// A different leaf must fail.
		other := rapid.Uint64Range(0, n-1).Draw(t, "other")
		if m.leaves[other] != m.leaves[i] {
			if err := VerifyInclusion(root, n, i, m.leaves[other], p2); !errors.Is(err, ErrRootMismatch) {
				t.Fatalf("wrong leaf accepted: %v", err)
			}
		}
		// Any flipped bit of the proof must fail.
		if len(p2.Siblings) > 0 {
			j := rapid.IntRange(0, len(p2.Siblings)-1).Draw(t, "j")
			bit := rapid.IntRange(0, 255).Draw(t, "bit")
			bad := InclusionProof{Siblings: append([]ledger.Hash(nil), p2.Siblings...)}
			bad.Siblings[j][bit/8] ^= 1 << (bit % 8)
			if err := VerifyInclusion(root, n, i, m.leaves[i], bad); err == nil {
				t.Fatal("flipped proof accepted")
			}
		}
		// A wrong position must fail.
		if n > 1 {
			j := (i + 1) % n
			if err := VerifyInclusion(root, n, j, m.leaves[i], p2); err == nil {
				t.Fatalf("leaf %d accepted at position %d", i, j)
			}
		}
	})
}

func TestRapidRangeProof(t *testing.T) {
	m := buildTree(t, 1100)
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Uint64Range(1, 1100).Draw(t, "n")
		first := rapid.Uint64Range(0, n-1).Draw(t, "first")
		last := rapid.Uint64Range(first, n-1).Draw(t, "last")
		root := m.roots[n]
		p, err := ProveRange(ctx, m.get, n, first, last)
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Left) > MaxProofHashes || len(p.Right) > MaxProofHashes {
			t.Fatalf("proof too large: %d+%d", len(p.Left), len(p.Right))
		}
		enc, err := p.Encode()
		if err != nil {
			t.Fatal(err)
		}
		p2, err := DecodeRangeProof(enc)
		if err != nil {
			t.Fatal(err)
		}
		leaves := m.leaves[first : last+1]
		if err := VerifyRange(root, n, first, leaves, p2); err != nil {
			t.Fatalf("valid proof of [%d, %d] in %d rejected: %v", first, last, n, err)
		}
		b, err := VerifyRangeAndBuild(root, n, first, leaves, p2, nil)
		if err != nil {
			t.Fatalf("valid proof of [%d, %d] in %d rejected: %v", first, last, n, err)
		}
		if b.Size() != last+1 || b.Root() != m.roots[last+1] {
			t.Fatalf("resume builder at %d has root %s, want %s", b.Size(), b.Root(), m.roots[last+1])
		}
		// Changing any leaf fails.
		j := rapid.IntRange(0, len(leaves)-1).Draw(t, "j")
		bad := append([]ledger.Hash(nil), leaves...)
		bad[j][rapid.IntRange(0, 31).Draw(t, "byte")] ^= 1
		if err := VerifyRange(root, n, first, bad, p2); !errors.Is(err, ErrRootMismatch) {
			t.Fatalf("tampered leaf %d accepted: %v", j, err)
		}
		// Dropping or adding a leaf fails.
		if len(leaves) > 1 {
			if err := VerifyRange(root, n, first, leaves[:len(leaves)-1], p2); err == nil {
				t.Fatal("proof accepted with a leaf missing")
			}
		}
		// Shifting the range fails.
		if first+1 <= n-uint64(len(leaves)) {
			if err := VerifyRange(root, n, first+1, leaves, p2); err == nil {
				t.Fatal("range accepted at a shifted position")
			}
		}
		// Any flipped bit of the encoded proof fails (to decode or to verify).
		bit := rapid.IntRange(0, 8*len(enc)-1).Draw(t, "bit")
		flipped := append([]byte(nil), enc...)
		flipped[bit/8] ^= 1 << (bit % 8)
		if p3, err := DecodeRangeProof(flipped); err == nil {
			if err := VerifyRange(root, n, first, leaves, p3); err == nil {
				t.Fatalf("proof with bit %d flipped accepted", bit)
			}
		}
		// A wrong root fails.
		if err := VerifyRange(m.roots[n-1], n, first, leaves, p2); err == nil && m.roots[n-1] != root {
			t.Fatal("proof accepted against another root")
		}
	})
}

func TestRangeProofLarge(t *testing.T) {
	// Sizes near powers of two, ranges at the edges.
	m := buildTree(t, 4100)
	ctx := context.Background()
	for _, n := range []uint64{1, 2, 3, 4, 5, 1023, 1024, 1025, 4095, 4096, 4097} {
		for _, r := range [][2]uint64{{0, 0}, {0, n - 1}, {n - 1, n - 1}, {n / 2, n - 1}, {0, n / 2}} {
			p, err := ProveRange(ctx, m.get, n, r[0], r[1])
			if err != nil {
				t.Fatal(err)
			}
			if err := VerifyRange(m.roots[n], n, r[0], m.leaves[r[0]:r[1]+1], p); err != nil {
				t.Fatalf("n=%d range %v: %v", n, r, err)
			}
		}
	}
}

func TestProofShapeErrors(t *testing.T) {
	m := buildTree(t, 100)
	ctx := context.Background()
	if _, err := ProveRange(ctx, m.get, 100, 5, 100); err == nil {
		t.Error("range beyond size accepted")
	}
	if _, err := ProveRange(ctx, m.get, 100, 6, 5); err == nil {
		t.Error("inverted range accepted")
	}
	if _, err := ProveInclusion(ctx, m.get, 100, 100); err == nil {
		t.Error("inclusion beyond size accepted")
	}
	p, err := ProveRange(ctx, m.get, 100, 10, 20)
	if err != nil {
		t.Fatal(err)
	}
	if err := VerifyRange(m.roots[100], 100, 10, nil, p); err == nil {
		t.Error("empty leaves accepted")
	}
	extra := p
	extra.Left = append(append([]ledger.Hash(nil), p.Left...), ledger.Hash{})
	if err := VerifyRange(m.roots[100], 100, 10, m.leaves[10:21], extra); err == nil {
		t.Error("proof with an extra hash accepted")
	}
	noTail := p
	noTail.RightTail = nil
	if err := VerifyRange(m.roots[100], 100, 10, m.leaves[10:21], noTail); err == nil {
		t.Error("proof without its tail accepted")
	}
	// The getter's error is reported.
	failing := func(context.Context, NodeID) (ledger.Hash, error) { return ledger.Hash{}, errors.New("disk on fire") }
	if _, err := RootAt(ctx, failing, 7); err == nil || !contains(err.Error(), "disk on fire") {
		t.Errorf("RootAt error = %v", err)
	}
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestNodeKey(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		id := NodeID{Level: rapid.Uint8Range(0, 63).Draw(t, "level"), Index: rapid.Uint64().Draw(t, "index")}
		k := NodeKey(id)
		got, err := ParseNodeKey(k[:])
		if err != nil || got != id {
			t.Fatalf("ParseNodeKey(NodeKey(%v)) = %v, %v", id, got, err)
		}
	})
	if _, err := ParseNodeKey([]byte{64, 0, 0, 0, 0, 0, 0, 0, 0}); err == nil {
		t.Error("level 64 accepted")
	}
	if _, err := ParseNodeKey([]byte{1}); err == nil {
		t.Error("short key accepted")
	}
}

// TestRapidRestoreFromRangeProofs restores a tree from version k on, chunk by chunk as a
// restore does: each chunk verified against the source root, nodes persisted into a
// fresh store that starts with the frontier at k. The fresh store then serves the same
// roots and proofs as the source for every size it reached.
func TestRapidRestoreFromRangeProofs(t *testing.T) {
	src := buildTree(t, 700)
	ctx := context.Background()
	rapid.Check(t, func(t *rapid.T) {
		n := rapid.Uint64Range(2, 700).Draw(t, "n") // the trusted ledger info's tree size
		k := rapid.Uint64Range(0, n-1).Draw(t, "k") // first restored leaf
		root := src.roots[n]
		dst := &memTree{nodes: map[NodeID]ledger.Hash{}}
		var b *Builder
		for first := k; first < n; {
			count := rapid.Uint64Range(1, n-first).Draw(t, "chunk")
			last := first + count - 1
			p, err := ProveRange(ctx, src.get, n, first, last)
			if err != nil {
				t.Fatal(err)
			}
			pending := map[NodeID]ledger.Hash{}
			nb, err := VerifyRangeAndBuild(root, n, first, src.leaves[first:last+1], p,
				func(id NodeID, h ledger.Hash) { pending[id] = h })
			if err != nil {
				t.Fatalf("chunk [%d, %d]: %v", first, last, err)
			}
			if b == nil {
				fb, err := NewBuilderFromFrontier(first, p.Left)
				if err != nil {
					t.Fatal(err)
				}
				for _, nd := range fb.FrontierNodes() {
					dst.nodes[nd.ID] = nd.Hash
				}
			} else if b.Size() != first || !sameHashes(b.Frontier(), p.Left) {
				t.Fatalf("chunk [%d, %d] does not continue the restored tree", first, last)
			}
			for id, h := range pending {
				dst.nodes[id] = h
			}
			b, first = nb, last+1
		}
		if b.Root() != root {
			t.Fatalf("restored root %s, want %s", b.Root(), root)
		}
		for size := k; size <= n; size++ {
			got, err := RootAt(ctx, dst.get, size)
			if err != nil {
				t.Fatalf("RootAt(%d) on the restored store: %v", size, err)
			}
			if got != src.roots[size] {
				t.Fatalf("RootAt(%d) = %s, want %s", size, got, src.roots[size])
			}
		}
		if k < n {
			i := rapid.Uint64Range(k, n-1).Draw(t, "i")
			p, err := ProveInclusion(ctx, dst.get, i, n)
			if err != nil {
				t.Fatalf("inclusion of %d from the restored store: %v", i, err)
			}
			if err := VerifyInclusion(root, n, i, src.leaves[i], p); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func sameHashes(a, b []ledger.Hash) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLeafAndEmptyHashes(t *testing.T) {
	h := leafN(42)
	if LeafHash(h) != refRoot([]ledger.Hash{h}) {
		t.Fatal("leaf hash differs from RFC 6962")
	}
	if EmptyRoot() != refRoot(nil) {
		t.Fatal("empty root differs from RFC 6962")
	}
	a, b := leafN(1), leafN(2)
	if HashChildren(LeafHash(a), LeafHash(b)) != refRoot([]ledger.Hash{a, b}) {
		t.Fatal("inner hash differs from RFC 6962")
	}
}

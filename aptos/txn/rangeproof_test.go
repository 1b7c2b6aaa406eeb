package txn

import (
	"math/bits"
	"math/rand/v2"
	"testing"

	"github.com/ledgervault/ledgervault/aptos"
)

// refTree is a reference transaction accumulator over m leaves: a complete binary tree
// of height ceil(log2 m) whose subtrees holding no leaf hash to the placeholder.
type refTree struct {
	s      *seeds
	leaves []HashValue
	memo   map[[2]uint64]HashValue
}

func (t *refTree) height() int {
	if len(t.leaves) <= 1 {
		return 0
	}
	return bits.Len64(uint64(len(t.leaves) - 1))
}

func (t *refTree) node(level int, pos uint64) HashValue {
	if pos<<level >= uint64(len(t.leaves)) {
		return aptos.AccumulatorPlaceholderHash
	}
	if level == 0 {
		return t.leaves[pos]
	}
	key := [2]uint64{uint64(level), pos}
	if h, ok := t.memo[key]; ok {
		return h
	}
	if t.memo == nil {
		t.memo = map[[2]uint64]HashValue{}
	}
	h := newHasher().node(&t.s.transactionAccumulator, t.node(level-1, 2*pos), t.node(level-1, 2*pos+1))
	t.memo[key] = h
	return h
}

// proof returns the honest range proof for leaves first..last, siblings bottom first.
func (t *refTree) proof(first, last uint64) (left, right []HashValue) {
	for k := 0; k < t.height(); k++ {
		a, b := first>>k, last>>k
		if a&1 == 1 {
			left = append(left, t.node(k, a-1))
		}
		if b&1 == 0 {
			right = append(right, t.node(k, b+1))
		}
	}
	return left, right
}

func randomHashes(r *rand.Rand, n int) []HashValue {
	out := make([]HashValue, n)
	for i := range out {
		for j := range out[i] {
			out[i][j] = byte(r.Uint32())
		}
	}
	return out
}

func streamRoot(s *seeds, first uint64, leaves, left, right []HashValue) (HashValue, error) {
	v, err := newRangeVerifier(s, first, left, right)
	if err != nil {
		return HashValue{}, err
	}
	for _, l := range leaves {
		v.add(l)
	}
	return v.root()
}

// TestAccumulatorRootMatchesTree checks the in-memory accumulator root (used for event
// roots) against the reference tree for 1 to 70 leaves.
func TestAccumulatorRootMatchesTree(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	s := seedsOf(aptos.DiemDomain)
	for m := 1; m <= 70; m++ {
		tree := &refTree{s: s, leaves: randomHashes(r, m)}
		// Build the frozen subtree roots as InMemoryAccumulator::append does.
		x := newHasher()
		var frozen []HashValue
		for i, l := range tree.leaves {
			frozen = append(frozen, l)
			for n := uint64(i); n&1 == 1; n >>= 1 {
				frozen[len(frozen)-2] = x.node(&s.transactionAccumulator, frozen[len(frozen)-2], frozen[len(frozen)-1])
				frozen = frozen[:len(frozen)-1]
			}
		}
		if got, want := accumulatorRoot(x, &s.transactionAccumulator, frozen, uint64(m)), tree.node(tree.height(), 0); got != want {
			t.Fatalf("%d leaves: root %s, tree %s", m, got, want)
		}
	}
}

// TestRangeVerifierHonestProofs checks the streaming verifier, and package aptos's
// AccumulatorRangeProof.Verify, on every range of accumulators of 1 to 40 leaves (17
// under -race).
func TestRangeVerifierHonestProofs(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	s := seedsOf(aptos.DiemDomain)
	maxLeaves := 40
	if raceEnabled {
		maxLeaves = 17
	}
	for m := 1; m <= maxLeaves; m++ {
		tree := &refTree{s: s, leaves: randomHashes(r, m)}
		root := tree.node(tree.height(), 0)
		for first := 0; first < m; first++ {
			for last := first; last < m; last++ {
				left, right := tree.proof(uint64(first), uint64(last))
				if err := checkProofShape(uint64(first), uint64(last), uint64(m), len(left), len(right)); err != nil {
					t.Fatalf("m=%d [%d,%d]: honest proof: %v", m, first, last, err)
				}
				if checkProofShape(uint64(first), uint64(last), uint64(m), len(left), len(right)+1) == nil ||
					checkProofShape(uint64(first), uint64(last), uint64(m), len(left)+1, len(right)) == nil {
					t.Fatalf("m=%d [%d,%d]: extra sibling accepted", m, first, last)
				}
				leaves := tree.leaves[first : last+1]
				got, err := streamRoot(s, uint64(first), leaves, left, right)
				if err != nil || got != root {
					t.Fatalf("m=%d [%d,%d]: root %s, %v; want %s", m, first, last, got, err, root)
				}
				p := aptos.AccumulatorRangeProof{LeftSiblings: left, RightSiblings: right}
				if err := p.Verify(aptos.DiemDomain, root, uint64(first), leaves); err != nil {
					t.Fatalf("m=%d [%d,%d]: aptos verifier: %v", m, first, last, err)
				}
				// A changed leaf or the wrong position fails.
				bad := append([]HashValue(nil), leaves...)
				bad[len(bad)/2][0] ^= 1
				if got, _ := streamRoot(s, uint64(first), bad, left, right); got == root {
					t.Fatalf("m=%d [%d,%d]: changed leaf verified", m, first, last)
				}
			}
		}
	}
}

// TestRangeVerifierAgreesWithAptos compares the streaming verifier with package aptos's
// level-by-level verifier on random, mostly invalid, proofs: whatever root the stream
// computes is the only one the other accepts, and a proof the stream rejects is
// rejected by the other too.
func TestRangeVerifierAgreesWithAptos(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	s := seedsOf(aptos.AptosDomain)
	cases := 3000
	if raceEnabled {
		cases = 300
	}
	for i := 0; i < cases; i++ {
		first := r.Uint64N(1 << uint(r.IntN(12)))
		if r.IntN(10) == 0 {
			first = 1<<40 + r.Uint64N(1<<20)
		}
		n := 1 + r.IntN(70)
		nl := bits.OnesCount64(first)
		if r.IntN(4) == 0 {
			nl = r.IntN(8)
		}
		leaves := randomHashes(r, n)
		left := randomHashes(r, nl)
		right := randomHashes(r, r.IntN(50))
		p := aptos.AccumulatorRangeProof{LeftSiblings: left, RightSiblings: right}
		got, err := streamRoot(s, first, leaves, left, right)
		if err != nil {
			var any HashValue
			any[0] = byte(i)
			if p.Verify(aptos.AptosDomain, any, first, leaves) == nil {
				t.Fatalf("case %d: stream rejects (%v), aptos accepts", i, err)
			}
			continue
		}
		if err := p.Verify(aptos.AptosDomain, got, first, leaves); err != nil {
			t.Fatalf("case %d (first %d, %d leaves, %d/%d siblings): stream root %s, aptos: %v", i, first, n, len(left), len(right), got, err)
		}
	}
}

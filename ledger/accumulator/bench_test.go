package accumulator

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
)

// levelStore keeps every node by level in slices, as a dense store would.
type levelStore struct {
	levels [][]ledger.Hash
	leaves []ledger.Hash
	root   ledger.Hash
}

func (s *levelStore) get(_ context.Context, id NodeID) (ledger.Hash, error) {
	if int(id.Level) >= len(s.levels) || id.Index >= uint64(len(s.levels[id.Level])) {
		return ledger.Hash{}, fmt.Errorf("node %s not stored", id)
	}
	return s.levels[id.Level][id.Index], nil
}

var (
	bigOnce sync.Once
	big     *levelStore
)

const bigSize = 1 << 20

func bigTree(b *testing.B) *levelStore {
	bigOnce.Do(func() {
		s := &levelStore{levels: make([][]ledger.Hash, 21)}
		bl := NewBuilder()
		for i := uint64(0); i < bigSize; i++ {
			h := leafN(i)
			s.leaves = append(s.leaves, h)
			if err := bl.Append(h, func(id NodeID, nh ledger.Hash) {
				s.levels[id.Level] = append(s.levels[id.Level], nh)
			}); err != nil {
				panic(err)
			}
		}
		s.root = bl.Root()
		big = s
	})
	return big
}

// BenchmarkBuilderAppend measures appending one leaf (the node's commit path); the
// baseline is the two SHA-256 of a leaf and a parent it cannot avoid.
func BenchmarkBuilderAppend(b *testing.B) {
	bl := NewBuilder()
	h := leafN(1)
	b.ReportAllocs()
	for b.Loop() {
		if err := bl.Append(h, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkBuilderAppendBaselineHashes(b *testing.B) {
	h := leafN(1)
	for b.Loop() {
		l := LeafHash(h)
		_ = HashChildren(l, h)
	}
}

// BenchmarkProveRange1000In1M and BenchmarkVerifyRange1000In1M prove and verify a
// 1000-leaf range in a 2^20-leaf tree, as for one transaction chunk.
func BenchmarkProveRange1000In1M(b *testing.B) {
	s := bigTree(b)
	ctx := context.Background()
	first := uint64(bigSize/2 + 123)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ProveRange(ctx, s.get, bigSize, first, first+999); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyRange1000In1M(b *testing.B) {
	s := bigTree(b)
	first := uint64(bigSize/2 + 123)
	p, err := ProveRange(context.Background(), s.get, bigSize, first, first+999)
	if err != nil {
		b.Fatal(err)
	}
	leaves := s.leaves[first : first+1000]
	b.ReportAllocs()
	for b.Loop() {
		if err := VerifyRange(s.root, bigSize, first, leaves, p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*1000)/b.Elapsed().Seconds(), "leaves/s")
}

func BenchmarkRootAt1M(b *testing.B) {
	s := bigTree(b)
	ctx := context.Background()
	for b.Loop() {
		if _, err := RootAt(ctx, s.get, bigSize-12345); err != nil {
			b.Fatal(err)
		}
	}
}

package accumulator

import (
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
)

func TestFrontierFromInclusion(t *testing.T) {
	ctx := context.Background()
	nodes := map[NodeID]ledger.Hash{}
	get := func(_ context.Context, id NodeID) (ledger.Hash, error) { return nodes[id], nil }
	b := NewBuilder()
	var infos []ledger.Hash
	for size := uint64(1); size <= 70; size++ {
		h := ledger.HashOf(ledger.DomainTransactionInfo, []byte{byte(size), byte(size >> 8)})
		infos = append(infos, h)
		if err := b.Append(h, func(id NodeID, nh ledger.Hash) { nodes[id] = nh }); err != nil {
			t.Fatal(err)
		}
		p, err := ProveInclusion(ctx, get, size-1, size)
		if err != nil {
			t.Fatal(err)
		}
		fr, err := FrontierFromInclusion(b.Root(), size, h, p)
		if err != nil {
			t.Fatalf("size %d: %v", size, err)
		}
		want := b.Frontier()
		if len(fr) != len(want) {
			t.Fatalf("size %d: %d frontier hashes, want %d", size, len(fr), len(want))
		}
		for i := range want {
			if fr[i] != want[i] {
				t.Fatalf("size %d: frontier hash %d differs", size, i)
			}
		}
		// A wrong leaf or a wrong root is rejected.
		if _, err := FrontierFromInclusion(b.Root(), size, ledger.Hash{1}, p); err == nil {
			t.Fatalf("size %d: accepted a wrong leaf", size)
		}
		if _, err := FrontierFromInclusion(ledger.Hash{2}, size, h, p); err == nil {
			t.Fatalf("size %d: accepted a wrong root", size)
		}
		// FrontierAfter from the frontier at any earlier size rebuilds the same one.
		mid := size / 2
		left, err := getAll(ctx, get, FrontierIDs(mid))
		if err != nil {
			t.Fatal(err)
		}
		fb, err := FrontierAfter(mid, left, infos[mid:])
		if err != nil {
			t.Fatal(err)
		}
		if fb.Root() != b.Root() || fb.Size() != size {
			t.Fatalf("size %d: FrontierAfter from %d gives a different tree", size, mid)
		}
	}
	if _, err := FrontierFromInclusion(ledger.Hash{}, 0, ledger.Hash{}, InclusionProof{}); err == nil {
		t.Fatal("accepted size 0")
	}
}

package accumulator

import (
	"bytes"
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
)

func FuzzDecodeRangeProof(f *testing.F) {
	m := buildTree(f, 300)
	ctx := context.Background()
	type rng struct{ n, first, last uint64 }
	ranges := []rng{{300, 0, 299}, {300, 17, 130}, {300, 299, 299}, {257, 0, 0}, {256, 100, 101}}
	for _, r := range ranges {
		p, err := ProveRange(ctx, m.get, r.n, r.first, r.last)
		if err != nil {
			f.Fatal(err)
		}
		enc, err := p.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc, r.n, r.first, uint16(r.last-r.first+1))
		f.Add(enc[:len(enc)-1], r.n, r.first, uint16(r.last-r.first+1))
	}
	f.Add([]byte{0x83, 0x80, 0x80, 0xf6}, uint64(1), uint64(0), uint16(1))
	f.Add([]byte{0x83, 0x9a, 0xff, 0xff, 0xff, 0xff}, uint64(1), uint64(0), uint16(1))
	f.Fuzz(func(t *testing.T, b []byte, n, first uint64, count uint16) {
		p, err := DecodeRangeProof(b)
		if err != nil {
			return
		}
		out, err := p.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted input %x re-encodes to %x (%v)", b, out, err)
		}
		// Verifying any decoded proof for any range must not panic, and must succeed
		// only for the genuine leaves and a genuine proof.
		if n > uint64(len(m.leaves)) || count == 0 {
			_ = VerifyRange(ledger.Hash{}, n, first, make([]ledger.Hash, count%64), p)
			return
		}
		if first >= n || uint64(count) > n-first {
			_ = VerifyRange(m.roots[n], n, first, make([]ledger.Hash, count), p)
			return
		}
		leaves := m.leaves[first : first+uint64(count)]
		if err := VerifyRange(m.roots[n], n, first, leaves, p); err == nil {
			want, err := ProveRange(ctx, m.get, n, first, first+uint64(count)-1)
			if err != nil {
				t.Fatal(err)
			}
			wantEnc, _ := want.Encode()
			if !bytes.Equal(wantEnc, b) {
				t.Fatalf("a different proof verified for [%d, +%d) in %d", first, count, n)
			}
		}
	})
}

func FuzzDecodeInclusionProof(f *testing.F) {
	m := buildTree(f, 100)
	ctx := context.Background()
	for _, c := range [][2]uint64{{0, 100}, {99, 100}, {37, 64}, {0, 1}} {
		p, err := ProveInclusion(ctx, m.get, c[0], c[1])
		if err != nil {
			f.Fatal(err)
		}
		enc, err := p.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(enc, c[0], c[1])
	}
	f.Add([]byte{0x81, 0x80}, uint64(0), uint64(1))
	f.Fuzz(func(t *testing.T, b []byte, index, size uint64) {
		p, err := DecodeInclusionProof(b)
		if err != nil {
			return
		}
		out, err := p.Encode()
		if err != nil || !bytes.Equal(out, b) {
			t.Fatalf("accepted input %x re-encodes to %x (%v)", b, out, err)
		}
		if size == 0 || size > uint64(len(m.leaves)) || index >= size {
			_ = VerifyInclusion(ledger.Hash{}, size, index, ledger.Hash{}, p)
			return
		}
		if err := VerifyInclusion(m.roots[size], size, index, m.leaves[index], p); err == nil {
			want, _ := ProveInclusion(ctx, m.get, index, size)
			wantEnc, _ := want.Encode()
			if !bytes.Equal(wantEnc, b) {
				t.Fatalf("a different proof verified for leaf %d in %d", index, size)
			}
		}
	})
}

func FuzzParseNodeKey(f *testing.F) {
	for _, id := range []NodeID{{0, 0}, {5, 12345}, {62, 1}, {63, 1<<64 - 1}} {
		k := NodeKey(id)
		f.Add(k[:])
	}
	f.Add([]byte{64, 0, 0, 0, 0, 0, 0, 0, 0})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := ParseNodeKey(b)
		if err != nil {
			return
		}
		if k := NodeKey(id); !bytes.Equal(k[:], b) {
			t.Fatalf("accepted key %x re-encodes to %x", b, k)
		}
	})
}

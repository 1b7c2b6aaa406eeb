package ledgerdb

import (
	"encoding/binary"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// TestNodeCacheKeepsNewestPerPosition checks the node cache's contract: a lookup hits
// only the exact version, a newer node replaces an older one at its position, an
// older one never replaces a newer one, and the size stays bounded.
func TestNodeCacheKeepsNewestPerPosition(t *testing.T) {
	c := newNodeCache(16 * 4)
	pos := smt.NodeKey{Depth: 3, Path: ledger.Hash{0xe0}}
	at := func(v uint64) smt.NodeKey { k := pos; k.Version = v; return k }
	n5 := smt.Node{IsLeaf: true, ValueHash: ledger.Hash{5}}
	n7 := smt.Node{IsLeaf: true, ValueHash: ledger.Hash{7}}
	c.put(at(5), n5)
	if got, ok := c.get(at(5)); !ok || got.ValueHash != n5.ValueHash {
		t.Fatalf("get v5 = %v, %v", got, ok)
	}
	if _, ok := c.get(at(4)); ok {
		t.Fatal("hit for a version never cached")
	}
	c.put(at(7), n7)
	if _, ok := c.get(at(5)); ok {
		t.Fatal("v5 still cached after v7 replaced it")
	}
	c.put(at(5), n5) // an old read must not displace the live node
	if got, ok := c.get(at(7)); !ok || got.ValueHash != n7.ValueHash {
		t.Fatalf("get v7 after an older put = %v, %v", got, ok)
	}
	for i := range 10_000 {
		c.put(smt.NodeKey{Version: uint64(i), Depth: 256, Path: ledger.Hash{byte(i), byte(i >> 8), 1}}, n5)
	}
	if total := c.len(); total > 16*4 {
		t.Fatalf("cache holds %d nodes, want at most %d", c.len(), 16*4)
	}
}

// TestNodeCachePinned checks that pinned nodes (versions not durable yet) survive any
// number of insertions, leave when dropped, and that unpinning makes them evictable.
func TestNodeCachePinned(t *testing.T) {
	c := newNodeCache(16 * 4)
	n := smt.Node{IsLeaf: true}
	c.pin(1000)
	pinned := smt.NodeKey{Version: 1000, Depth: 256, Path: ledger.Hash{0xaa}}
	c.put(pinned, n)
	for i := range 10_000 {
		c.put(smt.NodeKey{Version: uint64(i % 1000), Depth: 256, Path: ledger.Hash{byte(i), byte(i >> 8), 2}}, n)
	}
	if _, ok := c.get(pinned); !ok {
		t.Fatal("pinned node evicted")
	}
	c.dropFrom(1000)
	if _, ok := c.get(pinned); ok {
		t.Fatal("node of a dropped version still cached")
	}
	c.put(pinned, n)
	c.unpin()
	for i := range 10_000 {
		c.put(smt.NodeKey{Version: uint64(i % 1000), Depth: 256, Path: ledger.Hash{byte(i), byte(i >> 8), 3}}, n)
	}
	if _, ok := c.get(pinned); ok {
		t.Fatal("unpinned node survived 10,000 insertions into a 64-node cache")
	}
}

// TestNodeCacheKeepsUpperLevels checks that a flood of deep nodes, many times the
// cache's size, leaves the upper levels of the tree cached.
func TestNodeCacheKeepsUpperLevels(t *testing.T) {
	c := newNodeCache(1 << 12)
	n := smt.Node{IsLeaf: true}
	var upper []smt.NodeKey
	for d := 0; d <= 7; d++ {
		for i := 0; i < 1<<d; i++ {
			var p ledger.Hash
			p[0] = byte(i << (8 - d))
			upper = append(upper, smt.NodeKey{Version: 1, Depth: uint16(d), Path: p})
		}
	}
	for _, k := range upper {
		c.put(k, n)
	}
	for i := range 100_000 {
		var p ledger.Hash
		binary.BigEndian.PutUint64(p[:], uint64(i)*0x9e3779b97f4a7c15)
		c.put(smt.NodeKey{Version: 2, Depth: 30, Path: p}, n)
	}
	missing := 0
	for _, k := range upper {
		if _, ok := c.get(k); !ok {
			missing++
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d upper-level nodes evicted by deeper ones", missing, len(upper))
	}
}

// TestNodeCachePinnedOverflow checks that pinned nodes beyond a set's slots are kept
// (in the overflow), replaced by newer versions, dropped with their versions and
// released as the pinned version rises.
func TestNodeCachePinnedOverflow(t *testing.T) {
	c := newNodeCache(cacheWays) // one set: every node competes for it
	c.pin(10)
	key := func(i int, v uint64) smt.NodeKey {
		return smt.NodeKey{Version: v, Depth: 256, Path: ledger.Hash{byte(i), 9}}
	}
	leaf := func(b byte) smt.Node { return smt.Node{IsLeaf: true, ValueHash: ledger.Hash{b}} }
	for i := range 3 * cacheWays {
		c.put(key(i, 10+uint64(i%2)), leaf(byte(i)))
	}
	for i := range 3 * cacheWays {
		if got, ok := c.get(key(i, 10+uint64(i%2))); !ok || got.ValueHash[0] != byte(i) {
			t.Fatalf("pinned node %d lost", i)
		}
	}
	c.put(key(20, 12), leaf(99)) // a newer version of an overflowed position
	if _, ok := c.get(key(20, 10)); ok {
		t.Fatal("an older pinned node still served after a newer one")
	}
	if got, ok := c.get(key(20, 12)); !ok || got.ValueHash[0] != 99 {
		t.Fatal("newer pinned node lost")
	}
	c.put(key(100, 3), leaf(1)) // not pinned, no room: not kept, nothing lost
	for i := range 3 * cacheWays {
		v := 10 + uint64(i%2)
		if i == 20 {
			v = 12
		}
		if _, ok := c.get(key(i, v)); !ok {
			t.Fatalf("pinned node %d lost to an unpinned one", i)
		}
	}
	c.dropFrom(11)
	for i := range 3 * cacheWays {
		_, ok := c.get(key(i, 10+uint64(i%2)))
		if want := i%2 == 0 && i != 20; ok != want {
			t.Fatalf("node %d of version %d cached %v after dropping versions from 11", i, 10+i%2, ok)
		}
	}
	c.pin(11) // version 10 is durable: the overflow lets it go
	if c.len() > cacheWays {
		t.Fatalf("%d nodes cached in a cache of %d after the pinned version rose", c.len(), cacheWays)
	}
	c.unpin()
	if c.overSize.Load() != 0 || len(c.over) != 0 {
		t.Fatal("overflow not empty after unpin")
	}
}

// TestNodeCacheAllocatesOnUse checks that the cache holds no sets until nodes are put
// into them (a state restore, which writes its tree without the cache, keeps the
// memory), and that lookups allocate nothing.
func TestNodeCacheAllocatesOnUse(t *testing.T) {
	c := newNodeCache(1 << 18)
	parts := func() int {
		n := 0
		for i := range c.parts {
			if c.parts[i].Load() != nil {
				n++
			}
		}
		return n
	}
	k := smt.NodeKey{Version: 1, Depth: 5, Path: ledger.Hash{0x18}}
	if _, ok := c.get(k); ok || parts() != 0 {
		t.Fatalf("a lookup in an empty cache: hit %v, %d parts allocated", ok, parts())
	}
	c.put(k, smt.Node{IsLeaf: true})
	if _, ok := c.get(k); !ok || parts() != 1 || len(c.parts) < 32 {
		t.Fatalf("after one put: hit %v, %d of %d parts allocated", ok, parts(), len(c.parts))
	}
}

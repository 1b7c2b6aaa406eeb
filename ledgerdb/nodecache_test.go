package ledgerdb

import (
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
	total := 0
	for i := range c.shards {
		total += len(c.shards[i].nodes)
	}
	if total > 16*4 {
		t.Fatalf("cache holds %d nodes, want at most %d", total, 16*4)
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

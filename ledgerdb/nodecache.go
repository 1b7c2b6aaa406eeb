package ledgerdb

import (
	"math"
	"sync"
	"sync/atomic"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// nodeCache holds decoded tree nodes, at most one per tree position (depth and path):
// the newest one it has seen there. Commits and restores read only the newest tree,
// so a node replaced by a later version is dead to them; keeping one slot per
// position lets the newest node evict its predecessor at once, and the cache holds
// the live tree instead of filling up with versions no writer will read again.
//
// Nodes are immutable once written (a key names one node forever), so a cached node
// is never stale: a lookup hits only when the slot holds exactly the version asked
// for. A node read from an older version never displaces a newer one. When full it
// evicts arbitrary slots (Go's map order is random), which keeps the constantly read
// upper levels of the tree resident with high probability at no bookkeeping cost.
//
// Nodes of versions at or above the pinned version are not durable yet (a save in
// progress reads them from here only) and are never evicted.
type nodeCache struct {
	shards [16]nodeShard
	max    int // per shard
	pinned atomic.Uint64
}

type nodeShard struct {
	mu    sync.Mutex
	nodes map[nodePos]versionedNode
}

// nodePos is a position in the tree: a node key without its version.
type nodePos struct {
	Depth uint16
	Path  ledger.Hash
}

// versionedNode is the node a slot holds and the version that wrote it.
type versionedNode struct {
	version uint64
	node    smt.Node
}

func newNodeCache(maxNodes int) *nodeCache {
	c := &nodeCache{max: max(maxNodes/16, 1)}
	c.pinned.Store(math.MaxUint64)
	for i := range c.shards {
		c.shards[i].nodes = make(map[nodePos]versionedNode)
	}
	return c
}

func (c *nodeCache) shard(k *smt.NodeKey) *nodeShard {
	return &c.shards[(k.Path[0]^k.Path[31]^byte(k.Depth))&15]
}

func (c *nodeCache) get(k smt.NodeKey) (smt.Node, bool) {
	s := c.shard(&k)
	s.mu.Lock()
	e, ok := s.nodes[nodePos{k.Depth, k.Path}]
	s.mu.Unlock()
	if !ok || e.version != k.Version {
		return smt.Node{}, false
	}
	return e.node, true
}

// put caches n under k unless its slot holds a newer version.
func (c *nodeCache) put(k smt.NodeKey, n smt.Node) {
	s := c.shard(&k)
	pos := nodePos{k.Depth, k.Path}
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.nodes[pos]; ok {
		if e.version <= k.Version {
			s.nodes[pos] = versionedNode{k.Version, n}
		}
		return
	}
	if len(s.nodes) >= c.max {
		evict := len(s.nodes) / 16
		pinned := c.pinned.Load()
		for old, e := range s.nodes {
			if e.version >= pinned {
				continue
			}
			delete(s.nodes, old)
			evict--
			if evict <= 0 {
				break
			}
		}
	}
	s.nodes[pos] = versionedNode{k.Version, n}
}

// pin keeps the nodes of version v and later from being evicted.
func (c *nodeCache) pin(v uint64) { c.pinned.Store(v) }

// unpin lets every node be evicted.
func (c *nodeCache) unpin() { c.pinned.Store(math.MaxUint64) }

// dropFrom removes the nodes of version v and later.
func (c *nodeCache) dropFrom(v uint64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for pos, e := range s.nodes {
			if e.version >= v {
				delete(s.nodes, pos)
			}
		}
		s.mu.Unlock()
	}
}

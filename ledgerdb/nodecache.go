package ledgerdb

import (
	"sync"

	"github.com/ledgervault/ledgervault/ledger/smt"
)

// nodeCache holds decoded tree nodes. Nodes are immutable once written (a key names one
// node forever), so a cached node is never stale. It keeps at most max nodes and evicts
// arbitrary ones when full (Go's map order is random), which keeps the constantly read
// upper levels of the tree resident with high probability at no bookkeeping cost.
type nodeCache struct {
	shards [16]nodeShard
	max    int // per shard
}

type nodeShard struct {
	mu    sync.Mutex
	nodes map[smt.NodeKey]smt.Node
}

func newNodeCache(maxNodes int) *nodeCache {
	c := &nodeCache{max: max(maxNodes/16, 1)}
	for i := range c.shards {
		c.shards[i].nodes = make(map[smt.NodeKey]smt.Node)
	}
	return c
}

func (c *nodeCache) shard(k *smt.NodeKey) *nodeShard {
	return &c.shards[(k.Path[0]^k.Path[31]^byte(k.Version)^byte(k.Depth))&15]
}

func (c *nodeCache) get(k smt.NodeKey) (smt.Node, bool) {
	s := c.shard(&k)
	s.mu.Lock()
	n, ok := s.nodes[k]
	s.mu.Unlock()
	return n, ok
}

func (c *nodeCache) put(k smt.NodeKey, n smt.Node) {
	s := c.shard(&k)
	s.mu.Lock()
	if len(s.nodes) >= c.max {
		evict := len(s.nodes) / 16
		for old := range s.nodes {
			delete(s.nodes, old)
			evict--
			if evict <= 0 {
				break
			}
		}
	}
	s.nodes[k] = n
	s.mu.Unlock()
}

package ledgerdb

import (
	"encoding/binary"
	"math"
	"math/bits"
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
// for. A node read from an older version never displaces a newer one.
//
// It is set-associative: a position hashes to one set of cacheWays slots. When a set
// is full, the deepest node in it leaves (ties in turn): a deeper node covers fewer
// leaves and is read less often, so the upper levels of the tree, which every update
// reads, stay resident while a bulk commit writes far more nodes than the cache holds.
// A fixed array costs no map probing and no eviction scans.
//
// Nodes of versions at or above the pinned version are not durable yet (a save in
// progress reads them from here only) and are never evicted: a pinned node that finds
// its set full of pinned nodes goes to a small overflow map, emptied as the pinned
// version rises.
type nodeCache struct {
	// The sets, in parts allocated when a node is first put into one: a store that
	// reads few nodes (a state restore writes its tree without the cache) holds no
	// memory for the rest.
	parts    []atomic.Pointer[[]cacheSet]
	partSets uint64         // sets per part, a power of two
	mask     uint64         // sets - 1
	locks    [64]sync.Mutex // set i is guarded by locks[i%64]
	pinned   atomic.Uint64

	overMu   sync.Mutex
	over     map[nodePos]versionedNode
	overSize atomic.Int64
}

// cacheWays is the number of slots of a set.
const cacheWays = 8

type cacheSet struct {
	hand uint8 // the next slot to evict among equally deep candidates
	ways [cacheWays]cacheEntry
}

type cacheEntry struct {
	used bool
	pos  nodePos
	versionedNode
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

// newNodeCache returns a cache of about maxNodes nodes (at least one set).
func newNodeCache(maxNodes int) *nodeCache {
	n := uint64(max(maxNodes/cacheWays, 1))
	n = 1 << (63 - bits.LeadingZeros64(n)) // a power of two, at most maxNodes/cacheWays
	per := min(n, 512)                     // about 1 MiB of sets
	c := &nodeCache{parts: make([]atomic.Pointer[[]cacheSet], n/per), partSets: per, mask: n - 1, over: map[nodePos]versionedNode{}}
	c.pinned.Store(math.MaxUint64)
	return c
}

// setAt returns set i, nil if its part is not allocated and alloc is false.
func (c *nodeCache) setAt(i uint64, alloc bool) *cacheSet {
	p := &c.parts[i/c.partSets]
	sets := p.Load()
	if sets == nil {
		if !alloc {
			return nil
		}
		fresh := make([]cacheSet, c.partSets)
		if !p.CompareAndSwap(nil, &fresh) {
			sets = p.Load()
		} else {
			sets = &fresh
		}
	}
	return &(*sets)[i%c.partSets]
}

// set returns the index of k's set and its lock.
func (c *nodeCache) set(k *smt.NodeKey) (uint64, *sync.Mutex) {
	p := &k.Path
	h := binary.LittleEndian.Uint64(p[0:]) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(p[8:]), 17) ^
		bits.RotateLeft64(binary.LittleEndian.Uint64(p[16:]), 31) ^ bits.RotateLeft64(binary.LittleEndian.Uint64(p[24:]), 47) ^
		uint64(k.Depth)*0x9e3779b97f4a7c15
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	i := h & c.mask
	return i, &c.locks[i%uint64(len(c.locks))]
}

func (c *nodeCache) get(k smt.NodeKey) (smt.Node, bool) {
	si, mu := c.set(&k)
	s := c.setAt(si, false)
	if s == nil {
		return c.getOverflow(k)
	}
	pos := nodePos{k.Depth, k.Path}
	mu.Lock()
	for i := range s.ways {
		e := &s.ways[i]
		if e.used && e.pos == pos {
			if e.version != k.Version {
				break
			}
			n := e.node
			mu.Unlock()
			return n, true
		}
	}
	mu.Unlock()
	return c.getOverflow(k)
}

// getOverflow looks k up in the overflow.
func (c *nodeCache) getOverflow(k smt.NodeKey) (smt.Node, bool) {
	if c.overSize.Load() > 0 {
		c.overMu.Lock()
		e, ok := c.over[nodePos{k.Depth, k.Path}]
		c.overMu.Unlock()
		if ok && e.version == k.Version {
			return e.node, true
		}
	}
	return smt.Node{}, false
}

// put caches n under k unless its slot holds a newer version.
func (c *nodeCache) put(k smt.NodeKey, n smt.Node) {
	si, mu := c.set(&k)
	s := c.setAt(si, true)
	pos := nodePos{k.Depth, k.Path}
	pinned := c.pinned.Load()
	mu.Lock()
	victim := -1
	for i := range s.ways {
		e := &s.ways[i]
		if !e.used {
			if victim < 0 {
				victim = i
			}
			continue
		}
		if e.pos == pos {
			if e.version <= k.Version {
				e.versionedNode = versionedNode{k.Version, n}
			}
			mu.Unlock()
			return
		}
	}
	if victim < 0 {
		// The deepest evictable node leaves; among equally deep ones, in turn.
		for j := range cacheWays {
			i := (int(s.hand) + j) % cacheWays
			e := &s.ways[i]
			if e.version >= pinned {
				continue
			}
			if victim < 0 || e.pos.Depth > s.ways[victim].pos.Depth {
				victim = i
			}
		}
		s.hand++
	}
	if victim >= 0 {
		s.ways[victim] = cacheEntry{used: true, pos: pos, versionedNode: versionedNode{k.Version, n}}
		mu.Unlock()
		if c.overSize.Load() > 0 {
			c.overMu.Lock()
			if e, ok := c.over[pos]; ok && e.version <= k.Version {
				delete(c.over, pos)
				c.overSize.Add(-1)
			}
			c.overMu.Unlock()
		}
		return
	}
	mu.Unlock()
	if k.Version < pinned {
		return // the set is full of pinned nodes; an evictable one need not stay
	}
	c.overMu.Lock()
	if e, ok := c.over[pos]; !ok || e.version <= k.Version {
		if !ok {
			c.overSize.Add(1)
		}
		c.over[pos] = versionedNode{k.Version, n}
	}
	c.overMu.Unlock()
}

// pin keeps the nodes of version v and later from being evicted; the overflow keeps
// only those.
func (c *nodeCache) pin(v uint64) {
	c.pinned.Store(v)
	c.pruneOverflow(v)
}

// unpin lets every node be evicted.
func (c *nodeCache) unpin() {
	c.pinned.Store(math.MaxUint64)
	c.pruneOverflow(math.MaxUint64)
}

// pruneOverflow removes the overflow's nodes of versions below v.
func (c *nodeCache) pruneOverflow(v uint64) {
	c.deleteOverflow(func(version uint64) bool { return version < v })
}

// deleteOverflow removes the overflow's nodes whose version drop selects.
func (c *nodeCache) deleteOverflow(drop func(version uint64) bool) {
	if c.overSize.Load() == 0 {
		return
	}
	c.overMu.Lock()
	for pos, e := range c.over {
		if drop(e.version) {
			delete(c.over, pos)
			c.overSize.Add(-1)
		}
	}
	c.overMu.Unlock()
}

// dropFrom removes the nodes of version v and later.
func (c *nodeCache) dropFrom(v uint64) {
	c.eachEntry(func(e *cacheEntry) {
		if e.version >= v {
			*e = cacheEntry{}
		}
	})
	c.deleteOverflow(func(version uint64) bool { return version >= v })
}

// len returns the number of nodes cached.
func (c *nodeCache) len() int {
	n := 0
	c.eachEntry(func(*cacheEntry) { n++ })
	return n + int(c.overSize.Load())
}

// eachEntry calls fn with every used slot of the allocated sets, each under its lock.
func (c *nodeCache) eachEntry(fn func(e *cacheEntry)) {
	for i := range c.mask + 1 {
		s := c.setAt(i, false)
		if s == nil {
			continue
		}
		mu := &c.locks[i%uint64(len(c.locks))]
		mu.Lock()
		for j := range s.ways {
			if s.ways[j].used {
				fn(&s.ways[j])
			}
		}
		mu.Unlock()
	}
}

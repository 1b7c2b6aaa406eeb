package smt

import (
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"sort"

	"github.com/ledgervault/ledgervault/ledger"
)

// Update is one change of a version's write set: set KeyHash to ValueHash, or delete it.
// Deleting an absent key changes nothing.
type Update struct {
	KeyHash   ledger.Hash
	ValueHash ledger.Hash
	Delete    bool
}

// Leaf is one (key hash, value hash) pair of the tree.
type Leaf struct {
	KeyHash   ledger.Hash
	ValueHash ledger.Hash
}

// sub describes a subtree while an update is being computed.
type sub struct {
	count uint64 // leaves; 0 means empty
	hash  ledger.Hash
	leaf  bool
	// stored: the subtree's root node is stored at (ver, depth, path) of the position
	// the sub currently describes.
	stored bool
	ver    uint64
	// key, val: the leaf's contents, valid when haveKV.
	haveKV   bool
	key, val ledger.Hash
}

var emptySub = sub{hash: PlaceholderHash}

func childSub(c *Child) sub {
	if c.LeafCount == 0 {
		return emptySub
	}
	return sub{count: c.LeafCount, hash: c.Hash, leaf: c.IsLeaf, stored: true, ver: c.Version}
}

func sameSub(a, b *sub) bool {
	return a.count == b.count && a.hash == b.hash && a.stored == b.stored && a.ver == b.ver
}

type updater struct {
	ctx     context.Context
	r       NodeReader
	version uint64
	writes  []NodeWrite
	// replaced, if set, is told the key of every stored node an update replaces: a node
	// the new tree no longer holds (the next versions never read it).
	replaced func(NodeKey)
}

// Apply applies one version's updates to the tree whose root is prev and returns the new
// root and the nodes to store (all keyed at version). version must be greater than the
// version of every node of the tree (for a non-empty prev: greater than prev.Key.Version;
// as the empty tree records no version, callers apply versions in increasing order).
// updates may come in any order but must not name a key twice. Shared path prefixes are
// read once, whatever the batch size. When nothing changes the root stays prev (a node of
// an earlier version) and no node is written.
func Apply(ctx context.Context, r NodeReader, prev RootRef, version uint64, updates []Update) (RootRef, []NodeWrite, error) {
	u := &updater{ctx: ctx, r: r, version: version}
	root, err := u.run(prev, updates)
	if err != nil {
		return prev, nil, err
	}
	return root, u.writes, nil
}

// run applies updates at u.version on top of prev, appending the nodes it writes to
// u.writes.
func (u *updater) run(prev RootRef, updates []Update) (RootRef, error) {
	version := u.version
	if prev.LeafCount == 0 {
		prev = EmptyRoot()
	} else if version <= prev.Key.Version {
		return prev, fmt.Errorf("smt apply version %d: not after root version %d", version, prev.Key.Version)
	}
	if err := prev.Validate(); err != nil {
		return prev, fmt.Errorf("smt apply version %d: %w", version, err)
	}
	ups, err := sortedUpdates(version, updates)
	if err != nil {
		return prev, err
	}
	u.writes = slices.Grow(u.writes, nodeEstimate(prev.LeafCount, len(ups)))
	cur := emptySub
	if prev.LeafCount > 0 {
		cur = sub{count: prev.LeafCount, hash: prev.Hash, leaf: prev.IsLeaf, stored: true, ver: prev.Key.Version}
	}
	res, err := u.apply(0, ledger.ZeroHash, cur, ups)
	if err != nil {
		return prev, fmt.Errorf("smt apply version %d: %w", version, err)
	}
	if res.count == 0 {
		return EmptyRoot(), nil
	}
	if !res.stored {
		u.writeLeaf(0, ledger.ZeroHash, &res)
	}
	return RootRef{
		Key:       NodeKey{Version: res.ver},
		Hash:      res.hash,
		LeafCount: res.count,
		IsLeaf:    res.leaf,
	}, nil
}

// ApplyBlock applies consecutive versions firstVersion, firstVersion+1, ... (one write
// set each) on top of prev, each version reading the nodes the earlier ones wrote. It
// returns the root after each version and every node written, in order.
//
// A block on a large tree is applied to the two halves under its root on two
// goroutines (with the same result): r must be safe for concurrent use.
func ApplyBlock(ctx context.Context, r NodeReader, prev RootRef, firstVersion uint64, batches [][]Update) ([]RootRef, []NodeWrite, error) {
	roots, writes, _, err := applyBlock(ctx, r, prev, firstVersion, batches, false)
	return roots, writes, err
}

// ApplyBlockLive is ApplyBlock that also returns the written nodes that the tree of the
// last version still holds (in no particular order): the ones worth caching for the
// next block, which reads only that tree. The other nodes are replaced within the block
// and read again only for queries at older versions.
func ApplyBlockLive(ctx context.Context, r NodeReader, prev RootRef, firstVersion uint64, batches [][]Update) (roots []RootRef, writes, live []NodeWrite, err error) {
	return applyBlock(ctx, r, prev, firstVersion, batches, true)
}

// applyBlock implements ApplyBlock and, with wantLive, ApplyBlockLive.
func applyBlock(ctx context.Context, r NodeReader, prev RootRef, firstVersion uint64, batches [][]Update, wantLive bool) (roots []RootRef, writes, live []NodeWrite, err error) {
	if roots, writes, live, ok, err := applySplit(ctx, r, prev, firstVersion, batches, wantLive); err != nil || ok {
		return roots, writes, live, err
	}
	// The per-version estimate of Apply, summed: growing one large slice of nodes by
	// copying it costs more than the updates.
	estimate := 0
	for _, b := range batches {
		estimate += nodeEstimate(prev.LeafCount, len(b))
	}
	u, br := newBlockUpdater(ctx, r, firstVersion, estimate)
	roots = make([]RootRef, 0, len(batches))
	root := prev
	for i, batch := range batches {
		u.version = firstVersion + uint64(i)
		from := len(u.writes)
		if root, err = u.run(root, batch); err != nil {
			return nil, nil, nil, err
		}
		if err := br.indexFrom(from, firstVersion); err != nil {
			return nil, nil, nil, err
		}
		roots = append(roots, root)
	}
	if wantLive {
		live = br.appendLive(make([]NodeWrite, 0, len(br.index)))
	}
	return roots, u.writes, live, nil
}

// nodeEstimate is about the number of nodes an update of n keys writes in a tree of
// leaves leaves: one per level below the levels the batch shares, per update, plus the
// ~2.44 nodes per leaf of a random tree.
func nodeEstimate(leaves uint64, n int) int {
	return (max(bits.Len64(max(leaves, 1))-bits.Len(uint(n)), 0) + 3) * n
}

// newBlockUpdater returns an updater for a block of versions from firstVersion, which
// reads through a blockReader over r (returned too) and has room for about estimate
// nodes.
func newBlockUpdater(ctx context.Context, r NodeReader, firstVersion uint64, estimate int) (*updater, *blockReader) {
	u := &updater{ctx: ctx, writes: make([]NodeWrite, 0, estimate)}
	br := &blockReader{base: r, u: u, index: make(map[NodeKey]int32, estimate)}
	u.r = br
	u.replaced = func(k NodeKey) {
		if k.Version >= firstVersion {
			delete(br.index, k)
		}
	}
	return u, br
}

// blockReader serves the nodes of the versions of a block applied so far that are still
// in the tree (by index into the updater's writes), else reads from base.
type blockReader struct {
	base  NodeReader
	u     *updater
	index map[NodeKey]int32
}

// indexFrom indexes the updater's writes from from on: the nodes the version just
// applied wrote, for the next versions of the block (of versions from firstVersion).
func (b *blockReader) indexFrom(from int, firstVersion uint64) error {
	if len(b.u.writes) > math.MaxInt32 {
		return fmt.Errorf("smt apply block from version %d: more than %d nodes", firstVersion, math.MaxInt32)
	}
	for j := from; j < len(b.u.writes); j++ {
		b.index[b.u.writes[j].Key] = int32(j)
	}
	return nil
}

// appendLive appends to dst the nodes written in the block that the tree still holds.
func (b *blockReader) appendLive(dst []NodeWrite) []NodeWrite {
	for _, j := range b.index {
		dst = append(dst, b.u.writes[j])
	}
	return dst
}

func (b *blockReader) GetNode(ctx context.Context, key NodeKey) (Node, error) {
	if j, ok := b.index[key]; ok {
		return b.u.writes[j].Node, nil
	}
	if b.base == nil {
		return Node{}, fmt.Errorf("get %s: %w", key, ErrNodeNotFound)
	}
	return b.base.GetNode(ctx, key)
}

// sortedUpdates returns version's updates in key order (a sorted copy if they are
// not), or an error if a key is updated twice.
func sortedUpdates(version uint64, updates []Update) ([]Update, error) {
	ups := updates
	if !slices.IsSortedFunc(ups, cmpUpdate) {
		ups = slices.Clone(updates)
		slices.SortFunc(ups, cmpUpdate)
	}
	for i := 1; i < len(ups); i++ {
		if ups[i].KeyHash == ups[i-1].KeyHash {
			return nil, fmt.Errorf("smt apply version %d: key %s updated twice", version, ups[i].KeyHash)
		}
	}
	return ups, nil
}

func cmpUpdate(a, b Update) int {
	switch {
	case less(&a.KeyHash, &b.KeyHash):
		return -1
	case a.KeyHash == b.KeyHash:
		return 0
	}
	return 1
}

// splitAt returns the index of the first update whose key has bit depth set.
func splitAt(ups []Update, depth int) int {
	return sort.Search(len(ups), func(i int) bool { return bit(&ups[i].KeyHash, depth) == 1 })
}

func (u *updater) apply(depth int, path ledger.Hash, cur sub, ups []Update) (sub, error) {
	if len(ups) == 0 {
		return cur, nil
	}
	if cur.count == 0 {
		leaves := make([]Leaf, 0, len(ups))
		for i := range ups {
			if !ups[i].Delete {
				leaves = append(leaves, Leaf{ups[i].KeyHash, ups[i].ValueHash})
			}
		}
		return u.build(depth, path, leaves)
	}
	if cur.leaf {
		if err := u.loadKV(depth, path, &cur); err != nil {
			return cur, err
		}
		idx := sort.Search(len(ups), func(i int) bool { return !less(&ups[i].KeyHash, &cur.key) })
		match := idx < len(ups) && ups[idx].KeyHash == cur.key
		inserts := 0
		for i := range ups {
			if !ups[i].Delete {
				inserts++
			}
		}
		changed := match && (ups[idx].Delete || ups[idx].ValueHash != cur.val)
		if !changed && (inserts == 0 || (inserts == 1 && match)) {
			return cur, nil
		}
		leaves := make([]Leaf, 0, inserts+1)
		for i := range ups {
			if i == idx && !match {
				leaves = append(leaves, Leaf{cur.key, cur.val})
			}
			if !ups[i].Delete {
				leaves = append(leaves, Leaf{ups[i].KeyHash, ups[i].ValueHash})
			}
		}
		if idx == len(ups) {
			leaves = append(leaves, Leaf{cur.key, cur.val})
		}
		u.replace(cur.ver, depth, path, &cur)
		return u.build(depth, path, leaves)
	}
	n, err := readNode(u.ctx, u.r, cur.ver, depth, path, false)
	if err != nil {
		return cur, err
	}
	// The store is trusted for hashes (rehashing every node read would double the cost
	// of an update); the leaf count is checked because it is free.
	if n.LeafCount() != cur.count {
		return cur, fmt.Errorf("smt node %s: leaf count %d, its parent's record says %d", NodeKey{cur.ver, uint16(depth), path}, n.LeafCount(), cur.count)
	}
	s := splitAt(ups, depth)
	l, r := childSub(&n.Children[0]), childSub(&n.Children[1])
	nl, err := u.apply(depth+1, path, l, ups[:s])
	if err != nil {
		return cur, err
	}
	nr, err := u.apply(depth+1, childPath(path, depth, 1), r, ups[s:])
	if err != nil {
		return cur, err
	}
	if sameSub(&nl, &l) && sameSub(&nr, &r) {
		return cur, nil
	}
	u.replace(cur.ver, depth, path, &cur)
	return u.combine(depth, path, nl, nr)
}

// build returns the subtree at (depth, path) holding exactly leaves (sorted, unique).
func (u *updater) build(depth int, path ledger.Hash, leaves []Leaf) (sub, error) {
	switch len(leaves) {
	case 0:
		return emptySub, nil
	case 1:
		l := &leaves[0]
		return sub{count: 1, hash: LeafHash(&l.KeyHash, &l.ValueHash), leaf: true, haveKV: true, key: l.KeyHash, val: l.ValueHash}, nil
	}
	s := sort.Search(len(leaves), func(i int) bool { return bit(&leaves[i].KeyHash, depth) == 1 })
	l, err := u.build(depth+1, path, leaves[:s])
	if err != nil {
		return l, err
	}
	r, err := u.build(depth+1, childPath(path, depth, 1), leaves[s:])
	if err != nil {
		return r, err
	}
	return u.combine(depth, path, l, r)
}

// combine returns the subtree at (depth, path) with children l and r, collapsing it to a
// leaf when it holds one, and writes the nodes that changed.
func (u *updater) combine(depth int, path ledger.Hash, l, r sub) (sub, error) {
	if err := u.ctx.Err(); err != nil {
		return l, err
	}
	switch {
	case l.count == 0 && r.count == 0:
		return emptySub, nil
	case l.count == 0 && r.leaf:
		return u.lift(depth+1, childPath(path, depth, 1), r)
	case r.count == 0 && l.leaf:
		return u.lift(depth+1, path, l)
	}
	var n Node
	for b, c := range [2]*sub{&l, &r} {
		if c.count == 0 {
			n.Children[b].Hash = PlaceholderHash
			continue
		}
		if !c.stored {
			u.writeLeaf(depth+1, childPath(path, depth, b), c)
		}
		n.Children[b] = Child{Hash: c.hash, Version: c.ver, LeafCount: c.count, IsLeaf: c.leaf}
	}
	h := InternalHash(&n.Children[0].Hash, &n.Children[1].Hash)
	u.writes = append(u.writes, NodeWrite{Key: NodeKey{Version: u.version, Depth: uint16(depth), Path: path}, Node: n})
	return sub{count: l.count + r.count, hash: h, stored: true, ver: u.version}, nil
}

// lift returns leaf s, described at (depth, path), ready to move up one level.
func (u *updater) lift(depth int, path ledger.Hash, s sub) (sub, error) {
	if err := u.loadKV(depth, path, &s); err != nil {
		return s, err
	}
	u.replace(s.ver, depth, path, &s)
	s.stored, s.ver = false, 0
	return s, nil
}

// loadKV fills in the contents of leaf s stored at (depth, path) if not known yet.
func (u *updater) loadKV(depth int, path ledger.Hash, s *sub) error {
	if s.haveKV {
		return nil
	}
	n, err := readNode(u.ctx, u.r, s.ver, depth, path, true)
	if err != nil {
		return err
	}
	s.haveKV, s.key, s.val = true, n.KeyHash, n.ValueHash
	return nil
}

// replace tells u.replaced that the stored node of s at (ver, depth, path) leaves the tree.
func (u *updater) replace(ver uint64, depth int, path ledger.Hash, s *sub) {
	if u.replaced != nil && s.stored {
		u.replaced(NodeKey{Version: ver, Depth: uint16(depth), Path: path})
	}
}

func (u *updater) writeLeaf(depth int, path ledger.Hash, s *sub) {
	u.writes = append(u.writes, NodeWrite{
		Key:  NodeKey{Version: u.version, Depth: uint16(depth), Path: path},
		Node: Node{IsLeaf: true, KeyHash: s.key, ValueHash: s.val},
	})
	s.stored, s.ver = true, u.version
}

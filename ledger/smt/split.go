package smt

import (
	"context"
	"fmt"
	"sync"

	"github.com/ledgervault/ledgervault/ledger"
)

// splitMinLeaves is the fewest leaves a tree needs for a block to be applied to its two
// halves on two goroutines (see applySplit): below it a half soon holds a single leaf,
// and the goroutines cost more than they save. (A variable for the tests.)
var splitMinLeaves uint64 = 1 << 12

// half is one side of the root while applySplit applies a block to it.
type half struct {
	u    *updater
	br   *blockReader
	subs []sub // the side's subtree after each version
	ends []int // the end of each version's writes in u.writes
	// flat: a version left the side without a stored internal node at its root
	// (empty, a leaf, or a leaf moving up), which the root's combine would write or
	// move: the block is applied sequentially instead.
	flat bool
	// err is the error of version errAt (an index into the block), where the side
	// stopped.
	err   error
	errAt int
}

// applySplit applies a block to the two halves of the tree under prev's root on two
// goroutines (each version's updates of a half only read and write that half), then
// computes each version's root from the two halves' subtrees, in order. It returns
// exactly what the sequential applyBlock returns: the same roots, the same writes in
// the same order, and (with wantLive) the same live nodes. ok is false, with nothing
// written, when the block cannot be applied that way (prev is not a large internal
// node, or a version leaves a half without an internal node at its root, where the
// sequential algorithm moves leaves across the root): the caller applies it
// sequentially.
func applySplit(ctx context.Context, r NodeReader, prev RootRef, firstVersion uint64, batches [][]Update, wantLive bool) (roots []RootRef, writes, live []NodeWrite, ok bool, err error) {
	if prev.LeafCount < splitMinLeaves || prev.IsLeaf || firstVersion <= prev.Key.Version || len(batches) == 0 || prev.Validate() != nil {
		return nil, nil, nil, false, nil
	}
	last := firstVersion + uint64(len(batches)) - 1
	if last < firstVersion {
		return nil, nil, nil, false, nil // versions wrap: the sequential apply reports it
	}
	n, err := readNode(ctx, r, prev.Key.Version, 0, ledger.ZeroHash, false)
	if err != nil || n.LeafCount() != prev.LeafCount {
		return nil, nil, nil, false, nil // the sequential apply reports it
	}
	sorted := make([][]Update, len(batches))
	for i, b := range batches {
		if sorted[i], err = sortedUpdates(firstVersion+uint64(i), b); err != nil {
			// The sequential apply reports it after the versions before, which may
			// fail first.
			return nil, nil, nil, false, nil
		}
	}
	var halves [2]half
	var wg sync.WaitGroup
	for b := range halves {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// A panic (a reader's) ends its half with an error, as it would end the
			// sequential apply in the caller's goroutine, where a caller can recover.
			defer func() {
				if p := recover(); p != nil {
					halves[b].err, halves[b].errAt = fmt.Errorf("smt apply block from version %d: panic: %v", firstVersion, p), -1
				}
			}()
			halves[b].apply(ctx, r, &n.Children[b], b, firstVersion, sorted)
		}()
	}
	wg.Wait()
	if halves[0].flat || halves[1].flat {
		return nil, nil, nil, false, nil
	}
	// The first version's error, as the sequential apply reports it.
	if e0, e1 := halves[0].err, halves[1].err; e0 != nil || e1 != nil {
		if e0 == nil || (e1 != nil && halves[1].errAt < halves[0].errAt) {
			return nil, nil, nil, false, e1
		}
		return nil, nil, nil, false, e0
	}
	roots, writes, rootWrite, err := joinHalves(ctx, &halves, prev, &n, firstVersion, len(batches))
	if err != nil {
		return nil, nil, nil, false, err
	}
	if !wantLive {
		return roots, writes, nil, true, nil
	}
	live = make([]NodeWrite, 0, len(halves[0].br.index)+len(halves[1].br.index)+1)
	for b := range halves {
		live = halves[b].br.appendLive(live)
	}
	if rootWrite >= 0 {
		live = append(live, writes[rootWrite])
	}
	return roots, writes, live, true, nil
}

// apply applies each version's updates under side b of the root to that side's
// subtree, whose root is c.
func (h *half) apply(ctx context.Context, r NodeReader, c *Child, b int, firstVersion uint64, batches [][]Update) {
	// The sequential apply's estimate of the nodes written, for about half the updates.
	estimate := 0
	for _, batch := range batches {
		estimate += nodeEstimate(c.LeafCount, len(batch)/2)
	}
	u, br := newBlockUpdater(ctx, r, firstVersion, estimate)
	h.u, h.br = u, br
	path := childPath(ledger.ZeroHash, 0, b)
	cur := childSub(c)
	h.subs = make([]sub, 0, len(batches))
	h.ends = make([]int, 0, len(batches))
	for i, batch := range batches {
		s := splitAt(batch, 0)
		side := batch[:s]
		if b == 1 {
			side = batch[s:]
		}
		u.version = firstVersion + uint64(i)
		from := len(u.writes)
		res, err := u.apply(1, path, cur, side)
		if err != nil {
			h.err, h.errAt = fmt.Errorf("smt apply version %d: %w", u.version, err), i
			return
		}
		if res.count < 2 || res.leaf || !res.stored {
			h.flat = true
			return
		}
		if err := br.indexFrom(from, firstVersion); err != nil {
			h.err, h.errAt = err, i
			return
		}
		h.subs = append(h.subs, res)
		h.ends = append(h.ends, len(u.writes))
		cur = res
	}
}

// joinHalves computes the root after each version from the halves' subtrees (n is
// prev's root node) and returns the roots, every version's writes in the sequential
// order (left half, right half, root), and the index in writes of the last root
// written (-1 if none: no version changed the tree).
func joinHalves(ctx context.Context, halves *[2]half, prev RootRef, n *Node, firstVersion uint64, versions int) ([]RootRef, []NodeWrite, int, error) {
	ru := &updater{ctx: ctx}
	roots := make([]RootRef, 0, versions)
	writes := make([]NodeWrite, 0, len(halves[0].u.writes)+len(halves[1].u.writes)+versions)
	l, r := childSub(&n.Children[0]), childSub(&n.Children[1])
	root, rootWrite := prev, -1
	var from [2]int
	for i := range versions {
		for b := range halves {
			writes = append(writes, halves[b].u.writes[from[b]:halves[b].ends[i]]...)
			from[b] = halves[b].ends[i]
		}
		nl, nr := halves[0].subs[i], halves[1].subs[i]
		if !sameSub(&nl, &l) || !sameSub(&nr, &r) {
			ru.version = firstVersion + uint64(i)
			ru.writes = ru.writes[:0]
			s, err := ru.combine(0, ledger.ZeroHash, nl, nr)
			if err != nil {
				return nil, nil, -1, fmt.Errorf("smt apply version %d: %w", ru.version, err)
			}
			rootWrite = len(writes)
			writes = append(writes, ru.writes...)
			root = RootRef{Key: NodeKey{Version: s.ver}, Hash: s.hash, LeafCount: s.count, IsLeaf: s.leaf}
			l, r = nl, nr
		}
		roots = append(roots, root)
	}
	return roots, writes, rootWrite, nil
}

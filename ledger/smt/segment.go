package smt

import (
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/ledger"
)

// spineEntry is a complete subtree a segment closes on its left: the right sibling of
// the leaves before it (at depth-1), to be folded with them up to depth to, where the
// result becomes a frontier entry.
type spineEntry struct {
	depth uint16 // of the subtree's root
	to    uint16
	key   ledger.Hash // a leaf of the subtree
	entry frontierEntry
	seg   segment // its nodes not yet handed out (SegmentBuilder only)
}

// Segment is what a run of consecutive leaves (a snapshot chunk) contributes to a tree,
// computed without the rest of the tree: a SegmentBuilder builds it from the run's
// leaves and the key hash of the leaf just before the run, concurrently with other runs,
// and hands out every node all of whose leaves are in the run; Builder.AddSegment then
// adds it to the tree in order, folding the few nodes that also hold earlier leaves and
// verifying the run's range proof, exactly as Builder.AddChunk would with the same
// leaves.
type Segment struct {
	hasPrev  bool
	prev     ledger.Hash // the key hash of the leaf before the run, as assumed
	first    ledger.Hash
	count    uint64
	last     Leaf
	lastHash ledger.Hash
	spine    []spineEntry    // left to right, nodes handed out
	stack    []frontierEntry // the run's own frontier, above the spine, nodes handed out
}

// Len returns the number of leaves of the segment.
func (s *Segment) Len() uint64 { return s.count }

// FirstKeyHash returns the key hash of the segment's first leaf.
func (s *Segment) FirstKeyHash() ledger.Hash { return s.first }

// LastKeyHash returns the key hash of the segment's last leaf.
func (s *Segment) LastKeyHash() ledger.Hash { return s.last.KeyHash }

// SegmentBuilder builds a Segment from leaves added one by one in strictly increasing
// key-hash order. It is not safe for concurrent use; distinct SegmentBuilders are
// independent.
type SegmentBuilder struct {
	b   Builder
	seg Segment
	fn  func(key, value []byte) error
}

// NewSegmentBuilder returns a SegmentBuilder for the leaves that follow the leaf with
// key hash prev (nil: the run starts the tree), writing nodes at version. If fn is not
// nil, it receives every node whose leaves are all in the run, encoded (key as
// NodeKey.AppendBinary, value as Node.AppendBinary; both valid only during the call), in
// runs of a bounded number of nodes, as AddChunkFunc hands them out: the keys of a run
// strictly increase; its first nodes may sort before nodes handed out before (they are
// their ancestors), every other node sorts after every node handed out before. Every
// such node sorts after every node of the leaves before the run. Nothing is verified
// before Builder.AddSegment: a caller must not use the nodes before it accepts the
// segment.
func NewSegmentBuilder(version uint64, prev *ledger.Hash, fn func(key, value []byte) error) *SegmentBuilder {
	s := &SegmentBuilder{fn: fn}
	s.b = Builder{version: version, emit: fn != nil, encode: fn != nil, sentinel: -1, stack: make([]frontierEntry, 0, 64)}
	if prev != nil {
		s.seg.hasPrev, s.seg.prev = true, *prev
	}
	return s
}

// NewSegmentBuilderPostOrder returns a SegmentBuilder that hands every node all of
// whose leaves are in the run to fn as the node completes, in post-order: each node
// after the nodes of its subtree and after every node to its left (the byte order of
// NodeKey.AppendPostOrderKey), never before. fn's node is valid only during the call;
// its first error ends the segment (Add and Finish return it). As with NewSegmentBuilder, nothing is
// verified before Builder.AddSegment accepts the segment.
func NewSegmentBuilderPostOrder(version uint64, prev *ledger.Hash, fn func(w *NodeWrite) error) *SegmentBuilder {
	s := NewSegmentBuilder(version, prev, nil)
	s.b.emit, s.b.post = true, fn
	return s
}

// Add appends the next leaf.
func (s *SegmentBuilder) Add(l Leaf) error {
	b := &s.b
	if b.done {
		return errors.New("smt segment: already finished")
	}
	if b.postErr != nil {
		return b.postErr
	}
	if b.count == 0 {
		s.seg.first = l.KeyHash
		if s.seg.hasPrev {
			c := commonPrefixLen(&s.seg.prev, &l.KeyHash)
			if c == MaxDepth || bit(&l.KeyHash, c) == 0 {
				return fmt.Errorf("smt segment: first leaf %s does not follow %s", l.KeyHash.Short(), s.seg.prev.Short())
			}
			b.sentinel = c
		}
	} else {
		c := commonPrefixLen(&b.last.KeyHash, &l.KeyHash)
		if c == MaxDepth || bit(&l.KeyHash, c) == 0 {
			return fmt.Errorf("smt segment: leaf %d (%s) does not follow %s", b.count, l.KeyHash.Short(), b.last.KeyHash.Short())
		}
		b.complete(c)
		if b.encode && len(b.next) >= streamNodes {
			if err := b.flush(s.fn); err != nil {
				return err
			}
		}
	}
	b.last, b.lastHash = l, LeafHash(&l.KeyHash, &l.ValueHash)
	b.count++
	return nil
}

// Len returns the number of leaves added.
func (s *SegmentBuilder) Len() uint64 { return s.b.count }

// Finish hands out the remaining nodes and returns the segment. A segment needs at
// least one leaf.
func (s *SegmentBuilder) Finish() (*Segment, error) {
	b := &s.b
	if b.done {
		return nil, errors.New("smt segment: already finished")
	}
	if b.count == 0 {
		return nil, errors.New("smt segment: no leaves")
	}
	if b.postErr != nil {
		return nil, b.postErr
	}
	if b.encode {
		if err := b.flush(s.fn); err != nil {
			return nil, err
		}
	}
	b.done = true
	seg := &s.seg
	seg.count, seg.last, seg.lastHash = b.count, b.last, b.lastHash
	seg.spine = append([]spineEntry(nil), b.spine...)
	seg.stack = append([]frontierEntry(nil), b.stack...)
	for i := range seg.spine {
		seg.spine[i].seg, seg.spine[i].entry.seg = segment{}, segment{}
	}
	for i := range seg.stack {
		seg.stack[i].seg = segment{}
	}
	return seg, nil
}

// AddSegment adds the next run of leaves as a segment built by a SegmentBuilder (from
// the key hash of the last leaf added, or nil for the first run) and checks, as AddChunk
// does, that the leaves added so far, with proof (the range proof of the run's last
// leaf), hash to the expected root. If fn is not nil (and the Builder emits nodes), it
// receives the nodes that became complete and hold leaves before the run too (at most
// a few per level), encoded as for AddChunkFunc: they sort before every node of the
// run, and may sort before nodes handed out before (they are their ancestors). A
// rejected segment leaves the Builder as it was.
func (b *Builder) AddSegment(s *Segment, proof RangeProof, fn func(key, value []byte) error) (err error) {
	if b.done {
		return errors.New("smt builder: already finished")
	}
	if s == nil || s.count == 0 {
		return errors.New("smt builder: empty segment")
	}
	switch {
	case s.hasPrev != (b.count > 0):
		if b.count > 0 {
			return fmt.Errorf("smt builder: segment built as the first run, after leaf %d (%s)", b.count-1, b.last.KeyHash.Short())
		}
		return fmt.Errorf("smt builder: segment built after leaf %s, the tree has no leaves yet", s.prev.Short())
	case s.hasPrev && s.prev != b.last.KeyHash:
		return fmt.Errorf("smt builder: segment built after leaf %s, the last leaf added is %s", s.prev.Short(), b.last.KeyHash.Short())
	}
	b.encode = b.emit && fn != nil
	defer func() { b.encode = false }()
	b.resetOutput()
	rollback := b.save()
	defer func() {
		if err != nil {
			rollback()
		}
	}()
	if b.count > 0 {
		c := commonPrefixLen(&b.last.KeyHash, &s.first)
		if c == MaxDepth || bit(&s.first, c) == 0 {
			return fmt.Errorf("smt builder: segment's first leaf %s does not follow %s", s.first.Short(), b.last.KeyHash.Short())
		}
		b.complete(c)
	}
	for i := range s.spine {
		sp := &s.spine[i]
		top := len(b.stack) - 1
		if top < 0 || int(b.stack[top].depth) != int(sp.depth)-1 || sp.to >= sp.depth-1 {
			return fmt.Errorf("smt builder: segment's subtree %d at depth %d does not fit the frontier", i, sp.depth)
		}
		cur := sp.entry
		for j := int(sp.depth) - 1; j > int(sp.to); j-- {
			cur = b.fold(&sp.key, j, cur, &top)
		}
		cur.depth = sp.to
		b.stack = append(b.stack[:top+1], cur)
	}
	if n := len(b.stack); n > 0 && len(s.stack) > 0 && s.stack[0].depth <= b.stack[n-1].depth {
		return fmt.Errorf("smt builder: segment's frontier at depth %d does not fit the tree's at %d", s.stack[0].depth, b.stack[n-1].depth)
	}
	b.stack = append(b.stack, s.stack...)
	b.last, b.lastHash = s.last, s.lastHash
	b.count += s.count
	if err := b.verify(proof.Siblings); err != nil {
		return fmt.Errorf("smt builder: chunk ending at leaf %d (%s): %w", b.count-1, b.last.KeyHash.Short(), err)
	}
	if b.encode {
		return b.flush(fn)
	}
	return nil
}

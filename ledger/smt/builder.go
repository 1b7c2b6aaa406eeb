package smt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/ledgervault/ledgervault/internal/parallel"
	"github.com/ledgervault/ledgervault/ledger"
)

// ErrRootMismatch is wrapped when restored leaves do not hash to the expected root.
var ErrRootMismatch = errors.New("smt root mismatch")

// frontierEntry is a complete left subtree on the right frontier: it is the left child,
// at depth depth+1, of the node at depth on the path of the last leaf added.
type frontierEntry struct {
	depth  uint16
	isLeaf bool
	count  uint64
	hash   ledger.Hash
	seg    segment // the subtree's nodes emitted by the current call, in key order
}

// segment is a list of emitted nodes, linked through Builder.next: head and tail are
// indexes into Builder.out plus one, so that the zero segment is the empty list.
type segment struct{ head, tail int32 }

// Builder rebuilds a tree from its leaves in key-hash order, chunk by chunk, verifying
// each chunk against the expected root with the chunk's range proof. It keeps only the
// right frontier (at most MaxDepth complete left subtrees and the last leaf) in memory and
// hands out every node as soon as it is complete, in the format Apply writes, all keyed
// at the builder's version. A Builder is not safe for concurrent use.
//
// Nodes complete in post-order (children before their parent) but are handed out in key
// order (pre-order), so that a store can write them as a sorted run without sorting:
// every emitted node is linked into the segment of the subtree that holds it, a parent
// in front of its children's segments, and a call returns the segments of the frontier
// from left to right.
type Builder struct {
	root     ledger.Hash
	version  uint64
	count    uint64      // leaves added
	last     Leaf        // the last leaf added, when count > 0
	lastHash ledger.Hash // LeafHash of last
	hashes   []ledger.Hash
	stack    []frontierEntry
	saved    []frontierEntry
	done     bool
	emit     bool
	out      []NodeWrite // nodes emitted by the current call, in post-order
	next     []int32     // next[i] links node i to the following node of its segment (index+1, 0 at the end)
	sorted   []NodeWrite // out in key order, returned to the caller

	// With encode set (AddChunkFunc), nodes are encoded into arena instead of out: node
	// i is arena[ends[i-1]:ends[i]], its key (NodeKeySize bytes) then its value.
	encode bool
	arena  []byte
	ends   []int

	// In a SegmentBuilder, the leaves before the segment are not known: the frontier
	// entry that stands for them lies below stack, at depth sentinel (-1: none, every
	// leaf of the tree is here). A subtree closed as that entry's right sibling is
	// complete but cannot be folded further: it goes to spine.
	sentinel int
	spine    []spineEntry

	// With post set (NewSegmentBuilderPostOrder), every node goes to post as it
	// completes instead of into the output lists; its first error is kept in postErr.
	post    func(w *NodeWrite) error
	postErr error
}

// NewBuilder returns a Builder for the tree with root expectedRoot, writing its nodes
// at version.
func NewBuilder(expectedRoot ledger.Hash, version uint64) *Builder {
	return &Builder{root: expectedRoot, version: version, emit: true, stack: make([]frontierEntry, 0, 64), sentinel: -1}
}

// NewChunkVerifier returns a Builder that only verifies chunks: AddChunk and Finish
// return no nodes. A Builder resumed from its Checkpoint returns nodes again.
func NewChunkVerifier(expectedRoot ledger.Hash) *Builder {
	b := NewBuilder(expectedRoot, 0)
	b.emit = false
	return b
}

// LeafCount returns the number of leaves added so far.
func (b *Builder) LeafCount() uint64 { return b.count }

// LastKeyHash returns the key hash of the last leaf added (false if none): the prev of
// the SegmentBuilder of the next run.
func (b *Builder) LastKeyHash() (ledger.Hash, bool) { return b.last.KeyHash, b.count > 0 }

// newNode appends w to the emitted nodes and returns the segment holding it alone.
func (b *Builder) newNode(w *NodeWrite) segment {
	if b.post != nil {
		if b.postErr == nil {
			b.postErr = b.post(w)
		}
		return segment{}
	}
	if b.encode {
		b.arena, _ = w.Key.AppendBinary(b.arena)
		b.arena = w.Node.appendBinary(b.arena)
		b.ends = append(b.ends, len(b.arena))
	} else {
		b.out = append(b.out, *w)
	}
	b.next = append(b.next, 0)
	i := int32(len(b.next))
	return segment{head: i, tail: i}
}

// join returns segment x followed by segment y.
func (b *Builder) join(x, y segment) segment {
	switch {
	case x.head == 0:
		return y
	case y.head == 0:
		return x
	}
	b.next[x.tail-1] = y.head
	return segment{head: x.head, tail: y.tail}
}

// resetOutput forgets the nodes of the previous call: the frontier's subtrees were handed
// out with them.
func (b *Builder) resetOutput() {
	b.out, b.next, b.sorted = b.out[:0], b.next[:0], b.sorted[:0]
	b.arena, b.ends = b.arena[:0], b.ends[:0]
	for i := range b.stack {
		b.stack[i].seg = segment{}
	}
	for i := range b.spine {
		b.spine[i].seg = segment{}
	}
}

// gather returns the nodes of seg in list order; they are all the nodes emitted by the
// current call.
func (b *Builder) gather(seg segment) ([]NodeWrite, error) {
	for i := seg.head; i != 0; i = b.next[i-1] {
		b.sorted = append(b.sorted, b.out[i-1])
	}
	if len(b.sorted) != len(b.next) {
		return nil, fmt.Errorf("smt builder: internal error: %d of %d emitted nodes linked", len(b.sorted), len(b.next))
	}
	return b.sorted, nil
}

// each hands the encoded nodes of seg to fn in list order; they are all the nodes
// emitted by the current call.
func (b *Builder) each(seg segment, fn func(key, value []byte) error) error {
	n := 0
	for i := seg.head; i != 0; i = b.next[i-1] {
		start := 0
		if i > 1 {
			start = b.ends[i-2]
		}
		e := b.arena[start:b.ends[i-1]]
		if err := fn(e[:NodeKeySize:NodeKeySize], e[NodeKeySize:]); err != nil {
			return err
		}
		n++
	}
	if n != len(b.next) {
		return fmt.Errorf("smt builder: internal error: %d of %d emitted nodes linked", n, len(b.next))
	}
	return nil
}

// AddChunk adds the next leaves (strictly increasing, after every leaf added before) and
// checks that the leaves added so far, with proof (the range proof of the chunk's last
// leaf), hash to the expected root. It returns the nodes that became complete, in
// strictly increasing key order (the order of NodeKey.AppendBinary); the slice is reused
// by the next call. The nodes that are ancestors of nodes returned by earlier calls come
// first and sort before some of those; every other node sorts after every node returned
// before. A rejected chunk leaves the Builder as it was.
func (b *Builder) AddChunk(leaves []Leaf, proof RangeProof) ([]NodeWrite, error) {
	b.encode = false
	return b.addChunk(leaves, proof, nil)
}

// streamNodes is the number of emitted nodes after which AddChunkFunc hands out a run
// (a variable for tests).
var streamNodes = 1 << 13

// AddChunkFunc is AddChunk for a store that writes the nodes while the chunk is being
// verified: it calls fn with each node that became complete, encoded (key as
// NodeKey.AppendBinary, value as Node.AppendBinary; both valid only during the call), in
// runs of a bounded number of nodes. The keys of a run strictly increase; its first nodes
// may sort before nodes handed out before (they are ancestors of those), every other
// node sorts after every node handed out before. Nodes are handed out before the chunk
// is verified: if AddChunkFunc returns an error (a rejected chunk, or fn's error), the
// caller must discard what fn received, and the Builder is left as it was. A Builder from
// NewChunkVerifier never calls fn.
func (b *Builder) AddChunkFunc(leaves []Leaf, proof RangeProof, fn func(key, value []byte) error) error {
	b.encode = b.emit
	defer func() { b.encode = false }()
	_, err := b.addChunk(leaves, proof, fn)
	return err
}

// addChunk implements AddChunk (fn nil) and AddChunkFunc.
func (b *Builder) addChunk(leaves []Leaf, proof RangeProof, fn func(key, value []byte) error) (frozen []NodeWrite, err error) {
	if b.done {
		return nil, errors.New("smt builder: already finished")
	}
	if len(leaves) == 0 {
		return nil, errors.New("smt builder: empty chunk")
	}
	b.resetOutput()
	rollback := b.save()
	defer func() {
		if err != nil {
			rollback()
			frozen = nil
		}
	}()
	b.hashLeaves(leaves)
	for i := range leaves {
		l := &leaves[i]
		if b.count > 0 {
			c := commonPrefixLen(&b.last.KeyHash, &l.KeyHash)
			if c == MaxDepth || bit(&l.KeyHash, c) == 0 {
				return nil, fmt.Errorf("smt builder: leaf %d (%s) of chunk does not follow %s", i, l.KeyHash.Short(), b.last.KeyHash.Short())
			}
			b.complete(c)
			if b.encode && len(b.next) >= streamNodes {
				if err := b.flush(fn); err != nil {
					return nil, err
				}
			}
		}
		b.last, b.lastHash = *l, b.hashes[i]
		b.count++
	}
	if err := b.verify(proof.Siblings); err != nil {
		return nil, fmt.Errorf("smt builder: chunk ending at leaf %d (%s): %w", b.count-1, b.last.KeyHash.Short(), err)
	}
	if !b.emit {
		return nil, nil
	}
	if b.encode {
		return nil, b.flush(fn)
	}
	return b.gather(b.frontierNodes())
}

// save records the frontier, leaf count and last leaf, and returns the function that
// puts them back and forgets the output of the current call: a rejected chunk or
// segment leaves the Builder as it was.
func (b *Builder) save() (rollback func()) {
	b.saved = append(b.saved[:0], b.stack...)
	count, last, lastHash := b.count, b.last, b.lastHash
	return func() {
		b.stack = append(b.stack[:0], b.saved...)
		b.count, b.last, b.lastHash = count, last, lastHash
		b.resetOutput()
	}
}

// frontierNodes links the segments of the frontier's subtrees, left to right, which
// hold every node emitted since the last run was handed out, and forgets them.
func (b *Builder) frontierNodes() segment {
	var all segment
	for i := range b.spine { // left of the stack's subtrees
		all = b.join(all, b.spine[i].seg)
		b.spine[i].seg = segment{}
	}
	for i := range b.stack {
		all = b.join(all, b.stack[i].seg)
		b.stack[i].seg = segment{}
	}
	return all
}

// flush hands the nodes emitted since the last run to fn as a run, in key order.
func (b *Builder) flush(fn func(key, value []byte) error) error {
	if err := b.each(b.frontierNodes(), fn); err != nil {
		return err
	}
	b.next, b.arena, b.ends = b.next[:0], b.arena[:0], b.ends[:0]
	return nil
}

// hashLeaves computes the leaf hashes of a chunk into b.hashes, spreading the work over
// the processors: they do not depend on each other, while folding them into the tree is
// sequential.
func (b *Builder) hashLeaves(leaves []Leaf) {
	b.hashes = slices.Grow(b.hashes[:0], len(leaves))[:len(leaves)]
	parallel.For(len(leaves), 4096, func(lo, hi int) {
		for i := lo; i < hi; i++ {
			b.hashes[i] = LeafHash(&leaves[i].KeyHash, &leaves[i].ValueHash)
		}
	})
}

// complete closes the subtree at depth c+1 holding the last leaf, now that a leaf
// diverging from it at bit c has arrived, and pushes it on the frontier (in a
// SegmentBuilder, on the spine if it is the right sibling of the sentinel).
func (b *Builder) complete(c int) {
	k := &b.last.KeyHash
	top := len(b.stack) - 1
	depth := c + 1
	if top >= 0 && int(b.stack[top].depth) >= depth {
		depth = int(b.stack[top].depth) + 1
	} else if top < 0 && b.sentinel >= depth {
		depth = b.sentinel + 1
	}
	cur := frontierEntry{isLeaf: true, count: 1, hash: b.lastHash}
	if b.emit {
		cur.seg = b.newNode(&NodeWrite{
			Key:  NodeKey{Version: b.version, Depth: uint16(depth), Path: prefix(*k, depth)},
			Node: Node{IsLeaf: true, KeyHash: *k, ValueHash: b.last.ValueHash},
		})
	}
	for j := depth - 1; j > c; j-- {
		if j == b.sentinel {
			// Every entry above the sentinel was folded into cur (each is the left child
			// of a node deeper than the sentinel on the last leaf's path).
			b.spine = append(b.spine, spineEntry{depth: uint16(j + 1), to: uint16(c), key: *k, entry: cur, seg: cur.seg})
			b.spine[len(b.spine)-1].entry.seg = segment{}
			b.sentinel = c
			b.stack = b.stack[:0]
			return
		}
		cur = b.fold(k, j, cur, &top)
	}
	cur.depth = uint16(c)
	b.stack = append(b.stack[:top+1], cur)
}

// fold returns the node at depth j on the path of k (the key hash of a leaf below cur)
// whose child on that path is cur and whose other child is the frontier entry at j
// (popped) or, if none, empty.
func (b *Builder) fold(k *ledger.Hash, j int, cur frontierEntry, top *int) frontierEntry {
	other := frontierEntry{hash: PlaceholderHash}
	side := bit(k, j)
	if side == 1 && *top >= 0 && int(b.stack[*top].depth) == j {
		other = b.stack[*top]
		*top--
	}
	var h ledger.Hash
	var n Node
	if side == 1 {
		h = InternalHash(&other.hash, &cur.hash)
	} else {
		h = InternalHash(&cur.hash, &other.hash)
	}
	var seg segment
	if b.emit {
		n.Children[side] = Child{Hash: cur.hash, Version: b.version, LeafCount: cur.count, IsLeaf: cur.isLeaf}
		if other.count > 0 {
			n.Children[1-side] = Child{Hash: other.hash, Version: b.version, LeafCount: other.count, IsLeaf: other.isLeaf}
		} else {
			n.Children[1-side].Hash = PlaceholderHash
		}
		// Key order: the node, then its left subtree, then its right subtree.
		seg = b.newNode(&NodeWrite{Key: NodeKey{Version: b.version, Depth: uint16(j), Path: prefix(*k, j)}, Node: n})
		if side == 1 {
			seg = b.join(b.join(seg, other.seg), cur.seg)
		} else {
			seg = b.join(b.join(seg, cur.seg), other.seg)
		}
	}
	return frontierEntry{count: cur.count + other.count, hash: h, seg: seg}
}

// verify checks that the frontier, the last leaf and the right siblings hash to the root.
func (b *Builder) verify(sib []ledger.Hash) error {
	k := &b.last.KeyHash
	n := len(sib)
	if n > MaxDepth {
		return fmt.Errorf("%w: %d siblings", ErrInvalidProof, n)
	}
	want := 0
	if top := len(b.stack) - 1; top >= 0 {
		want = int(b.stack[top].depth) + 1
	}
	for i := 0; i < n; i++ {
		if sib[i] == PlaceholderHash {
			continue
		}
		if bit(k, i) == 1 {
			return fmt.Errorf("%w: sibling %d is on the left of the path", ErrInvalidProof, i)
		}
		if i+1 > want {
			want = i + 1
		}
	}
	if n != want {
		return fmt.Errorf("%w: last leaf at depth %d, proof has %d siblings", ErrInvalidProof, want, n)
	}
	cur := b.lastHash
	si := len(b.stack) - 1
	for j := n - 1; j >= 0; j-- {
		if bit(k, j) == 0 {
			cur = InternalHash(&cur, &sib[j])
			continue
		}
		left := PlaceholderHash
		if si >= 0 && int(b.stack[si].depth) == j {
			left = b.stack[si].hash
			si--
		}
		cur = InternalHash(&left, &cur)
	}
	if cur != b.root {
		return fmt.Errorf("%w: computed %s, want %s", ErrRootMismatch, cur.Short(), b.root.Short())
	}
	return nil
}

// Finish completes the tree, checks that its root is the expected root and returns the
// root and the last nodes (the path of the last leaf, ancestors of nodes returned
// before) in key order. No chunk may be added afterwards.
func (b *Builder) Finish() (RootRef, []NodeWrite, error) {
	if b.done {
		return RootRef{}, nil, errors.New("smt builder: already finished")
	}
	if b.count == 0 {
		if b.root != PlaceholderHash {
			return RootRef{}, nil, fmt.Errorf("smt builder: %w: no leaves, want root %s", ErrRootMismatch, b.root.Short())
		}
		b.done = true
		return EmptyRoot(), nil, nil
	}
	b.resetOutput()
	savedStack := append(b.saved[:0], b.stack...)
	top := len(b.stack) - 1
	depth := 0
	if top >= 0 {
		depth = int(b.stack[top].depth) + 1
	}
	k := &b.last.KeyHash
	cur := frontierEntry{isLeaf: true, count: 1, hash: b.lastHash}
	if b.emit {
		cur.seg = b.newNode(&NodeWrite{
			Key:  NodeKey{Version: b.version, Depth: uint16(depth), Path: prefix(*k, depth)},
			Node: Node{IsLeaf: true, KeyHash: *k, ValueHash: b.last.ValueHash},
		})
	}
	for j := depth - 1; j >= 0; j-- {
		cur = b.fold(k, j, cur, &top)
	}
	if cur.hash != b.root || cur.count != b.count {
		b.stack = append(b.stack[:0], savedStack...)
		b.resetOutput()
		return RootRef{}, nil, fmt.Errorf("smt builder: %w: computed %s over %d leaves, want %s", ErrRootMismatch, cur.hash.Short(), b.count, b.root.Short())
	}
	var nodes []NodeWrite
	if b.emit {
		var err error
		if nodes, err = b.gather(cur.seg); err != nil {
			return RootRef{}, nil, err
		}
	}
	b.done = true
	b.stack = b.stack[:0]
	return RootRef{Key: NodeKey{Version: b.version}, Hash: cur.hash, LeafCount: cur.count, IsLeaf: cur.isLeaf}, nodes, nil
}

// Checkpoint encoding.
const (
	checkpointMagic   = "SMTB\x01"
	checkpointFixed   = len(checkpointMagic) + 8 + ledger.HashSize + 8 + 2
	checkpointEntry   = 2 + 1 + 8 + ledger.HashSize
	checkpointLast    = 2 * ledger.HashSize
	maxCheckpointSize = checkpointFixed + checkpointLast + MaxDepth*checkpointEntry
)

// MaxCheckpointSize is the largest encoded builder checkpoint.
const MaxCheckpointSize = maxCheckpointSize

// Checkpoint returns the Builder's state after the last accepted chunk, so that a
// restore killed after persisting that chunk's nodes can resume with ResumeBuilder. The
// format: "SMTB\x01" ‖ version(8) ‖ root(32) ‖ leafCount(8) ‖ entries(2) ‖ [last
// keyHash(32) ‖ last valueHash(32) if leafCount > 0] ‖ entries × (depth(2) ‖ isLeaf(1) ‖
// leafCount(8) ‖ hash(32)), integers big-endian.
func (b *Builder) Checkpoint() []byte {
	out := make([]byte, 0, checkpointFixed+checkpointLast+len(b.stack)*checkpointEntry)
	out = append(out, checkpointMagic...)
	out = binary.BigEndian.AppendUint64(out, b.version)
	out = append(out, b.root[:]...)
	out = binary.BigEndian.AppendUint64(out, b.count)
	out = binary.BigEndian.AppendUint16(out, uint16(len(b.stack)))
	if b.count > 0 {
		out = append(out, b.last.KeyHash[:]...)
		out = append(out, b.last.ValueHash[:]...)
	}
	for _, e := range b.stack {
		out = binary.BigEndian.AppendUint16(out, e.depth)
		if e.isLeaf {
			out = append(out, 1)
		} else {
			out = append(out, 0)
		}
		out = binary.BigEndian.AppendUint64(out, e.count)
		out = append(out, e.hash[:]...)
	}
	return out
}

// ResumeBuilder returns a Builder in the state a Checkpoint recorded, after checking
// that the checkpoint is well formed and belongs to expectedRoot and version.
func ResumeBuilder(expectedRoot ledger.Hash, version uint64, checkpoint []byte) (*Builder, error) {
	b, err := decodeCheckpoint(checkpoint)
	if err != nil {
		return nil, fmt.Errorf("smt builder checkpoint: %w", err)
	}
	if b.root != expectedRoot || b.version != version {
		return nil, fmt.Errorf("smt builder checkpoint: for root %s version %d, not root %s version %d",
			b.root.Short(), b.version, expectedRoot.Short(), version)
	}
	return b, nil
}

func decodeCheckpoint(cp []byte) (*Builder, error) {
	if len(cp) > maxCheckpointSize {
		return nil, fmt.Errorf("%d bytes exceed %d", len(cp), maxCheckpointSize)
	}
	if len(cp) < checkpointFixed || string(cp[:len(checkpointMagic)]) != checkpointMagic {
		return nil, errors.New("bad header")
	}
	p := cp[len(checkpointMagic):]
	b := NewBuilder(ledger.Hash{}, binary.BigEndian.Uint64(p))
	copy(b.root[:], p[8:])
	b.count = binary.BigEndian.Uint64(p[8+ledger.HashSize:])
	entries := int(binary.BigEndian.Uint16(p[16+ledger.HashSize:]))
	p = p[18+ledger.HashSize:]
	if entries > MaxDepth {
		return nil, fmt.Errorf("%d frontier entries > %d", entries, MaxDepth)
	}
	want := entries * checkpointEntry
	if b.count > 0 {
		want += checkpointLast
	} else if entries > 0 {
		return nil, errors.New("frontier without leaves")
	}
	if len(p) != want {
		return nil, fmt.Errorf("want %d bytes of state, got %d", want, len(p))
	}
	if b.count > 0 {
		copy(b.last.KeyHash[:], p)
		copy(b.last.ValueHash[:], p[ledger.HashSize:])
		b.lastHash = LeafHash(&b.last.KeyHash, &b.last.ValueHash)
		p = p[checkpointLast:]
	}
	total := uint64(1)
	prev := -1
	for i := 0; i < entries; i++ {
		e := frontierEntry{depth: binary.BigEndian.Uint16(p), count: binary.BigEndian.Uint64(p[3:])}
		copy(e.hash[:], p[11:])
		switch p[2] {
		case 0:
			if e.count < 2 {
				return nil, fmt.Errorf("entry %d: internal subtree with %d leaves", i, e.count)
			}
		case 1:
			if e.count != 1 {
				return nil, fmt.Errorf("entry %d: leaf with %d leaves", i, e.count)
			}
			e.isLeaf = true
		default:
			return nil, fmt.Errorf("entry %d: bad leaf flag", i)
		}
		d := int(e.depth)
		if d <= prev || d >= MaxDepth {
			return nil, fmt.Errorf("entry %d: depth %d out of order", i, d)
		}
		if bit(&b.last.KeyHash, d) != 1 {
			return nil, fmt.Errorf("entry %d: depth %d is not a left sibling of the last leaf", i, d)
		}
		if total+e.count < total {
			return nil, errors.New("leaf count overflows")
		}
		total += e.count
		prev = d
		b.stack = append(b.stack, e)
		p = p[checkpointEntry:]
	}
	if b.count > 0 && total != b.count {
		return nil, fmt.Errorf("frontier holds %d leaves, checkpoint says %d", total, b.count)
	}
	return b, nil
}

package smt

import "fmt"

// PostOrderGrouper assembles node groups (see GroupNodeWrites) from the nodes of one
// version handed out in post-order, as NewSegmentBuilderPostOrder hands them out: a
// group is complete when its root arrives, after all of its members, so a store can
// write each group as it completes, in the order of the groups' post-order keys. The
// groups whose root never arrives (it holds leaves the builder did not see) stay open;
// Rest hands out their nodes one by one. It keeps only the open groups, at most a few
// per tree level. A PostOrderGrouper is not safe for concurrent use.
type PostOrderGrouper struct {
	open  []*openGroup
	spare []*openGroup
	root  groupMembers // a group that is its root alone
	enc   []byte
}

// openGroup is a group whose root has not arrived: its members so far.
type openGroup struct {
	key NodeKey
	m   groupMembers
}

// Add takes the next node. When w is a group's root it returns the group's key and
// encoding (as DecodeGroup reads it; valid until the next call) and true. The nodes are
// a builder's, not validated again; a member seen twice is an error.
func (p *PostOrderGrouper) Add(w *NodeWrite) (NodeKey, []byte, bool, error) {
	g := w.Key.GroupKey()
	i := len(p.open) - 1
	for i >= 0 && p.open[i].key != g {
		i--
	}
	s := groupSlot(&w.Key)
	if s != 1 { // a member below the group's root
		if i < 0 {
			var o *openGroup
			if n := len(p.spare); n > 0 {
				o, p.spare = p.spare[n-1], p.spare[:n-1]
			} else {
				o = new(openGroup)
			}
			o.key, o.m.has = g, 0
			p.open = append(p.open, o)
			i = len(p.open) - 1
		}
		o := p.open[i]
		if o.m.holds(s) {
			return NodeKey{}, nil, false, fmt.Errorf("smt node group %s: node %s twice", g, w.Key)
		}
		o.m.set(s, &w.Node)
		return NodeKey{}, nil, false, nil
	}
	if i < 0 {
		p.root.has = 0
		p.root.set(1, &w.Node)
		p.enc = appendCompactGroup(p.enc[:0], g.Version, &p.root)
		return g, p.enc, true, nil
	}
	o := p.open[i]
	o.m.set(1, &w.Node)
	p.enc = appendCompactGroup(p.enc[:0], g.Version, &o.m)
	p.open[i] = p.open[len(p.open)-1]
	p.open = p.open[:len(p.open)-1]
	p.spare = append(p.spare, o)
	return g, p.enc, true, nil
}

// Rest calls fn with each node of the groups still open (their roots did not arrive),
// its key and its encoding (as DecodeNode reads it; valid only during the call), and
// forgets them.
func (p *PostOrderGrouper) Rest(fn func(k NodeKey, enc []byte) error) error {
	for _, o := range p.open {
		for s := 2; s <= groupSlots; s++ {
			if !o.m.holds(s) {
				continue
			}
			p.enc = o.m.nodes[s].appendBinary(p.enc[:0])
			if err := fn(slotKey(o.key, s), p.enc); err != nil {
				return err
			}
		}
		p.spare = append(p.spare, o)
	}
	p.open = p.open[:0]
	return nil
}

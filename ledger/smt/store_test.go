package smt

import (
	"context"
	"fmt"
)

// encStore is an in-memory node store that keeps nodes encoded, as a real store does,
// so every test through it exercises the key and node encodings. It keeps every node
// twice, alone and in its node group (GroupNodeWrites), and serves reads from the
// groups, checked against the single node: every test through it also exercises the
// group layout.
type encStore struct {
	t      interface{ Fatalf(string, ...any) }
	nodes  map[string][]byte
	groups map[string][]byte
}

func newEncStore(t interface{ Fatalf(string, ...any) }) *encStore {
	return &encStore{t: t, nodes: map[string][]byte{}, groups: map[string][]byte{}}
}

func (s *encStore) Put(writes ...NodeWrite) {
	for _, w := range writes {
		k := w.Key.Bytes()
		if back, err := DecodeNodeKey(k); err != nil || back != w.Key {
			s.t.Fatalf("node key %s does not round-trip: %v", w.Key, err)
		}
		if _, dup := s.nodes[string(k)]; dup {
			s.t.Fatalf("node %s written twice", w.Key)
		}
		v, err := w.Node.MarshalBinary()
		if err != nil {
			s.t.Fatalf("encode node %s: %v", w.Key, err)
		}
		s.nodes[string(k)] = v
	}
	// A builder hands out one version's nodes over several calls: merge each group with
	// what an earlier call put in it.
	all := append([]NodeWrite(nil), writes...)
	seen := map[string]bool{}
	for _, w := range writes {
		gk := string(w.Key.GroupKey().Bytes())
		if old, ok := s.groups[gk]; ok && !seen[gk] {
			var err error
			if all, err = DecodeGroup(all, w.Key.GroupKey(), old); err != nil {
				s.t.Fatalf("decode group %s: %v", w.Key.GroupKey(), err)
			}
		}
		seen[gk] = true
	}
	err := GroupNodeWrites(all, func(g NodeKey, enc []byte) error {
		if g.Depth%GroupLevels != 0 || g.GroupKey() != g {
			s.t.Fatalf("group key %s is not a group's", g)
		}
		s.groups[string(g.Bytes())] = append([]byte(nil), enc...)
		return nil
	})
	if err != nil {
		s.t.Fatalf("group nodes: %v", err)
	}
}

func (s *encStore) GetNode(_ context.Context, key NodeKey) (Node, error) {
	v, ok := s.nodes[string(key.Bytes())]
	if !ok {
		return Node{}, fmt.Errorf("get %s: %w", key, ErrNodeNotFound)
	}
	n, err := DecodeNode(v)
	if err != nil {
		return n, err
	}
	g := key.GroupKey()
	members, err := DecodeGroup(nil, g, s.groups[string(g.Bytes())])
	if err != nil {
		s.t.Fatalf("decode group of %s: %v", key, err)
	}
	for _, m := range members {
		if m.Key == key {
			if m.Node != n {
				s.t.Fatalf("node %s: group holds %+v, alone %+v", key, m.Node, n)
			}
			return m.Node, nil
		}
	}
	s.t.Fatalf("node %s missing from its group %s", key, g)
	return n, nil
}

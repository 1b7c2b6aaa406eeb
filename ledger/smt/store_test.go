package smt

import (
	"context"
	"fmt"
)

// encStore is an in-memory node store that keeps nodes encoded, as a real store does,
// so every test through it exercises the key and node encodings.
type encStore struct {
	t     interface{ Fatalf(string, ...any) }
	nodes map[string][]byte
}

func newEncStore(t interface{ Fatalf(string, ...any) }) *encStore {
	return &encStore{t: t, nodes: map[string][]byte{}}
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
}

func (s *encStore) GetNode(_ context.Context, key NodeKey) (Node, error) {
	v, ok := s.nodes[string(key.Bytes())]
	if !ok {
		return Node{}, fmt.Errorf("get %s: %w", key, ErrNodeNotFound)
	}
	return DecodeNode(v)
}

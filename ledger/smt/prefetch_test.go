package smt

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"testing"

	"pgregory.net/rapid"
)

// recordingReader serves nodes from base and records the keys it served.
type recordingReader struct {
	base NodeReader
	mu   sync.Mutex
	read map[NodeKey]bool
}

func (r *recordingReader) GetNode(ctx context.Context, k NodeKey) (Node, error) {
	n, err := r.base.GetNode(ctx, k)
	if err == nil {
		r.mu.Lock()
		r.read[k] = true
		r.mu.Unlock()
	}
	return n, err
}

// onlyReader serves only the nodes of allowed: what a cache filled by Prefetch holds.
type onlyReader struct {
	base    NodeReader
	allowed map[NodeKey]bool
}

func (r onlyReader) GetNode(ctx context.Context, k NodeKey) (Node, error) {
	if !r.allowed[k] {
		return Node{}, fmt.Errorf("node %s not prefetched: %w", k, ErrNodeNotFound)
	}
	return r.base.GetNode(ctx, k)
}

// TestRapidPrefetchCoversApply checks that Prefetch reads every node an Apply of the
// same updates (inserts, updates, deletions, deletions of absent keys) on the same tree
// reads: Apply succeeds reading only the prefetched nodes, with the same root.
func TestRapidPrefetchCoversApply(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		ctx := context.Background()
		store, hist, bases := buildHistory(t)
		last := hist[len(hist)-1]
		m := maps.Clone(last.m)
		ups := drawBatch(t, bases, m)
		rec := &recordingReader{base: store, read: map[NodeKey]bool{}}
		if err := Prefetch(ctx, rec, last.root, ups); err != nil {
			t.Fatalf("prefetch: %v", err)
		}
		got, _, err := Apply(ctx, onlyReader{store, rec.read}, last.root, last.version+1, ups)
		if err != nil {
			t.Fatalf("apply on the prefetched nodes: %v", err)
		}
		want, _, err := Apply(ctx, store, last.root, last.version+1, ups)
		if err != nil {
			t.Fatalf("apply: %v", err)
		}
		if got != want {
			t.Fatalf("root %+v, want %+v", got, want)
		}
	})
}

// TestPrefetchStopsAtContextEnd checks that Prefetch returns the context's error.
func TestPrefetchStopsAtContextEnd(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	root := RootRef{LeafCount: 2}
	if err := Prefetch(ctx, onlyReader{}, root, []Update{{}}); err != context.Canceled {
		t.Fatalf("prefetch after cancel: %v, want %v", err, context.Canceled)
	}
}

package smt

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	ups := []Update{{KeyHash: KeyHash([]byte("a"))}, {KeyHash: KeyHash([]byte("b"))}}
	if _, _, err := Apply(ctx, NewOverlay(nil), EmptyRoot(), 1, ups); !errors.Is(err, context.Canceled) {
		t.Fatalf("apply with a cancelled context: %v", err)
	}
}

func TestLeavesStopsOnError(t *testing.T) {
	store, leaves, root := fuzzTree(t)
	stop := errors.New("stop")
	n := 0
	err := Leaves(context.Background(), store, root, 5, func(i uint64, l Leaf) error {
		if l != leaves[i] {
			t.Fatalf("leaf %d differs", i)
		}
		n++
		if n == 3 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 3 {
		t.Fatalf("leaves: %v after %d", err, n)
	}
}

func TestSortNodeWrites(t *testing.T) {
	_, _, root := fuzzTree(t)
	var ups []Update
	for i := range 250 {
		ups = append(ups, Update{KeyHash: KeyHash([]byte{byte(i), 9}), ValueHash: root.Hash})
	}
	_, w, err := Apply(context.Background(), NewOverlay(nil), EmptyRoot(), 3, ups)
	if err != nil {
		t.Fatal(err)
	}
	SortNodeWrites(w)
	for i := 1; i < len(w); i++ {
		if bytes.Compare(w[i-1].Key.Bytes(), w[i].Key.Bytes()) >= 0 {
			t.Fatalf("writes %d and %d out of order", i-1, i)
		}
	}
}

package ledgerdb_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// Raw table bytes of the node layouts (keys.go).
const (
	rawTableSMTNode  = 0x06
	rawTableSMTGroup = 0x0a
	rawTableMeta     = 0x01
)

// quietPebble keeps Pebble's informational lines out of the test log.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)              {}
func (quietPebble) Errorf(format string, args ...any) {}
func (quietPebble) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// TestCommittedNodesAreGrouped commits a chain and checks the store's layout: every
// committed version keeps its tree nodes in four-level groups (none alone), each group
// well formed under its own key, far fewer groups than nodes; the store serves the same
// proofs after a reopen.
func TestCommittedNodesAreGrouped(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root, want := closedChain(t, dir, devnet.Config{EpochLength: 50, BlockSize: 7, GenesisAccounts: 300}, 120)
	pdb, err := pebble.Open(dir, &pebble.Options{ReadOnly: true, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{rawTableSMTNode}, UpperBound: []byte{rawTableSMTGroup + 1}})
	if err != nil {
		t.Fatal(err)
	}
	groups, nodes := 0, 0
	for it.First(); it.Valid(); it.Next() {
		k := it.Key()
		switch k[0] {
		case rawTableSMTNode:
			t.Fatalf("committed store holds a single node record %x", k)
		case rawTableSMTGroup:
			g, err := smt.DecodeNodeKey(k[1:])
			if err != nil {
				t.Fatalf("group key %x: %v", k, err)
			}
			members, err := smt.DecodeGroup(nil, g, it.Value())
			if err != nil {
				t.Fatalf("group %s: %v", g, err)
			}
			for _, m := range members {
				if m.Key.GroupKey() != g {
					t.Fatalf("node %s in group %s", m.Key, g)
				}
			}
			groups++
			nodes += len(members)
		}
	}
	if err := errors.Join(it.Close(), pdb.Close()); err != nil {
		t.Fatal(err)
	}
	if groups == 0 || nodes < 2*groups {
		t.Fatalf("%d nodes in %d groups: want at least two nodes per group on average", nodes, groups)
	}
	t.Logf("%d nodes in %d groups", nodes, groups)
	db := openDB(t, dir)
	defer db.Close()
	if got := modelAt(t, db, 120); len(got) != len(want) {
		t.Fatalf("reopened store: %d keys, want %d", len(got), len(want))
	}
	again, err := db.StateRoot(ctx, 120)
	if err != nil || again != root {
		t.Fatalf("reopened root %v %v, want %v", again, err, root)
	}
	for k, v := range want {
		got, err := db.StateValue(ctx, 120, []byte(k))
		if err != nil || string(got) != string(v) {
			t.Fatalf("value of %q: %q %v", k, got, err)
		}
	}
	checkProofs(t, db, 120, root, want)
}

// closedChain commits a devnet chain to version last in dir and closes it; it returns
// the root and the state at last.
func closedChain(t *testing.T, dir string, cfg devnet.Config, last uint64) (smt.RootRef, map[string][]byte) {
	t.Helper()
	db, _ := newChain(t, dir, cfg, last)
	root, err := db.StateRoot(context.Background(), last)
	if err != nil {
		t.Fatal(err)
	}
	want := modelAt(t, db, last)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return root, want
}

// checkProofs checks the store's proof of every key of state (the state at version v)
// against root.
func checkProofs(t *testing.T, db *ledgerdb.DB, v uint64, root smt.RootRef, state map[string][]byte) {
	t.Helper()
	for k, val := range state {
		p, err := db.StateProof(context.Background(), v, smt.KeyHash([]byte(k)))
		if err != nil {
			t.Fatal(err)
		}
		vh := smt.ValueHash(val)
		if err := p.Verify(root.RootHash(), smt.KeyHash([]byte(k)), &vh); err != nil {
			t.Fatalf("proof of %q at %d: %v", k, v, err)
		}
	}
}

// TestOldNodeLayoutRefused opens stores whose state record predates numbered layouts:
// one with committed versions (every node alone) is refused with a message that says
// what to do; an empty one and one holding only a restored snapshot read the same in
// both layouts and open.
func TestOldNodeLayoutRefused(t *testing.T) {
	for _, tc := range []struct {
		name  string
		state map[string]any
		ok    bool
	}{
		{"committed", map[string]any{"next_version": 40, "latest_epoch": 1}, false},
		{"future", map[string]any{"next_version": 40, "node_layout": 5}, false},
		{"layout-3", map[string]any{"next_version": 8, "first_txn_version": 8, "has_state_base": true, "state_base_version": 7, "accumulator_missing": true, "node_layout": 3}, true},
		{"layout-2", map[string]any{"next_version": 8, "first_txn_version": 8, "has_state_base": true, "state_base_version": 7, "accumulator_missing": true, "node_layout": 2}, true},
		{"restored-only", map[string]any{"next_version": 8, "first_txn_version": 8, "has_state_base": true, "state_base_version": 7, "accumulator_missing": true}, true},
		{"restored-and-replayed", map[string]any{"next_version": 9, "first_txn_version": 8, "has_state_base": true, "state_base_version": 7, "accumulator_missing": true}, false},
		{"empty", map[string]any{"next_version": 0, "accumulator_missing": true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			pdb, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := json.Marshal(tc.state)
			if err := pdb.Set(append([]byte{rawTableMeta}, "state"...), raw, pebble.Sync); err != nil {
				t.Fatal(err)
			}
			if err := pdb.Close(); err != nil {
				t.Fatal(err)
			}
			db, err := ledgerdb.Open(context.Background(), dir, ledgerdb.Options{})
			if tc.ok {
				if err != nil {
					t.Fatalf("open: %v", err)
				}
				if err := db.Close(); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				db.Close()
				t.Fatal("store of an old layout opens")
			}
			if !errors.Is(err, ledgerdb.ErrStoreLayout) || !strings.Contains(err.Error(), "restore it again") || !strings.Contains(err.Error(), dir) {
				t.Fatalf("error %q: want ErrStoreLayout naming the store and what to do", err)
			}
		})
	}
}

// TestNoObsoleteLogsAfterClose commits, closes and reopens a store three times and checks
// that only the current WAL file remains: Pebble would otherwise keep the logs made
// obsolete by each flush for reuse, as large as the batches they held.
func TestNoObsoleteLogsAfterClose(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := devnet.Config{EpochLength: 50, BlockSize: 7, GenesisAccounts: 300}
	db, _ := newChain(t, dir, cfg, 60)
	for round := 1; round <= 3; round++ {
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		logs, err := filepath.Glob(filepath.Join(dir, "*.log"))
		if err != nil {
			t.Fatal(err)
		}
		if len(logs) > 1 {
			t.Fatalf("round %d: %d WAL files after close, want only the current one: %v", round, len(logs), logs)
		}
		db = openDB(t, dir)
		c, err := devnet.Open(ctx, db, withSecret(cfg))
		if err != nil {
			t.Fatal(err)
		}
		if err := c.CommitUntil(ctx, uint64(60+40*round)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestPlainGroupsRead rewrites every node group of a committed store in the plain
// encoding of layouts 2 and 3 (slot ‖ node per member) and marks the store layout 3: it
// reads the same (state, root, proofs), commits on top in the compact encoding, and the
// versions committed after read alongside the old groups.
func TestPlainGroupsRead(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := devnet.Config{EpochLength: 50, BlockSize: 7, GenesisAccounts: 300}
	root, want := closedChain(t, dir, cfg, 120)
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	it, err := pdb.NewIter(&pebble.IterOptions{LowerBound: []byte{rawTableSMTGroup}, UpperBound: []byte{rawTableSMTGroup + 1}})
	if err != nil {
		t.Fatal(err)
	}
	b := pdb.NewBatch()
	rewritten := 0
	for it.First(); it.Valid(); it.Next() {
		g, err := smt.DecodeNodeKey(it.Key()[1:])
		if err != nil {
			t.Fatal(err)
		}
		if it.Value()[0] != 0x00 {
			t.Fatalf("group %s is not in the compact encoding", g)
		}
		members, err := smt.DecodeGroup(nil, g, it.Value())
		if err != nil {
			t.Fatal(err)
		}
		var plain []byte
		for _, m := range members {
			s := 1
			for i := int(g.Depth); i < int(m.Key.Depth); i++ {
				s = s<<1 | int(m.Key.Path[i/8]>>(7-i%8)&1)
			}
			plain = append(plain, byte(s))
			if plain, err = m.Node.AppendBinary(plain); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Set(bytes.Clone(it.Key()), plain, nil); err != nil {
			t.Fatal(err)
		}
		rewritten++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		t.Fatal(err)
	}
	setLayout(t, pdb, 3)
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	if rewritten == 0 {
		t.Fatal("no group to rewrite")
	}
	db := openDB(t, dir)
	defer db.Close()
	if got := modelAt(t, db, 120); len(got) != len(want) {
		t.Fatalf("rewritten store: %d keys, want %d", len(got), len(want))
	}
	checkProofs(t, db, 120, root, want)
	c, err := devnet.Open(ctx, db, withSecret(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitUntil(ctx, 160); err != nil {
		t.Fatal(err)
	}
	later, err := db.StateRoot(ctx, 160)
	if err != nil {
		t.Fatal(err)
	}
	checkProofs(t, db, 160, later, modelAt(t, db, 160))
}

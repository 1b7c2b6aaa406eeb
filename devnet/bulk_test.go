package devnet

import (
	"bytes"
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

func TestCommitAccounts(t *testing.T) {
	ctx := context.Background()
	db, wp, c := newBulkChain(t, Config{Secret: []byte("bulk"), EpochLength: 7, BlockSize: 5, GenesisAccounts: 10})
	if err := c.CommitAccounts(ctx, 1000, 30, 100); err != nil {
		t.Fatal(err)
	}
	// Then the normal workload continues on top.
	if err := c.CommitUntil(ctx, c.NextVersion()+20); err != nil {
		t.Fatal(err)
	}
	n, err := db.StateItemCount(ctx, c.NextVersion()-1)
	if err != nil {
		t.Fatal(err)
	}
	if n < 1000 {
		t.Fatalf("%d state items after creating 1000 accounts", n)
	}
	v, err := db.StateValue(ctx, c.NextVersion()-1, AccountKey(10+500))
	if err != nil || len(v) != 100 {
		t.Fatalf("bulk account: %d bytes, %v", len(v), err)
	}
	// Every epoch ending verifies from the waypoint.
	g, err := db.EpochEnding(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	h, err := ledger.NewEpochHistory(wp, &g.LedgerInfo)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := db.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for e := uint64(1); e < sum.LatestEpoch; e++ {
		li, err := db.EpochEnding(ctx, e)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Append(&li); err != nil {
			t.Fatalf("epoch %d: %v", e, err)
		}
	}
	if err := h.Verify(sum.LatestLedgerInfo); err != nil {
		t.Fatal(err)
	}
}

// TestCommitAccountsKeyHashOrder checks that the bulk transactions take the new accounts
// in key-hash order: each transaction's accounts lie above all of the previous one's, so
// a version writes only its own part of the tree (plus the left edge), and together
// they create every account number once.
func TestCommitAccountsKeyHashOrder(t *testing.T) {
	ctx := context.Background()
	db, _, c := newBulkChain(t, Config{Secret: []byte("bulk-order"), EpochLength: 1000, BlockSize: 4, GenesisAccounts: 3})
	first := c.NextVersion()
	start := c.nextAccount
	const n, perTxn = 1000, 64
	if err := c.CommitAccounts(ctx, n, perTxn, 16); err != nil {
		t.Fatal(err)
	}
	if c.NextVersion()-first != (n+perTxn-1)/perTxn {
		t.Fatalf("%d accounts in %d transactions of %d", n, c.NextVersion()-first, perTxn)
	}
	created := make(map[string]bool)
	var prevMax ledger.Hash
	for v := first; v < c.NextVersion(); v++ {
		txn, err := db.Transaction(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		ws := txn.WriteSet
		var lo, hi ledger.Hash
		for i, op := range ws {
			if i > 0 && string(ws[i-1].Key) >= string(op.Key) {
				t.Fatalf("version %d: write set not sorted at %d", v, i)
			}
			h := smt.KeyHash(op.Key)
			if i == 0 || bytes.Compare(h[:], lo[:]) < 0 {
				lo = h
			}
			if i == 0 || bytes.Compare(h[:], hi[:]) > 0 {
				hi = h
			}
			created[string(op.Key)] = true
		}
		if v > first && bytes.Compare(lo[:], prevMax[:]) <= 0 {
			t.Fatalf("version %d: lowest key hash %s is not above the previous version's highest %s", v, lo.Short(), prevMax.Short())
		}
		prevMax = hi
	}
	for a := start; a < start+n; a++ {
		if !created[string(AccountKey(a))] {
			t.Fatalf("account %d not created", a)
		}
	}
	if len(created) != n {
		t.Fatalf("%d accounts created, want %d", len(created), n)
	}
}

// newBulkChain opens a store in a temporary directory (closed when the test ends),
// commits cfg's genesis and returns the store, the waypoint and the chain on top.
func newBulkChain(t *testing.T, cfg Config) (*ledgerdb.DB, ledger.Waypoint, *Chain) {
	t.Helper()
	ctx := context.Background()
	db, err := ledgerdb.Open(ctx, t.TempDir(), ledgerdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	wp, err := Genesis(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return db, wp, c
}

package devnet

import (
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

func TestCommitAccounts(t *testing.T) {
	ctx := context.Background()
	db, err := ledgerdb.Open(ctx, t.TempDir(), ledgerdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	cfg := Config{Secret: []byte("bulk"), EpochLength: 7, BlockSize: 5, GenesisAccounts: 10}
	wp, err := Genesis(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Open(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
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

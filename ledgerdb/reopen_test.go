package ledgerdb_test

import (
	"context"
	"os"
	"strconv"
	"testing"

	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// TestReopenKeepsRootsAndProofs commits many versions (100k; 10k under the race
// detector, which scripts/test.sh complements with a full-size pass without it;
// LEDGERVAULT_REOPEN_VERSIONS overrides), records every state and accumulator root and
// a sample of proofs, reopens the store and checks that all of them read back identical.
func TestReopenKeepsRootsAndProofs(t *testing.T) {
	versions := uint64(100_000)
	if raceEnabled {
		versions = 10_000
	}
	if s := os.Getenv("LEDGERVAULT_REOPEN_VERSIONS"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		versions = n
	}
	ctx := context.Background()
	dir := t.TempDir()
	db, _ := newChain(t, dir, devnet.Config{EpochLength: 10_000, BlockSize: 1000, GenesisAccounts: 1000}, versions-1)

	type snapshot struct {
		state, acc ledger.Hash
	}
	record := func(db interface {
		StateRoot(context.Context, uint64) (smt.RootRef, error)
		AccumulatorRoot(context.Context, uint64) (ledger.Hash, error)
	}) []snapshot {
		out := make([]snapshot, versions)
		for v := uint64(0); v < versions; v++ {
			r, err := db.StateRoot(ctx, v)
			if err != nil {
				t.Fatal(err)
			}
			out[v].state = r.RootHash()
			if v%997 == 0 || v == versions-1 {
				a, err := db.AccumulatorRoot(ctx, v)
				if err != nil {
					t.Fatal(err)
				}
				out[v].acc = a
			}
		}
		return out
	}
	proofs := func() [][]byte {
		var out [][]byte
		for _, v := range []uint64{0, versions / 3, versions - 1} {
			p, err := db.StateProof(ctx, v, smt.KeyHash(devnet.AccountKey(7)))
			if err != nil {
				t.Fatal(err)
			}
			b, err := p.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
			rp, err := db.TransactionRangeProof(ctx, v/2, v, versions-1)
			if err != nil {
				t.Fatal(err)
			}
			rb, err := rp.Encode()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, rb)
		}
		return out
	}
	before, beforeProofs := record(db), proofs()
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	after, afterProofs := record(db), proofs()
	for v := range before {
		if before[v] != after[v] {
			t.Fatalf("version %d: roots differ after reopen", v)
		}
	}
	for i := range beforeProofs {
		if string(beforeProofs[i]) != string(afterProofs[i]) {
			t.Fatalf("proof %d differs after reopen", i)
		}
	}
	// Distinct versions have distinct state roots (the workload changes state each time).
	if before[1].state == before[versions-1].state {
		t.Fatal("state roots do not change: the test would prove nothing")
	}
	sum, err := db.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.NextVersion != versions {
		t.Fatalf("reopened store at version %d, want %d", sum.NextVersion, versions)
	}
}

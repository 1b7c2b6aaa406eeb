package ledgerdb_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// sourceTxns commits a chain of last+1 versions and returns it with its transactions.
func sourceTxns(t *testing.T, last uint64) (*ledgerdb.DB, []ledger.TransactionWithOutput) {
	t.Helper()
	src, _ := newChain(t, t.TempDir(), devnet.Config{EpochLength: 200, BlockSize: 50}, last)
	var txns []ledger.TransactionWithOutput
	if err := src.Transactions(context.Background(), 0, last+1, func(_ uint64, raw []byte) error {
		txn, err := ledger.DecodeTransactionWithOutput(raw)
		txns = append(txns, txn)
		return err
	}); err != nil {
		src.Close()
		t.Fatal(err)
	}
	return src, txns
}

// TestSaveTransactionsInSteps saves more transactions per call than one internal step
// holds, with a forged write set in the third step: the steps before it stay written,
// the call that follows continues from there, and the result answers every query at
// every version exactly like the source, also after reopening.
func TestSaveTransactionsInSteps(t *testing.T) {
	ctx := context.Background()
	const last = 1400
	src, txns := sourceTxns(t, last)
	defer src.Close()

	dir := filepath.Join(t.TempDir(), "dst")
	dst := openDB(t, dir)
	if err := dst.SeedAccumulator(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := dst.SaveTransactions(ctx, 0, txns[:100]); err != nil {
		t.Fatal(err)
	}
	forged := append([]ledger.TransactionWithOutput(nil), txns[100:]...)
	const bad = 2*512 + 37 // in the third step
	forged[bad].WriteSet = ledger.WriteSet{{Key: []byte("forged"), Value: []byte("x")}}
	if err := dst.SaveTransactions(ctx, 100, forged); err == nil {
		t.Fatal("transactions with a forged write set saved")
	} else {
		t.Log(err)
	}
	sum, err := dst.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sum.NextVersion, uint64(100+2*512); got != want {
		t.Fatalf("after the failed call the store is at version %d, want %d (the steps before the forged one)", got, want)
	}
	if err := dst.SaveTransactions(ctx, 100, txns[100:]); err == nil {
		t.Fatal("saved transactions from a version the store is past")
	}
	if err := dst.SaveTransactions(ctx, 100+2*512, txns[100+2*512:]); err != nil {
		t.Fatal(err)
	}
	compareStores(t, src, dst, last)
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	dst = openDB(t, dir)
	defer dst.Close()
	compareStores(t, src, dst, last)
}

// TestSaveTransactionsCrashAfterNodes stops a save between a step's ingestion (nodes,
// transactions, state roots) and the batch that makes the step's versions part of the store, as a crash there
// would: the store stays at the step before, the orphaned entries are not readable, and
// saving the same versions again (ingesting the same keys a second time) gives a
// store equal to the source, in the same process (whose node cache must forget the
// unsaved versions) and after reopening.
func TestSaveTransactionsCrashAfterNodes(t *testing.T) {
	ctx := context.Background()
	const last = 1400
	src, txns := sourceTxns(t, last)
	defer src.Close()
	dir := filepath.Join(t.TempDir(), "dst")
	dst := openDB(t, dir)
	if err := dst.SeedAccumulator(ctx, 0, nil); err != nil {
		t.Fatal(err)
	}
	if err := dst.SaveTransactions(ctx, 0, txns[:512]); err != nil {
		t.Fatal(err)
	}
	crash := errors.New("crash after the ingestion")
	reset := ledgerdb.SetIngestedHook(func(first uint64) error {
		if first == 512 {
			return crash
		}
		return nil
	})
	err := dst.SaveTransactions(ctx, 512, txns[512:])
	reset()
	if !errors.Is(err, crash) {
		t.Fatalf("SaveTransactions = %v, want the injected crash", err)
	}
	sum, err := dst.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.NextVersion != 512 {
		t.Fatalf("after the crash the store is at version %d, want 512", sum.NextVersion)
	}
	if _, err := dst.StateRoot(ctx, 512); !errors.Is(err, ledgerdb.ErrNotFound) {
		t.Fatalf("state root of an unsaved version: %v, want ErrNotFound", err)
	}
	if _, err := dst.Transaction(ctx, 512); !errors.Is(err, ledgerdb.ErrNotFound) {
		t.Fatalf("transaction of an unsaved version: %v, want ErrNotFound", err)
	}
	if err := dst.Transactions(ctx, 500, 20, func(uint64, []byte) error { return nil }); !errors.Is(err, ledgerdb.ErrNotFound) {
		t.Fatalf("transactions past the saved versions: %v, want ErrNotFound", err)
	}
	if err := dst.SaveTransactions(ctx, 512, txns[512:1000]); err != nil {
		t.Fatal(err)
	}
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	// Once more across a reopen, from a version inside an orphaned step.
	dst = openDB(t, dir)
	reset = ledgerdb.SetIngestedHook(func(uint64) error { return crash })
	if err := dst.SaveTransactions(ctx, 1000, txns[1000:1200]); !errors.Is(err, crash) {
		t.Fatalf("SaveTransactions = %v, want the injected crash", err)
	}
	reset()
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	dst = openDB(t, dir)
	defer dst.Close()
	if err := dst.SaveTransactions(ctx, 1000, txns[1000:]); err != nil {
		t.Fatal(err)
	}
	compareStores(t, src, dst, last)
}

// compareStores checks that dst holds src's transactions, state roots and accumulator
// roots at every version up to last, and the same state values and proofs at some.
func compareStores(t *testing.T, src, dst *ledgerdb.DB, last uint64) {
	t.Helper()
	ctx := context.Background()
	var want [][]byte
	if err := src.Transactions(ctx, 0, last+1, func(_ uint64, raw []byte) error {
		want = append(want, bytes.Clone(raw))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := dst.Transactions(ctx, 0, last+1, func(v uint64, raw []byte) error {
		if !bytes.Equal(raw, want[v]) {
			t.Fatalf("transaction %d differs", v)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for v := uint64(0); v <= last; v++ {
		ws, err := src.StateRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		hs, err := dst.StateRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if ws != hs {
			t.Fatalf("state root at %d: %+v, source %+v", v, hs, ws)
		}
		wa, err := src.AccumulatorRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		ha, err := dst.AccumulatorRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if wa != ha {
			t.Fatalf("accumulator root at %d differs", v)
		}
	}
	for _, v := range []uint64{0, 99, 100, 611, 1123, 1124, last} {
		type item struct{ k, v []byte }
		var items []item
		if err := src.StateValues(ctx, v, 0, 0, func(_ uint64, k, val []byte) error {
			items = append(items, item{bytes.Clone(k), bytes.Clone(val)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		n := 0
		if err := dst.StateValues(ctx, v, 0, 0, func(i uint64, k, val []byte) error {
			if i >= uint64(len(items)) || !bytes.Equal(k, items[i].k) || !bytes.Equal(val, items[i].v) {
				t.Fatalf("version %d: item %d differs", v, i)
			}
			n++
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if n != len(items) {
			t.Fatalf("version %d: %d items, source %d", v, n, len(items))
		}
		for i := 0; i < len(items); i += 7 {
			kh := smt.KeyHash(items[i].k)
			wp, err := src.StateProof(ctx, v, kh)
			if err != nil {
				t.Fatal(err)
			}
			hp, err := dst.StateProof(ctx, v, kh)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(wp, hp) {
				t.Fatalf("version %d: proof of item %d differs", v, i)
			}
		}
	}
}

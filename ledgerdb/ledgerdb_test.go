package ledgerdb_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/accumulator"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("ledgerdb-test")

func openDB(t testing.TB, dir string) *ledgerdb.DB {
	t.Helper()
	db, err := ledgerdb.Open(context.Background(), dir, ledgerdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// newChain creates a store with genesis and commits versions up to last.
func newChain(t testing.TB, dir string, cfg devnet.Config, last uint64) (*ledgerdb.DB, ledger.Waypoint) {
	t.Helper()
	ctx := context.Background()
	db := openDB(t, dir)
	cfg.Secret = testSecret
	wp, err := devnet.Genesis(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := devnet.Open(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitUntil(ctx, last); err != nil {
		t.Fatal(err)
	}
	return db, wp
}

// model replays the committed write sets into a map per version, the naive reference.
func modelAt(t testing.TB, db *ledgerdb.DB, v uint64) map[string][]byte {
	t.Helper()
	m := map[string][]byte{}
	err := db.Transactions(context.Background(), 0, v+1, func(_ uint64, raw []byte) error {
		txn, err := ledger.DecodeTransactionWithOutput(raw)
		if err != nil {
			return err
		}
		for _, op := range txn.WriteSet {
			if op.Deleted {
				delete(m, string(op.Key))
			} else {
				m[string(op.Key)] = op.Value
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestCommitAndReadBack(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db, wp := newChain(t, dir, devnet.Config{EpochLength: 300, BlockSize: 37, GenesisAccounts: 50, LargeValueEvery: 50, LargeValueSize: 5000}, 1000)
	defer db.Close()

	sum, err := db.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if sum.NextVersion != 1001 || sum.LatestLedgerInfo == nil || sum.LatestLedgerInfo.LedgerInfo.Version != 1000 {
		t.Fatalf("summary %+v", sum)
	}

	// The epoch history verifies from the genesis waypoint.
	genesis, err := db.EpochEnding(ctx, 0)
	if err != nil {
		t.Fatal(err)
	}
	hist, err := ledger.NewEpochHistory(wp, &genesis.LedgerInfo)
	if err != nil {
		t.Fatal(err)
	}
	var n int
	err = db.EpochEndings(ctx, 1, sum.LatestEpoch, func(e uint64, raw []byte) error {
		li, err := ledger.DecodeLedgerInfoWithSignatures(raw)
		if err != nil {
			return err
		}
		n++
		return hist.Append(&li)
	})
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || sum.LatestEpoch != 4 { // epochs 1-3 end at 300, 600 and 900
		t.Fatalf("%d epoch endings, latest epoch %d; want 3 and 4", n, sum.LatestEpoch)
	}
	latest := sum.LatestLedgerInfo
	if err := hist.Verify(latest); err != nil {
		t.Fatalf("latest ledger info does not verify: %v", err)
	}

	// Every version's state matches the naive model, via iteration from random starts.
	for _, v := range []uint64{0, 1, 299, 300, 301, 777, 1000} {
		model := modelAt(t, db, v)
		count, err := db.StateItemCount(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if count != uint64(len(model)) {
			t.Fatalf("version %d: %d items, model has %d", v, count, len(model))
		}
		var prev ledger.Hash
		seen := 0
		for _, start := range []uint64{0, count / 3} {
			err = db.StateValues(ctx, v, start, 0, func(i uint64, k, val []byte) error {
				if want, ok := model[string(k)]; !ok || !bytes.Equal(want, val) {
					t.Fatalf("version %d item %d: key %q value mismatch", v, i, k)
				}
				kh := smt.KeyHash(k)
				if i > start && bytes.Compare(prev[:], kh[:]) >= 0 {
					t.Fatalf("version %d: items not in key-hash order at %d", v, i)
				}
				prev = kh
				seen++
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		if want := int(count + count - count/3); seen != want {
			t.Fatalf("version %d: iterated %d items, want %d", v, seen, want)
		}
		for k, val := range model {
			got, err := db.StateValue(ctx, v, []byte(k))
			if err != nil || !bytes.Equal(got, val) {
				t.Fatalf("StateValue(%d, %q) = %x, %v", v, k, got, err)
			}
			break
		}
	}

	// Transaction range proofs verify against the latest signed ledger info.
	li := latest.LedgerInfo
	for _, r := range [][2]uint64{{0, 0}, {1, 100}, {250, 700}, {999, 1000}} {
		p, err := db.TransactionRangeProof(ctx, r[0], r[1], li.Version)
		if err != nil {
			t.Fatal(err)
		}
		var hashes []ledger.Hash
		err = db.Transactions(ctx, r[0], r[1]-r[0]+1, func(_ uint64, raw []byte) error {
			txn, err := ledger.DecodeTransactionWithOutput(raw)
			if err != nil {
				return err
			}
			hashes = append(hashes, txn.Info.Hash())
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := accumulator.VerifyRange(li.AccumulatorRoot, li.Version+1, r[0], hashes, p); err != nil {
			t.Fatalf("range %v: %v", r, err)
		}
		hashes[len(hashes)/2][0] ^= 1
		if err := accumulator.VerifyRange(li.AccumulatorRoot, li.Version+1, r[0], hashes, p); err == nil {
			t.Fatalf("range %v: altered info verified", r)
		}
	}

	// The state root proof ties a version's state root to the signed ledger info, and
	// the state range proof of the whole state verifies against it.
	for _, v := range []uint64{300, 1000} {
		srp, err := db.StateRootProof(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if err := hist.Verify(&srp.LedgerInfo); err != nil {
			t.Fatal(err)
		}
		root, err := srp.Verify(v, &srp.LedgerInfo.LedgerInfo)
		if err != nil {
			t.Fatal(err)
		}
		ref, err := db.StateRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if ref.RootHash() != root {
			t.Fatalf("version %d: stored root %s, proven %s", v, ref.RootHash().Short(), root.Short())
		}
		var leaves []smt.Leaf
		if err := db.StateValues(ctx, v, 0, 0, func(_ uint64, k, val []byte) error {
			leaves = append(leaves, smt.Leaf{KeyHash: smt.KeyHash(k), ValueHash: smt.ValueHash(val)})
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		rp, err := db.StateRangeProof(ctx, v, leaves[len(leaves)-1].KeyHash)
		if err != nil {
			t.Fatal(err)
		}
		if err := smt.VerifyRange(root, leaves, rp); err != nil {
			t.Fatalf("version %d: whole-state range proof: %v", v, err)
		}
	}
}

func TestCommitRejectsBadLedgerInfos(t *testing.T) {
	ctx := context.Background()
	db, _ := newChain(t, t.TempDir(), devnet.Config{EpochLength: 100, BlockSize: 10}, 50)
	defer db.Close()
	pb, err := db.PrepareBlock(ctx, []ledgerdb.TxnInput{{
		Transaction: ledger.Transaction{Payload: []byte("x")},
		WriteSet:    ledger.WriteSet{{Key: []byte("k"), Value: []byte("v")}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	signers, _, err := devnet.Validators(testSecret, 1, 4)
	if err != nil {
		t.Fatal(err)
	}
	good := ledger.LedgerInfo{Epoch: 1, Version: pb.LastVersion(), AccumulatorRoot: pb.AccumulatorRoot()}
	cases := map[string]ledger.LedgerInfoWithSignatures{
		"wrong root":    ledger.SignLedgerInfo(ledger.LedgerInfo{Epoch: 1, Version: pb.LastVersion()}, signers[:3]...),
		"wrong version": ledger.SignLedgerInfo(ledger.LedgerInfo{Epoch: 1, Version: pb.LastVersion() + 1, AccumulatorRoot: pb.AccumulatorRoot()}, signers[:3]...),
		"wrong epoch":   ledger.SignLedgerInfo(ledger.LedgerInfo{Epoch: 2, Version: pb.LastVersion(), AccumulatorRoot: pb.AccumulatorRoot()}, signers[:3]...),
		"no quorum":     ledger.SignLedgerInfo(good, signers[:2]...),
	}
	other, _, _ := devnet.Validators([]byte("someone else"), 1, 4)
	cases["foreign signers"] = ledger.SignLedgerInfo(good, other[:3]...)
	for name, li := range cases {
		if err := db.CommitBlock(ctx, pb, li); err == nil {
			t.Errorf("%s: commit accepted", name)
		}
	}
	if err := db.CommitBlock(ctx, pb, ledger.SignLedgerInfo(good, signers[:3]...)); err != nil {
		t.Fatalf("valid commit rejected: %v", err)
	}
	if err := db.CommitBlock(ctx, pb, ledger.SignLedgerInfo(good, signers[:3]...)); err == nil {
		t.Fatal("the same prepared block committed twice")
	}
}

// TestRestoreFromSnapshotAndTransactions restores a store from another one the way a
// backup restore does: state snapshot chunks with range proofs (interrupted and
// resumed), then transactions verified against the accumulator.
func TestRestoreFromSnapshotAndTransactions(t *testing.T) {
	ctx := context.Background()
	src, _ := newChain(t, t.TempDir(), devnet.Config{EpochLength: 200, BlockSize: 50}, 900)
	defer src.Close()
	const snap, target = 600, 900
	root, err := src.StateRoot(ctx, snap)
	if err != nil {
		t.Fatal(err)
	}
	var recs []ledgerdb.StateRecord
	if err := src.StateValues(ctx, snap, 0, 0, func(_ uint64, k, v []byte) error {
		recs = append(recs, ledgerdb.StateRecord{Key: append([]byte(nil), k...), Value: append([]byte(nil), v...)})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	const chunk = 37
	proofFor := func(end int) smt.RangeProof {
		p, err := src.StateRangeProof(ctx, snap, smt.KeyHash(recs[end-1].Key))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	dir := filepath.Join(t.TempDir(), "restored")
	dst := openDB(t, dir)
	sr, err := dst.StartStateRestore(ctx, snap, root.RootHash())
	if err != nil {
		t.Fatal(err)
	}
	// A tampered chunk is rejected and leaves the restore where it was.
	bad := append([]ledgerdb.StateRecord(nil), recs[:chunk]...)
	bad[5].Value = []byte("tampered")
	if err := sr.AddChunk(ctx, bad, proofFor(chunk)); err == nil {
		t.Fatal("tampered chunk accepted")
	}
	half := len(recs) / chunk / 2
	for i := 0; i < half; i++ {
		if err := sr.AddChunk(ctx, recs[i*chunk:(i+1)*chunk], proofFor((i+1)*chunk)); err != nil {
			t.Fatal(err)
		}
	}
	// Interrupt: close and reopen; the restore resumes at the recorded chunk.
	if err := dst.Close(); err != nil {
		t.Fatal(err)
	}
	dst = openDB(t, dir)
	defer dst.Close()
	sr, err = dst.StartStateRestore(ctx, snap, root.RootHash())
	if err != nil {
		t.Fatal(err)
	}
	if sr.NextChunk() != half {
		t.Fatalf("resumed at chunk %d, want %d", sr.NextChunk(), half)
	}
	if _, err := dst.StartStateRestore(ctx, snap+1, root.RootHash()); err == nil {
		t.Fatal("a restore of another version started over an interrupted one")
	}
	for i := half; i*chunk < len(recs); i++ {
		end := min((i+1)*chunk, len(recs))
		if err := sr.AddChunk(ctx, recs[i*chunk:end], proofFor(end)); err != nil {
			t.Fatal(err)
		}
	}
	got, err := sr.Finish(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.RootHash() != root.RootHash() || got.LeafCount != root.LeafCount {
		t.Fatalf("restored root %+v, want %+v", got, root)
	}

	// Transactions snap+1..target, verified against the source's latest ledger info.
	sum, err := src.Summary(ctx)
	if err != nil {
		t.Fatal(err)
	}
	li := sum.LatestLedgerInfo.LedgerInfo
	for first := uint64(snap + 1); first <= target; first += 64 {
		last := min(first+63, target)
		var txns []ledger.TransactionWithOutput
		var hashes []ledger.Hash
		if err := src.Transactions(ctx, first, last-first+1, func(_ uint64, raw []byte) error {
			txn, err := ledger.DecodeTransactionWithOutput(raw)
			txns = append(txns, txn)
			hashes = append(hashes, txn.Info.Hash())
			return err
		}); err != nil {
			t.Fatal(err)
		}
		p, err := src.TransactionRangeProof(ctx, first, last, li.Version)
		if err != nil {
			t.Fatal(err)
		}
		if err := accumulator.VerifyRange(li.AccumulatorRoot, li.Version+1, first, hashes, p); err != nil {
			t.Fatal(err)
		}
		if first == snap+1 {
			if err := dst.SeedAccumulator(ctx, first, p.Left); err != nil {
				t.Fatal(err)
			}
		}
		if first == snap+1+64 {
			// A write set that does not produce the signed state root is rejected.
			forged := append([]ledger.TransactionWithOutput(nil), txns...)
			forged[0].WriteSet = ledger.WriteSet{{Key: []byte("forged"), Value: []byte("x")}}
			if err := dst.SaveTransactions(ctx, first, forged); err == nil {
				t.Fatal("transactions with a forged write set saved")
			}
		}
		if err := dst.SaveTransactions(ctx, first, txns); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []uint64{snap + 1, 750, target} {
		want, err := src.StateRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		have, err := dst.StateRoot(ctx, v)
		if err != nil {
			t.Fatal(err)
		}
		if want.RootHash() != have.RootHash() {
			t.Fatalf("state root at %d differs after restore", v)
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
			t.Fatalf("accumulator root at %d differs after restore", v)
		}
	}
	// The restored store serves the same state and proofs.
	var n int
	if err := dst.StateValues(ctx, target, 0, 0, func(i uint64, k, v []byte) error {
		n++
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if c, _ := src.StateItemCount(ctx, target); uint64(n) != c {
		t.Fatalf("restored store iterates %d items, source has %d", n, c)
	}
	if _, err := os.Stat(filepath.Join(dir, "ingest-tmp")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ingest temp folder left behind: %v", err)
	}
}

package ledgerdb_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

const (
	rawTableTxn        = 0x02
	rawTableStateValue = 0x05
)

// committedTxns returns the canonical encoding of every transaction in [0, n), each
// checked to commit to its write set (its info's write set hash covers the values).
func committedTxns(t *testing.T, db *ledgerdb.DB, n uint64) [][]byte {
	t.Helper()
	var out [][]byte
	err := db.Transactions(context.Background(), 0, n, func(v uint64, raw []byte) error {
		if _, err := ledger.DecodeTransactionWithOutput(raw); err != nil {
			return err
		}
		out = append(out, bytes.Clone(raw))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// rawTxnKey is the store key of version v's transaction.
func rawTxnKey(v uint64) []byte { return binary.BigEndian.AppendUint64([]byte{rawTableTxn}, v) }

// TestTransactionRecordsReferenceValues checks that committed transaction records keep
// their write sets' keys and deletions but not the values, which the store holds once,
// in the state value table, and that reading puts them back byte for byte; that a record
// of the layout before (the whole transaction) still reads, next to new ones committed
// after it; and that a value missing from the state value table is an error naming the
// version, not a transaction with a wrong write set.
func TestTransactionRecordsReferenceValues(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfg := devnet.Config{EpochLength: 50, BlockSize: 7, GenesisAccounts: 300}
	db, _ := newChain(t, dir, cfg, 120)
	want := committedTxns(t, db, 121)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Every record is tagged and holds no value: each is smaller than its transaction by
	// at least the values' bytes, less the tag.
	pdb, err := pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	var recBytes, txnBytes, valueBytes int
	withValue, deleted := -1, 0
	for v := range want {
		rec, closer, err := pdb.Get(rawTxnKey(uint64(v)))
		if err != nil {
			t.Fatalf("record of version %d: %v", v, err)
		}
		if rec[0] != 0x01 {
			t.Fatalf("record of version %d starts with %#x, want the by-reference tag", v, rec[0])
		}
		var stored ledger.TransactionWithOutput
		if err := ledger.DecodeCanonical(rec[1:], ledger.MaxTransactionWithOutputSize, &stored); err != nil {
			t.Fatalf("record of version %d: %v", v, err)
		}
		full, err := ledger.DecodeTransactionWithOutput(want[v])
		if err != nil {
			t.Fatal(err)
		}
		if len(stored.WriteSet) != len(full.WriteSet) {
			t.Fatalf("record of version %d holds %d writes, the transaction %d", v, len(stored.WriteSet), len(full.WriteSet))
		}
		for i, op := range stored.WriteSet {
			fop := full.WriteSet[i]
			if len(op.Value) != 0 || !bytes.Equal(op.Key, fop.Key) || op.Deleted != fop.Deleted {
				t.Fatalf("record of version %d write %d: %+v, transaction's %+v", v, i, op, fop)
			}
			valueBytes += len(fop.Value)
			if fop.Deleted {
				deleted++
			} else if withValue < 0 && v > 10 && len(fop.Value) > 0 {
				withValue = v
			}
		}
		recBytes += len(rec)
		txnBytes += len(want[v])
		_ = closer.Close()
	}
	if withValue < 0 || deleted == 0 {
		t.Fatalf("workload has no value written after version 10 (%d) or no deletion (%d): the test checks nothing", withValue, deleted)
	}
	if recBytes+valueBytes > txnBytes+len(want) {
		t.Fatalf("records take %d bytes and the values %d, the transactions only %d (+%d tag bytes)", recBytes, valueBytes, txnBytes, len(want))
	}
	t.Logf("%d transactions: records %d bytes, canonical encodings %d (values %d)", len(want), recBytes, txnBytes, valueBytes)

	// A store of layout 3 held whole transactions: put one back as such.
	const old = 7
	if err := pdb.Set(rawTxnKey(old), want[old], pebble.Sync); err != nil {
		t.Fatal(err)
	}
	setLayout(t, pdb, 3)
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	c, err := devnet.Open(ctx, db, withSecret(cfg))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitUntil(ctx, 140); err != nil {
		t.Fatal(err)
	}
	got := committedTxns(t, db, 141)
	for v := range want {
		if !bytes.Equal(got[v], want[v]) {
			t.Fatalf("transaction %d reads differently after the layout change", v)
		}
	}
	one, err := db.Transaction(ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	if enc, _ := one.Encode(); !bytes.Equal(enc, want[old]) {
		t.Fatal("Transaction returns another encoding of the whole-transaction record")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	// Remove the value one write set references.
	pdb, err = pebble.Open(dir, &pebble.Options{Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	full, _ := ledger.DecodeTransactionWithOutput(want[withValue])
	var key []byte
	for _, op := range full.WriteSet {
		if !op.Deleted {
			key = op.Key
			break
		}
	}
	kh := sha256.Sum256(key)
	vk := binary.BigEndian.AppendUint64(append([]byte{rawTableStateValue}, kh[:]...), ^uint64(withValue))
	if _, closer, err := pdb.Get(vk); err != nil {
		t.Fatalf("value record of version %d: %v", withValue, err)
	} else {
		_ = closer.Close()
	}
	if err := pdb.Delete(vk, pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := pdb.Close(); err != nil {
		t.Fatal(err)
	}
	db = openDB(t, dir)
	defer db.Close()
	_, err = db.Transaction(ctx, uint64(withValue))
	if !errors.Is(err, ledgerdb.ErrNotFound) || !strings.Contains(err.Error(), "transaction "+strconv.Itoa(withValue)) {
		t.Fatalf("Transaction with a missing value: %v, want ErrNotFound naming the version", err)
	}
	seen := 0
	err = db.Transactions(ctx, 0, 141, func(uint64, []byte) error { seen++; return nil })
	if !errors.Is(err, ledgerdb.ErrNotFound) || seen != withValue {
		t.Fatalf("Transactions with a missing value: %v after %d transactions, want ErrNotFound after %d", err, seen, withValue)
	}
}

// setLayout rewrites the store state's layout number.
func setLayout(t *testing.T, pdb *pebble.DB, layout int) {
	t.Helper()
	k := append([]byte{rawTableMeta}, "state"...)
	raw, closer, err := pdb.Get(k)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	err = json.Unmarshal(raw, &st)
	_ = closer.Close()
	if err != nil {
		t.Fatal(err)
	}
	st["node_layout"] = layout
	raw, _ = json.Marshal(st)
	if err := pdb.Set(k, raw, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

func withSecret(cfg devnet.Config) devnet.Config { cfg.Secret = testSecret; return cfg }

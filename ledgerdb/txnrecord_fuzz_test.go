package ledgerdb

import (
	"log/slog"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// FuzzTxnRecord feeds arbitrary transaction records (after the by-reference tag) to the
// decoder and to the reader, over a store that holds the values of the seed's write set
// at version 5: neither may panic, a record the decoder accepts is within the limits and
// carries no value, and what the reader returns is a canonical encoding whose deletions
// carry no value.
func FuzzTxnRecord(f *testing.F) {
	ws := ledger.WriteSet{
		{Key: []byte("account/0000000000000001"), Value: []byte("balance-1")},
		{Key: []byte("account/0000000000000002"), Deleted: true},
		{Key: []byte("account/0000000000000003"), Value: []byte{}},
	}
	txn, err := ledger.NewTransactionWithOutput(ledger.Transaction{Payload: []byte("transfer")}, ws,
		[]ledger.Event{{Type: "transfer", Key: ws[0].Key, Data: []byte("1")}}, ledger.StatusSuccess, ledger.Hash{1})
	if err != nil {
		f.Fatal(err)
	}
	aborted, err := ledger.NewTransactionWithOutput(ledger.Transaction{}, nil, nil, ledger.StatusAborted, ledger.Hash{})
	if err != nil {
		f.Fatal(err)
	}
	for _, t := range []*ledger.TransactionWithOutput{&txn, &aborted} {
		rec, err := appendTxnRecord(nil, t)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(rec[1:])
	}
	pdb, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		f.Fatal(err)
	}
	defer pdb.Close()
	for i := range ws {
		kh := smt.KeyHash(ws[i].Key)
		if err := pdb.Set(stateValueKey(nil, (*[32]byte)(&kh), 5), appendStateValue(nil, ws[i].Key, ws[i].Value, ws[i].Deleted), nil); err != nil {
			f.Fatal(err)
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if stored, err := decodeTxnRecord(b); err == nil {
			for i, op := range stored.WriteSet {
				if len(op.Value) != 0 {
					t.Fatalf("accepted record carries a value in write %d", i)
				}
			}
			if len(stored.WriteSet) > ledger.MaxWriteOps {
				t.Fatalf("accepted record of %d writes", len(stored.WriteSet))
			}
		}
		r := newTxnReader(pdb)
		defer r.close()
		raw, err := r.canonical(5, append([]byte{txnRecordByRef}, b...))
		if err != nil {
			return
		}
		full, err := ledger.DecodeTransactionWithOutput(raw)
		if err != nil {
			// The record's own info need not commit to the values; the reader only puts
			// them back. It must still return a canonical encoding.
			var tw ledger.TransactionWithOutput
			if cerr := ledger.DecodeCanonical(raw, ledger.MaxTransactionWithOutputSize, &tw); cerr != nil {
				t.Fatalf("reader returned a non-canonical encoding: %v", cerr)
			}
			return
		}
		for _, op := range full.WriteSet {
			if op.Deleted && len(op.Value) != 0 {
				t.Fatalf("deleted key %x given a value", op.Key)
			}
		}
	})
}

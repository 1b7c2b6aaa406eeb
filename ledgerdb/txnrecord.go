package ledgerdb

import (
	"bytes"
	"fmt"
	"slices"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
)

// Transaction records in tableTxn. A version's write set is also in tableStateValue (one
// record per key at the version, holding the key, the value and whether it was deleted),
// so storing the values a second time in the transaction doubled the store's state: the
// bulk accounts of `node init` alone are one full copy of the logical state. A record
// written by this code is txnRecordByRef ‖ the canonical encoding of the transaction with
// output whose write set keeps its keys and deletions but has every value empty; reading
// it puts the values back from tableStateValue and returns the canonical encoding of the
// whole transaction, byte for byte what was committed. Records of stores written before
// (layouts 2 and 3) are the canonical encoding itself, which always starts with the CBOR
// head of a four-element array (0x84), and are returned as they are.
const txnRecordByRef byte = 0x01

// appendTxnRecord appends the record of t (see txnRecordByRef) to dst.
func appendTxnRecord(dst []byte, t *ledger.TransactionWithOutput) ([]byte, error) {
	stripped := *t
	stripped.WriteSet = make(ledger.WriteSet, len(t.WriteSet))
	for i := range t.WriteSet {
		stripped.WriteSet[i] = ledger.WriteOp{Key: t.WriteSet[i].Key, Deleted: t.WriteSet[i].Deleted}
	}
	enc, err := stripped.Encode()
	if err != nil {
		return dst, err
	}
	dst = append(dst, txnRecordByRef)
	return append(dst, enc...), nil
}

// decodeTxnRecord decodes a record written by appendTxnRecord (without its tag byte):
// the transaction with output, every write of a value still empty. It checks the limits
// of sizes and counts, not the transaction's hashes, which cover the values, nor that
// the record is canonical: what leaves the store is encoded again.
func decodeTxnRecord(b []byte) (ledger.TransactionWithOutput, error) {
	var t ledger.TransactionWithOutput
	if err := ledger.DecodeBounded(b, ledger.MaxTransactionWithOutputSize, &t); err != nil {
		return t, err
	}
	if len(t.WriteSet) > ledger.MaxWriteOps {
		return t, fmt.Errorf("write set of %d operations exceeds the limit of %d", len(t.WriteSet), ledger.MaxWriteOps)
	}
	for i := range t.WriteSet {
		if len(t.WriteSet[i].Value) != 0 {
			return t, fmt.Errorf("write set operation %d carries a value in a record that references them", i)
		}
	}
	return t, nil
}

// txnReader turns transaction records into canonical encodings, reading the values of
// their write sets through one iterator over tableStateValue (seeks in key hash order,
// which keep a large write set's reads mostly sequential). Its buffers are reused: the
// bytes one call returns are valid until the next call.
type txnReader struct {
	pdb *pebble.DB
	it  *pebble.Iterator
	key []byte
	ops []txnOpRef
	// vals holds the values read for one transaction (the iterator's bytes are valid
	// only until it moves); out its encoding.
	vals []byte
	out  bytes.Buffer
}

// txnOpRef is one write of a value to look up: the operation's key hash and index, then
// where its value is in vals.
type txnOpRef struct {
	kh         ledger.Hash
	i          int
	start, end int
}

func newTxnReader(pdb *pebble.DB) *txnReader { return &txnReader{pdb: pdb} }

// close releases the iterator, if one was opened.
func (r *txnReader) close() error {
	if r.it == nil {
		return nil
	}
	err := r.it.Close()
	r.it = nil
	return err
}

// canonical returns the canonical encoding of the transaction of version v stored as
// rec.
func (r *txnReader) canonical(v uint64, rec []byte) ([]byte, error) {
	if len(rec) == 0 {
		return nil, fmt.Errorf("transaction %d: empty record", v)
	}
	if rec[0] != txnRecordByRef {
		return rec, nil
	}
	t, err := r.byRef(v, rec[1:])
	if err != nil {
		return nil, err
	}
	if err := ledger.EncodeTo(&r.out, &t); err != nil {
		return nil, fmt.Errorf("transaction %d: %w", v, err)
	}
	return r.out.Bytes(), nil
}

// transaction returns the transaction of version v stored as rec, validated as
// ledger.DecodeTransactionWithOutput validates it. Its write set's values are valid
// until the next call.
func (r *txnReader) transaction(v uint64, rec []byte) (ledger.TransactionWithOutput, error) {
	if len(rec) == 0 || rec[0] != txnRecordByRef {
		t, err := ledger.DecodeTransactionWithOutput(rec)
		if err != nil {
			return t, fmt.Errorf("transaction %d: %w", v, err)
		}
		return t, nil
	}
	t, err := r.byRef(v, rec[1:])
	if err != nil {
		return t, err
	}
	if err := t.Validate(); err != nil {
		return ledger.TransactionWithOutput{}, fmt.Errorf("transaction %d: %w", v, err)
	}
	return t, nil
}

// byRef decodes a by-reference record b (after its tag) of version v and puts its
// values back.
func (r *txnReader) byRef(v uint64, b []byte) (ledger.TransactionWithOutput, error) {
	t, err := decodeTxnRecord(b)
	if err != nil {
		return t, fmt.Errorf("transaction %d: decode record: %w", v, err)
	}
	if err := r.fillValues(v, t.WriteSet); err != nil {
		return ledger.TransactionWithOutput{}, err
	}
	return t, nil
}

// fillValues sets the value of every write of ws (version v) from tableStateValue; the
// value records must hold the same keys and deletions.
func (r *txnReader) fillValues(v uint64, ws ledger.WriteSet) error {
	r.ops = r.ops[:0]
	for i := range ws {
		if !ws[i].Deleted {
			r.ops = append(r.ops, txnOpRef{kh: smt.KeyHash(ws[i].Key), i: i})
		}
	}
	if len(r.ops) == 0 {
		return nil
	}
	slices.SortFunc(r.ops, func(a, b txnOpRef) int { return bytes.Compare(a.kh[:], b.kh[:]) })
	if r.it == nil {
		lo, hi := tableBounds(tableStateValue)
		it, err := r.pdb.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
		if err != nil {
			return fmt.Errorf("transaction %d: open state values: %w", v, err)
		}
		r.it = it
	}
	r.vals = r.vals[:0]
	for j := range r.ops {
		o := &r.ops[j]
		op := &ws[o.i]
		r.key = stateValueKey(r.key, (*[32]byte)(&o.kh), v)
		if !r.it.SeekGE(r.key) || !bytes.Equal(r.it.Key(), r.key) {
			if err := r.it.Error(); err != nil {
				return fmt.Errorf("transaction %d: read value of key %x: %w", v, op.Key, err)
			}
			return fmt.Errorf("transaction %d: the value its write set gives key %x is not in the state value table: %w", v, op.Key, ErrNotFound)
		}
		key, value, deleted, err := parseStateValue(r.it.Value())
		if err != nil {
			return fmt.Errorf("transaction %d: value of key %x: %w", v, op.Key, err)
		}
		if deleted || !bytes.Equal(key, op.Key) {
			return fmt.Errorf("transaction %d: the state value record of key %x at this version is for key %x (deleted %v)", v, op.Key, key, deleted)
		}
		o.start = len(r.vals)
		r.vals = append(r.vals, value...)
		o.end = len(r.vals)
	}
	for _, o := range r.ops {
		ws[o.i].Value = r.vals[o.start:o.end:o.end]
	}
	return nil
}

package ledger

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Version numbers transactions from 0; the ledger at version v holds transactions 0..v.
type Version = uint64

// WriteOp is one state change: Key is set to Value, or deleted when Deleted is true (a
// deletion carries an empty Value).
type WriteOp struct {
	_       struct{} `cbor:",toarray"`
	Key     []byte
	Value   []byte
	Deleted bool
}

// WriteSet is the state changes of one transaction. Its canonical form is sorted by key
// with unique keys; Validate checks that.
type WriteSet []WriteOp

// Validate checks that ws is canonical: at most MaxWriteOps operations, keys non-empty,
// bounded and strictly increasing, values bounded, deletions without a value.
func (ws WriteSet) Validate() error {
	if len(ws) > MaxWriteOps {
		return fmt.Errorf("write set: %d operations exceeds the limit of %d", len(ws), MaxWriteOps)
	}
	for i := range ws {
		op := &ws[i]
		if len(op.Key) == 0 {
			return fmt.Errorf("write set: operation %d has an empty key", i)
		}
		if len(op.Key) > MaxKeySize {
			return fmt.Errorf("write set: operation %d: key of %d bytes exceeds the limit of %d", i, len(op.Key), MaxKeySize)
		}
		if len(op.Value) > MaxValueSize {
			return fmt.Errorf("write set: operation %d: value of %d bytes exceeds the limit of %d", i, len(op.Value), MaxValueSize)
		}
		if op.Deleted && len(op.Value) != 0 {
			return fmt.Errorf("write set: operation %d deletes key %x but carries a value", i, op.Key)
		}
		if i > 0 && bytes.Compare(ws[i-1].Key, op.Key) >= 0 {
			return fmt.Errorf("write set: keys not strictly increasing at operation %d (%x after %x)", i, op.Key, ws[i-1].Key)
		}
	}
	return nil
}

// Hash returns the domain-separated hash of the write set's canonical encoding.
func (ws WriteSet) Hash() Hash {
	if ws == nil {
		ws = WriteSet{}
	}
	return hashEncoded(DomainWriteSet, ws)
}

// Event is something a transaction emitted: a type name, a key it concerns and data.
type Event struct {
	_    struct{} `cbor:",toarray"`
	Type string
	Key  []byte
	Data []byte
}

// Validate checks the event's limits: a valid UTF-8 type of at most MaxEventTypeSize
// bytes and a key of at most MaxKeySize bytes.
func (e *Event) Validate() error {
	if len(e.Type) > MaxEventTypeSize {
		return fmt.Errorf("event type of %d bytes exceeds the limit of %d", len(e.Type), MaxEventTypeSize)
	}
	if !utf8.ValidString(e.Type) {
		return fmt.Errorf("event type %q is not valid UTF-8", e.Type)
	}
	if len(e.Key) > MaxKeySize {
		return fmt.Errorf("event key of %d bytes exceeds the limit of %d", len(e.Key), MaxKeySize)
	}
	return nil
}

// Hash returns the domain-separated hash of the event's canonical encoding.
func (e *Event) Hash() Hash { return hashEncoded(DomainEvent, e) }

// EventRoot returns the root of a binary Merkle tree over the hashes of events, shaped as
// in RFC 6962 (the left subtree holds the largest power of two of leaves smaller than
// the count). Leaves are the events' hashes, inner nodes HashOf(DomainEventTreeInternal,
// left, right); no events give HashOf(DomainEventTreePlaceholder).
func EventRoot(events []Event) Hash {
	if len(events) == 0 {
		return HashOf(DomainEventTreePlaceholder)
	}
	hashes := make([]Hash, len(events))
	for i := range events {
		hashes[i] = events[i].Hash()
	}
	return eventTreeRoot(hashes)
}

func eventTreeRoot(h []Hash) Hash {
	if len(h) == 1 {
		return h[0]
	}
	k := 1
	for k*2 < len(h) {
		k *= 2
	}
	l, r := eventTreeRoot(h[:k]), eventTreeRoot(h[k:])
	return HashOf(DomainEventTreeInternal, l[:], r[:])
}

// Transaction is an opaque transaction payload (the node's synthetic workload puts an
// encoded transfer in it).
type Transaction struct {
	_       struct{} `cbor:",toarray"`
	Payload []byte
}

// Hash returns the domain-separated hash of the transaction's canonical encoding.
func (t *Transaction) Hash() Hash { return hashEncoded(DomainTransaction, t) }

// TransactionStatus is the outcome of executing a transaction.
type TransactionStatus uint8

// Transaction outcomes. An aborted transaction keeps its place in the ledger but its
// write set is empty.
const (
	StatusSuccess TransactionStatus = 0
	StatusAborted TransactionStatus = 1
)

// TransactionInfo commits to everything a transaction did: its hash, its write set's
// hash, the root of its events and the state root after it. The transaction accumulator
// is built over TransactionInfo hashes.
type TransactionInfo struct {
	_               struct{} `cbor:",toarray"`
	TransactionHash Hash
	WriteSetHash    Hash
	EventRootHash   Hash
	StateRootHash   Hash
	Status          TransactionStatus
}

// Validate checks that the status is known.
func (ti *TransactionInfo) Validate() error {
	if ti.Status > StatusAborted {
		return fmt.Errorf("transaction info: unknown status %d", ti.Status)
	}
	return nil
}

// Hash returns the domain-separated hash of the info's canonical encoding; it is the
// value the transaction accumulator commits to.
func (ti *TransactionInfo) Hash() Hash {
	var buf [transactionInfoMaxSize]byte
	return HashOf(DomainTransactionInfo, ti.appendCBOR(buf[:0]))
}

// transactionInfoMaxSize is the largest canonical encoding of a TransactionInfo.
const transactionInfoMaxSize = 1 + 4*(2+HashSize) + 2

// appendCBOR appends the canonical encoding of ti, written out by hand because it is on
// every hot path (a 5-element array of four 32-byte strings and a small unsigned int);
// tests check it against the generic encoder.
func (ti *TransactionInfo) appendCBOR(dst []byte) []byte {
	dst = append(dst, 0x85)
	for _, h := range [...]*Hash{&ti.TransactionHash, &ti.WriteSetHash, &ti.EventRootHash, &ti.StateRootHash} {
		dst = append(dst, 0x58, HashSize)
		dst = append(dst, h[:]...)
	}
	if ti.Status < 24 {
		return append(dst, byte(ti.Status))
	}
	return append(dst, 0x18, byte(ti.Status))
}

// MarshalCBOR implements cbor.Marshaler with the canonical encoding.
func (ti TransactionInfo) MarshalCBOR() ([]byte, error) {
	return ti.appendCBOR(make([]byte, 0, transactionInfoMaxSize)), nil
}

// UnmarshalCBOR implements cbor.Unmarshaler. It accepts only the canonical encoding.
func (ti *TransactionInfo) UnmarshalCBOR(b []byte) error {
	const hashesEnd = 1 + 4*(2+HashSize)
	if len(b) < hashesEnd+1 || b[0] != 0x85 {
		return fmt.Errorf("transaction info: not a canonical 5-element array: %w", ErrNonCanonical)
	}
	var out TransactionInfo
	for i, h := range [...]*Hash{&out.TransactionHash, &out.WriteSetHash, &out.EventRootHash, &out.StateRootHash} {
		off := 1 + i*(2+HashSize)
		if b[off] != 0x58 || b[off+1] != HashSize {
			return fmt.Errorf("transaction info: field %d is not a canonical 32-byte string: %w", i, ErrNonCanonical)
		}
		copy(h[:], b[off+2:off+2+HashSize])
	}
	switch rest := b[hashesEnd:]; {
	case len(rest) == 1 && rest[0] < 24:
		out.Status = TransactionStatus(rest[0])
	case len(rest) == 2 && rest[0] == 0x18 && rest[1] >= 24:
		out.Status = TransactionStatus(rest[1])
	default:
		return fmt.Errorf("transaction info: status is not a canonical small unsigned integer: %w", ErrNonCanonical)
	}
	*ti = out
	return nil
}

// Encode returns the canonical encoding of ti.
func (ti *TransactionInfo) Encode() ([]byte, error) { return Encode(ti) }

// DecodeTransactionInfo decodes and validates a canonical TransactionInfo.
func DecodeTransactionInfo(b []byte) (TransactionInfo, error) {
	var ti TransactionInfo
	if err := DecodeCanonical(b, MaxSmallStructSize, &ti); err != nil {
		return TransactionInfo{}, err
	}
	if err := ti.Validate(); err != nil {
		return TransactionInfo{}, err
	}
	return ti, nil
}

// TransactionWithOutput is a transaction with everything its execution produced: the
// unit that the backup service streams, backups store and restore saves. Its version is
// not part of it: it is given by its position in a chunk, which the accumulator proves.
type TransactionWithOutput struct {
	_           struct{} `cbor:",toarray"`
	Transaction Transaction
	WriteSet    WriteSet
	Events      []Event
	Info        TransactionInfo
}

// Validate checks every part's limits and that Info commits to this transaction, write
// set and events. It does not check the state root, which needs the state.
func (t *TransactionWithOutput) Validate() error {
	if err := t.WriteSet.Validate(); err != nil {
		return err
	}
	if len(t.Events) > MaxEvents {
		return fmt.Errorf("%d events exceeds the limit of %d", len(t.Events), MaxEvents)
	}
	for i := range t.Events {
		if err := t.Events[i].Validate(); err != nil {
			return fmt.Errorf("event %d: %w", i, err)
		}
	}
	if err := t.Info.Validate(); err != nil {
		return err
	}
	if t.Info.Status == StatusAborted && len(t.WriteSet) != 0 {
		return fmt.Errorf("aborted transaction has a write set of %d operations", len(t.WriteSet))
	}
	if h := t.Transaction.Hash(); h != t.Info.TransactionHash {
		return fmt.Errorf("transaction hash %s does not match its info's %s", h.Short(), t.Info.TransactionHash.Short())
	}
	if h := t.WriteSet.Hash(); h != t.Info.WriteSetHash {
		return fmt.Errorf("write set hash %s does not match its info's %s", h.Short(), t.Info.WriteSetHash.Short())
	}
	if h := EventRoot(t.Events); h != t.Info.EventRootHash {
		return fmt.Errorf("event root %s does not match its info's %s", h.Short(), t.Info.EventRootHash.Short())
	}
	return nil
}

// Encode returns the canonical encoding of t.
func (t *TransactionWithOutput) Encode() ([]byte, error) { return Encode(t) }

// DecodeTransactionWithOutput decodes a canonical TransactionWithOutput of at most
// MaxTransactionWithOutputSize bytes and validates it (see Validate).
func DecodeTransactionWithOutput(b []byte) (TransactionWithOutput, error) {
	var t TransactionWithOutput
	if err := DecodeCanonical(b, MaxTransactionWithOutputSize, &t); err != nil {
		return TransactionWithOutput{}, err
	}
	if err := t.Validate(); err != nil {
		return TransactionWithOutput{}, fmt.Errorf("decode transaction with output: %w", err)
	}
	return t, nil
}

// NewTransactionWithOutput builds the TransactionInfo of a transaction from its parts
// and the state root after it, and returns the whole. The write set must be canonical.
func NewTransactionWithOutput(txn Transaction, ws WriteSet, events []Event, status TransactionStatus, stateRoot Hash) (TransactionWithOutput, error) {
	t := TransactionWithOutput{
		Transaction: txn,
		WriteSet:    ws,
		Events:      events,
		Info: TransactionInfo{
			TransactionHash: txn.Hash(),
			WriteSetHash:    ws.Hash(),
			EventRootHash:   EventRoot(events),
			StateRootHash:   stateRoot,
			Status:          status,
		},
	}
	if err := t.Validate(); err != nil {
		return TransactionWithOutput{}, fmt.Errorf("new transaction with output: %w", err)
	}
	return t, nil
}

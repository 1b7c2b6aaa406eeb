package state

import (
	"crypto/sha3"
	"fmt"
	"hash"

	"github.com/ledgervault/ledgervault/aptos/bcs"
	"github.com/ledgervault/ledgervault/aptos/txn"
)

// MaxRecordBytes bounds one state record (a key and its value). Aptos caps a write op
// far below it.
const MaxRecordBytes = 16 << 20

// StateValue is a state value (the enum StateValue: V0(bytes) or WithMetadata).
type StateValue struct {
	// Data is the value's bytes; it aliases the record it was decoded from.
	Data []byte
	// Metadata is set for the WithMetadata variant.
	Metadata *txn.StateValueMetadata
}

// Record is one decoded state snapshot record with its leaf hashes.
type Record struct {
	// Key is the state key; its Path aliases the record.
	Key txn.StateKey
	// Value is the state value.
	Value StateValue
	// KeyHash is CryptoHash(StateKey): the leaf's position in the tree.
	KeyHash HashValue
	// ValueHash is CryptoHash(StateValue): what the leaf commits to.
	ValueHash HashValue
}

// Decoder decodes records and hashes them in one domain; it reuses its buffers and is
// not safe for concurrent use.
type Decoder struct {
	h   *Hasher
	sha hash.Hash
	enc []byte
}

// NewDecoder returns a record decoder hashing with h.
func NewDecoder(h *Hasher) *Decoder { return &Decoder{h: h, sha: sha3.New256()} }

// DecodeRecord decodes one record (without its length frame) strictly: known variants
// only, canonical BCS, every byte consumed, at most MaxRecordBytes. The record's byte
// slices alias b.
func (d *Decoder) DecodeRecord(b []byte) (Record, error) {
	var rec Record
	r := bcs.NewReader(b, bcs.Limits{MaxInput: MaxRecordBytes, MaxElements: 16})
	r.Push("key")
	readStateKey(r, &rec.Key)
	r.Pop()
	valueStart := r.Offset()
	r.Push("value")
	readStateValue(r, &rec.Value)
	r.Pop()
	if err := r.Done(); err != nil {
		return Record{}, fmt.Errorf("decode state record: %w", err)
	}
	d.enc = appendKeyEncoding(d.enc[:0], &rec.Key)
	rec.KeyHash = sum(d.sha, &d.h.stateKey, d.enc)
	rec.ValueHash = sum(d.sha, &d.h.stateValue, b[valueStart:])
	return rec, nil
}

// numStateKeyKinds is the number of StateKey variants of the 2023 framework.
const numStateKeyKinds = 3

func readStateKey(r *bcs.Reader, k *txn.StateKey) {
	k.Kind = txn.StateKeyKind(r.Variant("variant", numStateKeyKinds))
	if r.Err() != nil {
		return
	}
	switch k.Kind {
	case txn.StateKeyAccessPath:
		r.Push("AccessPath")
		k.Address = r.Fixed32("address")
		k.Path = r.Bytes("path", MaxRecordBytes)
		r.Pop()
	case txn.StateKeyTableItem:
		r.Push("TableItem")
		k.Address = r.Fixed32("handle")
		k.Path = r.Bytes("key", MaxRecordBytes)
		r.Pop()
	case txn.StateKeyRaw:
		k.Path = r.Bytes("Raw", MaxRecordBytes)
	}
}

func readStateValue(r *bcs.Reader, v *StateValue) {
	switch r.Variant("variant", 2) {
	case 0:
		v.Data = r.Bytes("V0", MaxRecordBytes)
	case 1:
		r.Push("WithMetadata")
		v.Data = r.Bytes("data", MaxRecordBytes)
		r.Push("metadata")
		m := &txn.StateValueMetadata{}
		switch r.Variant("variant", 2) {
		case 0:
			m.Deposit = r.U64("deposit")
			m.CreationTimeUsecs = r.U64("creation_time_usecs")
		case 1:
			m.V1 = true
			m.Deposit = r.U64("slot_deposit")
			m.BytesDeposit = r.U64("bytes_deposit")
			m.CreationTimeUsecs = r.U64("creation_time_usecs")
		}
		r.Pop()
		r.Pop()
		v.Metadata = m
	}
}

// State key storage tags (aptos-core's StateKeyTag), the first byte of the encoding
// StateKey's CryptoHash covers.
const (
	tagAccessPath = 0
	tagTableItem  = 1
	tagRaw        = 255
)

// appendKeyEncoding appends StateKey::encode(): the tag, then the BCS of the access
// path, the handle followed by the raw table key, or the raw bytes.
func appendKeyEncoding(b []byte, k *txn.StateKey) []byte {
	switch k.Kind {
	case txn.StateKeyAccessPath:
		b = append(b, tagAccessPath)
		b = append(b, k.Address[:]...)
		return bcs.AppendBytes(b, k.Path)
	case txn.StateKeyTableItem:
		b = append(b, tagTableItem)
		b = append(b, k.Address[:]...)
		return append(b, k.Path...)
	default:
		b = append(b, tagRaw)
		return append(b, k.Path...)
	}
}

// AppendRecord appends the BCS of (key, value), the inverse of DecodeRecord (for tests
// and tools building snapshots).
func AppendRecord(b []byte, k *txn.StateKey, v *StateValue) []byte {
	b = bcs.AppendULEB128(b, uint32(k.Kind))
	switch k.Kind {
	case txn.StateKeyAccessPath, txn.StateKeyTableItem:
		b = append(b, k.Address[:]...)
	}
	b = bcs.AppendBytes(b, k.Path)
	if v.Metadata == nil {
		b = bcs.AppendULEB128(b, 0)
		return bcs.AppendBytes(b, v.Data)
	}
	b = bcs.AppendULEB128(b, 1)
	b = bcs.AppendBytes(b, v.Data)
	m := v.Metadata
	if m.V1 {
		b = bcs.AppendULEB128(b, 1)
		b = bcs.AppendU64(b, m.Deposit)
		b = bcs.AppendU64(b, m.BytesDeposit)
	} else {
		b = bcs.AppendULEB128(b, 0)
		b = bcs.AppendU64(b, m.Deposit)
	}
	return bcs.AppendU64(b, m.CreationTimeUsecs)
}

package ledger

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/fxamacker/cbor/v2"
)

// Size limits of encoded structures. Every decoder checks the input size against one of
// these before parsing, and the CBOR decoder enforces the structural limits below, so
// hostile input can never cause an allocation much larger than itself.
const (
	// MaxTransactionWithOutputSize bounds an encoded TransactionWithOutput.
	MaxTransactionWithOutputSize = 16 << 20
	// MaxLedgerInfoSize bounds an encoded LedgerInfo or LedgerInfoWithSignatures.
	MaxLedgerInfoSize = 1 << 20
	// MaxSmallStructSize bounds small fixed-shape structures (TransactionInfo, Waypoint
	// payloads, proofs).
	MaxSmallStructSize = 64 << 10
	// MaxKeySize bounds a state key in a write set or an event key.
	MaxKeySize = 4 << 10
	// MaxValueSize bounds a state value in a write set.
	MaxValueSize = 4 << 20
	// MaxWriteOps bounds the number of operations in one write set.
	MaxWriteOps = 1 << 16
	// MaxEvents bounds the number of events one transaction emits.
	MaxEvents = 1 << 16
	// MaxEventTypeSize bounds the length of an event's type name.
	MaxEventTypeSize = 256
	// MaxValidators bounds the size of a validator set.
	MaxValidators = 1024

	// cborMaxArrayElements bounds every CBOR array (write sets, events, signatures...).
	cborMaxArrayElements = 1 << 16
	// cborMaxNestedLevels bounds CBOR nesting; the deepest ledger structure uses 5.
	cborMaxNestedLevels = 16
	// cborMaxMapPairs bounds CBOR maps; ledger structures encode as arrays and use none,
	// 16 is the smallest limit the decoder accepts.
	cborMaxMapPairs = 16
)

// ErrNonCanonical is returned (wrapped) when input decodes to a value whose canonical
// encoding differs from the input: hashes and signatures are over canonical bytes, so
// any other encoding of the same value is rejected.
var ErrNonCanonical = errors.New("non-canonical encoding")

var (
	encMode cbor.UserBufferEncMode
	decMode cbor.DecMode
)

func init() {
	eo := cbor.CoreDetEncOptions()
	eo.NilContainers = cbor.NilContainerAsEmpty
	em, err := eo.UserBufferEncMode()
	if err != nil {
		panic(fmt.Sprintf("ledger: build CBOR encoder: %v", err)) // static options; cannot fail
	}
	dm, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   cborMaxNestedLevels,
		MaxArrayElements:  cborMaxArrayElements,
		MaxMapPairs:       cborMaxMapPairs,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(fmt.Sprintf("ledger: build CBOR decoder: %v", err)) // static options; cannot fail
	}
	encMode, decMode = em, dm
}

// Encode returns the canonical encoding of v (CBOR, core deterministic, structures as
// arrays). It is the encoding every hash and signature in the ledger is computed over.
func Encode(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %T: %w", v, err)
	}
	return b, nil
}

// EncodeTo writes the canonical encoding of v (see Encode) into buf, which it resets
// first: a caller encoding many values reuses one buffer.
func EncodeTo(buf *bytes.Buffer, v any) error {
	buf.Reset()
	if err := encMode.MarshalToBuffer(v, buf); err != nil {
		return fmt.Errorf("encode %T: %w", v, err)
	}
	return nil
}

// DecodeBounded decodes b into v, which must be a pointer, after checking that b is at
// most limit bytes long, with the decoder's structural limits, but without checking that
// b is canonical: for records a store wrote itself and encodes again before they leave
// it, where the check would only repeat that encoding. It does not validate the value's
// own invariants.
func DecodeBounded(b []byte, limit int, v any) error {
	if len(b) > limit {
		return fmt.Errorf("decode %T: %d bytes exceeds the limit of %d", v, len(b), limit)
	}
	if err := decMode.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %T: %w", v, err)
	}
	return nil
}

// DecodeCanonical decodes b into v, which must be a pointer, after checking that b is at
// most limit bytes long; it rejects any input that is not the canonical encoding of the
// decoded value. It does not validate the value's own invariants: typed decoders do.
func DecodeCanonical(b []byte, limit int, v any) error {
	if err := DecodeBounded(b, limit, v); err != nil {
		return err
	}
	buf := getBuf()
	defer putBuf(buf)
	if err := encMode.MarshalToBuffer(v, buf); err != nil {
		return fmt.Errorf("decode %T: re-encode: %w", v, err)
	}
	if !bytes.Equal(buf.Bytes(), b) {
		return fmt.Errorf("decode %T: %w", v, ErrNonCanonical)
	}
	return nil
}

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func getBuf() *bytes.Buffer { b := bufPool.Get().(*bytes.Buffer); b.Reset(); return b }

func putBuf(b *bytes.Buffer) {
	if b.Cap() <= 1<<20 { // do not pin huge buffers
		bufPool.Put(b)
	}
}

// hashEncoded returns HashOf(d, canonical encoding of v). The values passed are ledger
// structures made of byte slices, strings, integers and booleans, whose encoding cannot
// fail; a failure would be a programming error.
func hashEncoded(d Domain, v any) Hash {
	buf := getBuf()
	defer putBuf(buf)
	if err := encMode.MarshalToBuffer(v, buf); err != nil {
		panic(fmt.Sprintf("ledger: encoding %T cannot fail: %v", v, err))
	}
	return HashOf(d, buf.Bytes())
}

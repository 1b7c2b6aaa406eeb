package ledger

import (
	"bytes"
	"testing"

	"pgregory.net/rapid"
)

// tiMirror has TransactionInfo's fields without its hand-written codec, so the generic
// encoder handles it.
type tiMirror struct {
	_               struct{} `cbor:",toarray"`
	TransactionHash Hash
	WriteSetHash    Hash
	EventRootHash   Hash
	StateRootHash   Hash
	Status          uint8
}

func TestTransactionInfoCodecMatchesGeneric(t *testing.T) {
	hash := rapid.Custom(func(t *rapid.T) Hash {
		var h Hash
		copy(h[:], rapid.SliceOfN(rapid.Byte(), HashSize, HashSize).Draw(t, "h"))
		return h
	})
	rapid.Check(t, func(t *rapid.T) {
		m := tiMirror{
			TransactionHash: hash.Draw(t, "t"), WriteSetHash: hash.Draw(t, "w"),
			EventRootHash: hash.Draw(t, "e"), StateRootHash: hash.Draw(t, "s"),
			Status: rapid.Uint8().Draw(t, "status"),
		}
		ti := TransactionInfo{TransactionHash: m.TransactionHash, WriteSetHash: m.WriteSetHash,
			EventRootHash: m.EventRootHash, StateRootHash: m.StateRootHash, Status: TransactionStatus(m.Status)}
		want, err := encMode.Marshal(&m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Encode(&ti)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("hand encoding %x, generic %x", got, want)
		}
		if ti.Hash() != HashOf(DomainTransactionInfo, want) {
			t.Fatal("hash is not over the canonical encoding")
		}
		var back TransactionInfo
		if err := DecodeCanonical(want, MaxSmallStructSize, &back); err != nil || back != ti {
			t.Fatalf("decode: %v %+v", err, back)
		}
		// Inside a larger structure the same bytes appear.
		tw := TransactionWithOutput{Info: ti}
		enc, err := Encode(&tw)
		if err != nil || !bytes.HasSuffix(enc, want) {
			t.Fatalf("nested encoding %x does not end with %x (%v)", enc, want, err)
		}
	})
}

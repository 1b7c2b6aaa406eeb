package ledger

import (
	"bytes"
	"strings"
	"testing"
)

// addSeeds adds valid encodings and a few broken variants of each.
func addSeeds(f *testing.F, valid ...[]byte) {
	for _, b := range valid {
		f.Add(b)
		f.Add(b[:len(b)/2])
		f.Add(append(append([]byte(nil), b...), 0))
		m := append([]byte(nil), b...)
		m[len(m)/3] ^= 0x40
		f.Add(m)
	}
	f.Add([]byte{})
	f.Add([]byte{0x9f, 0xff})
	f.Add([]byte{0x84, 0x81, 0x40, 0x9a, 0xff, 0xff, 0xff, 0xff})
}

// requireCanonical fails if an accepted value does not re-encode to the input.
func requireCanonical(t *testing.T, in []byte, v any) {
	t.Helper()
	out, err := Encode(v)
	if err != nil {
		t.Fatalf("re-encode accepted value: %v", err)
	}
	if !bytes.Equal(in, out) {
		t.Fatalf("accepted input %x re-encodes to %x", in, out)
	}
}

func FuzzDecodeTransactionWithOutput(f *testing.F) {
	aborted, err := NewTransactionWithOutput(Transaction{}, nil, nil, StatusAborted, Hash{})
	if err != nil {
		f.Fatal(err)
	}
	addSeeds(f, mustEncode(f, ptr(sampleTxn(f, 1))), mustEncode(f, ptr(sampleTxn(f, 2))), mustEncode(f, &aborted))
	f.Fuzz(func(t *testing.T, b []byte) {
		tw, err := DecodeTransactionWithOutput(b)
		if err != nil {
			return
		}
		requireCanonical(t, b, &tw)
		if err := tw.Validate(); err != nil {
			t.Fatalf("accepted value invalid: %v", err)
		}
	})
}

func FuzzDecodeTransactionInfo(f *testing.F) {
	addSeeds(f, mustEncode(f, ptr(sampleTxn(f, 1).Info)))
	f.Fuzz(func(t *testing.T, b []byte) {
		ti, err := DecodeTransactionInfo(b)
		if err != nil {
			return
		}
		requireCanonical(t, b, &ti)
	})
}

func FuzzDecodeLedgerInfoWithSignatures(f *testing.F) {
	c := newTestChain(f, 2)
	mid := SignLedgerInfo(LedgerInfo{Epoch: 2, Version: 150}, c.signers[2]...)
	addSeeds(f, mustEncode(f, &c.endings[0]), mustEncode(f, &c.endings[2]), mustEncode(f, &mid))
	g := c.endings[0].LedgerInfo
	h, err := NewEpochHistory(NewWaypoint(&g), &g)
	if err != nil {
		f.Fatal(err)
	}
	if err := h.Append(&c.endings[1]); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		l, err := DecodeLedgerInfoWithSignatures(b)
		if err != nil {
			return
		}
		requireCanonical(t, b, &l)
		// Verification of any decoded value must not panic; a mutation must not verify
		// unless it is one of the genuine ledger infos.
		if err := h.Verify(&l); err == nil {
			lh := l.LedgerInfo.Hash()
			if lh != c.endings[0].LedgerInfo.Hash() && lh != c.endings[1].LedgerInfo.Hash() &&
				lh != c.endings[2].LedgerInfo.Hash() && lh != mid.LedgerInfo.Hash() {
				t.Fatalf("forged ledger info verified: %+v", l.LedgerInfo)
			}
		}
		_ = h.Append(&l)
	})
}

func FuzzDecodeLedgerInfo(f *testing.F) {
	c := newTestChain(f, 1)
	addSeeds(f, mustEncode(f, &c.endings[0].LedgerInfo), mustEncode(f, &LedgerInfo{Epoch: 1, Version: 5}))
	f.Fuzz(func(t *testing.T, b []byte) {
		li, err := DecodeLedgerInfo(b)
		if err != nil {
			return
		}
		requireCanonical(t, b, &li)
	})
}

func FuzzDecodeValidatorSet(f *testing.F) {
	_, vs := signersFor(f, "fuzz", 3, []uint64{1, 5, 1 << 40})
	addSeeds(f, mustEncode(f, vs))
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := DecodeValidatorSet(b)
		if err != nil {
			return
		}
		requireCanonical(t, b, &v)
		if err := v.Validate(); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzParseWaypoint(f *testing.F) {
	c := newTestChain(f, 1)
	f.Add(NewWaypoint(&c.endings[1].LedgerInfo).String())
	f.Add("0:" + ZeroHash.String())
	f.Add("1:zz")
	f.Fuzz(func(t *testing.T, s string) {
		wp, err := ParseWaypoint(s)
		if err != nil {
			return
		}
		if !strings.EqualFold(wp.String(), s) { // hex may be in either case
			t.Fatalf("accepted %q prints as %q", s, wp.String())
		}
	})
}

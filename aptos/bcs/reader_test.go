package bcs

import (
	"bytes"
	"errors"
	"os"
	"strings"
	"testing"
)

func TestIntegersLittleEndian(t *testing.T) {
	in := []byte{
		0x7f,
		0x34, 0x12,
		0x78, 0x56, 0x34, 0x12,
		0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01,
		1, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0,
	}
	r := NewReader(in, Limits{})
	if v := r.U8("a"); v != 0x7f {
		t.Fatalf("u8 %x", v)
	}
	if v := r.U16("b"); v != 0x1234 {
		t.Fatalf("u16 %x", v)
	}
	if v := r.U32("c"); v != 0x12345678 {
		t.Fatalf("u32 %x", v)
	}
	if v := r.U64("d"); v != 0x0102030405060708 {
		t.Fatalf("u64 %x", v)
	}
	if v := r.U128("e"); v != (Uint128{Hi: 2, Lo: 1}) {
		t.Fatalf("u128 %+v", v)
	}
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
}

func TestBoolAndOptionStrict(t *testing.T) {
	for _, c := range []struct {
		in   byte
		want bool
		ok   bool
	}{{0, false, true}, {1, true, true}, {2, false, false}, {0xff, false, false}} {
		r := NewReader([]byte{c.in}, Limits{})
		got := r.Bool("flag")
		if (r.Err() == nil) != c.ok || got != c.want {
			t.Errorf("bool %#x: got %v err %v", c.in, got, r.Err())
		}
		r = NewReader([]byte{c.in}, Limits{})
		got = r.Option("opt")
		if (r.Err() == nil) != c.ok || got != c.want {
			t.Errorf("option %#x: got %v err %v", c.in, got, r.Err())
		}
		if !c.ok && !errors.Is(r.Err(), ErrInvalid) {
			t.Errorf("option %#x: error %v is not ErrInvalid", c.in, r.Err())
		}
	}
}

func TestULEB128Canonical(t *testing.T) {
	for _, c := range []struct {
		in   []byte
		want uint32
		err  error
	}{
		{[]byte{0}, 0, nil},
		{[]byte{0x7f}, 127, nil},
		{[]byte{0x80, 0x01}, 128, nil},
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x0f}, 1<<32 - 1, nil},
		{[]byte{0x80, 0x00}, 0, ErrInvalid},                   // overlong zero
		{[]byte{0xff, 0x00}, 0, ErrInvalid},                   // overlong 127
		{[]byte{0xff, 0xff, 0xff, 0xff, 0x1f}, 0, ErrInvalid}, // above u32
		{[]byte{0x80, 0x80, 0x80, 0x80, 0x80, 0x01}, 0, ErrInvalid},
		{[]byte{0x80}, 0, ErrShort},
		{nil, 0, ErrShort},
	} {
		r := NewReader(c.in, Limits{})
		got := r.ULEB128("n")
		if c.err == nil {
			if err := r.Done(); err != nil || got != c.want {
				t.Errorf("% x: got %d err %v", c.in, got, err)
			}
			if enc := AppendULEB128(nil, got); !bytes.Equal(enc, c.in) {
				t.Errorf("% x: re-encoded % x", c.in, enc)
			}
			continue
		}
		if !errors.Is(r.Err(), c.err) {
			t.Errorf("% x: error %v, want %v", c.in, r.Err(), c.err)
		}
	}
}

func TestLengthLimits(t *testing.T) {
	// A length above 2^31-1 is invalid whatever the max.
	r := NewReader([]byte{0x80, 0x80, 0x80, 0x80, 0x08}, Limits{})
	r.Bytes("b", 1<<62)
	if !errors.Is(r.Err(), ErrInvalid) {
		t.Fatalf("2^31: %v", r.Err())
	}
	// Above the caller's max.
	r = NewReader(append([]byte{5}, "hello"...), Limits{})
	r.Bytes("b", 4)
	if !errors.Is(r.Err(), ErrLimit) {
		t.Fatalf("max: %v", r.Err())
	}
	// Claims more than the input holds.
	r = NewReader(append([]byte{6}, "hello"...), Limits{})
	r.Bytes("b", 100)
	if !errors.Is(r.Err(), ErrShort) {
		t.Fatalf("short: %v", r.Err())
	}
	// A sequence claiming more elements than bytes left fails before any allocation.
	r = NewReader([]byte{0xff, 0xff, 0xff, 0x07}, Limits{})
	if n := r.SeqLen("v", MaxSequenceLength, 1); n != 0 || !errors.Is(r.Err(), ErrShort) {
		t.Fatalf("seq: %d %v", n, r.Err())
	}
	// The element budget is shared by all sequences.
	r = NewReader([]byte{2, 0, 0, 2, 0, 0}, Limits{MaxElements: 3})
	r.SeqLen("a", 10, 1)
	r.U8("a0")
	r.U8("a1")
	r.SeqLen("b", 10, 1)
	if !errors.Is(r.Err(), ErrLimit) {
		t.Fatalf("budget: %v", r.Err())
	}
	// Input limit.
	r = NewReader(make([]byte, 11), Limits{MaxInput: 10})
	if !errors.Is(r.Err(), ErrLimit) {
		t.Fatalf("input: %v", r.Err())
	}
	// Depth limit.
	r = NewReader(nil, Limits{MaxDepth: 2})
	r.Push("a")
	r.Push("b")
	r.Push("c")
	if !errors.Is(r.Err(), ErrLimit) {
		t.Fatalf("depth: %v", r.Err())
	}
}

func TestStringUTF8(t *testing.T) {
	r := NewReader([]byte{2, 0xc3, 0xa9}, Limits{})
	if s := r.String("s", 10); s != "é" || r.Done() != nil {
		t.Fatalf("%q %v", s, r.Err())
	}
	r = NewReader([]byte{1, 0xff}, Limits{})
	r.String("s", 10)
	if !errors.Is(r.Err(), ErrInvalid) {
		t.Fatal(r.Err())
	}
}

func TestVariant(t *testing.T) {
	r := NewReader([]byte{1}, Limits{})
	if v := r.Variant("e", 2); v != 1 || r.Done() != nil {
		t.Fatal(v, r.Err())
	}
	r = NewReader([]byte{2}, Limits{})
	r.Variant("e", 2)
	if !errors.Is(r.Err(), ErrInvalid) {
		t.Fatal(r.Err())
	}
}

func TestErrorPathAndStickiness(t *testing.T) {
	r := NewReader([]byte{1, 2, 0, 0, 0, 0, 0, 0, 0, 7}, Limits{})
	r.Push("outer")
	n := r.SeqLen("items", 10, 1)
	for i := 0; i < n; i++ {
		r.PushIndex("items", i)
		r.U64("value")
		r.Bool("flag")
		r.Pop()
	}
	r.Pop()
	err := r.Err()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not *Error", err)
	}
	if e.Path != "outer.items[0].flag" || e.Offset != 9 {
		t.Fatalf("path %q offset %d", e.Path, e.Offset)
	}
	if !strings.Contains(err.Error(), "outer.items[0].flag at offset 9") {
		t.Fatalf("message %q", err)
	}
	off := r.Offset()
	if v := r.U8("more"); v != 0 || r.Offset() != off || r.Err() != err {
		t.Fatal("reads after an error must be no-ops")
	}
	if r.Done() != err {
		t.Fatal("Done must return the first error")
	}
}

func TestDoneTrailing(t *testing.T) {
	r := NewReader([]byte{1, 2}, Limits{})
	r.U8("a")
	if err := r.Done(); !errors.Is(err, ErrTrailing) {
		t.Fatal(err)
	}
}

func TestSinceAliasesConsumedBytes(t *testing.T) {
	in := []byte{1, 2, 3, 4}
	r := NewReader(in, Limits{})
	r.U8("a")
	start := r.Offset()
	r.U16("b")
	if got := r.Since(start); !bytes.Equal(got, []byte{2, 3}) {
		t.Fatalf("% x", got)
	}
	if r.Since(4) != nil {
		t.Fatal("Since beyond offset")
	}
}

func TestAppendRoundTrip(t *testing.T) {
	var b []byte
	b = AppendU8(b, 9)
	b = AppendU16(b, 0xbeef)
	b = AppendU32(b, 0xdeadbeef)
	b = AppendU64(b, 1<<60+3)
	b = AppendU128(b, Uint128{Hi: 5, Lo: 6})
	b = AppendBool(b, true)
	b = AppendBytes(b, bytes.Repeat([]byte{7}, 300))
	b = AppendString(b, "aptos")
	r := NewReader(b, Limits{})
	if r.U8("") != 9 || r.U16("") != 0xbeef || r.U32("") != 0xdeadbeef || r.U64("") != 1<<60+3 ||
		r.U128("") != (Uint128{Hi: 5, Lo: 6}) || !r.Bool("") || len(r.Bytes("", 300)) != 300 ||
		r.String("", 5) != "aptos" || r.Done() != nil {
		t.Fatal("round trip", r.Err())
	}
}

// realRecord is one real epoch-ending record (LedgerInfoWithSignatures of epoch 5 of the
// aptos-libra7 corpus, without its u32 frame).
func realRecord(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/epoch5-ledger-info.bcs")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// decodeLedgerInfoShape walks the real record's layout with the Reader API only (the
// aptos package holds the typed decoder); it proves the API can express it.
func decodeLedgerInfoShape(r *Reader) {
	r.Variant("ledger_info_with_signatures", 1)
	r.Push("ledger_info")
	r.Push("commit_info")
	r.U64("epoch")
	r.U64("round")
	r.Fixed32("id")
	r.Fixed32("executed_state_id")
	r.U64("version")
	r.U64("timestamp_usecs")
	if r.Option("next_epoch_state") {
		r.Push("next_epoch_state")
		r.U64("epoch")
		n := r.SeqLen("validators", 1<<16, 1)
		for i := 0; i < n && r.Err() == nil; i++ {
			r.PushIndex("validators", i)
			r.Fixed32("address")
			r.Bytes("public_key", 48)
			r.U64("voting_power")
			r.Pop()
		}
		r.Pop()
	}
	r.Pop()
	r.Fixed32("consensus_data_hash")
	r.Pop()
	r.Push("signatures")
	r.Bytes("validator_bitmask", 1<<13)
	if r.Option("sig") {
		r.Bytes("sig", 96)
	}
	r.Pop()
}

func TestRealRecordShape(t *testing.T) {
	rec := realRecord(t)
	r := NewReader(rec, Limits{})
	decodeLedgerInfoShape(r)
	if err := r.Done(); err != nil {
		t.Fatal(err)
	}
	// Every strict prefix fails with ErrShort, never a panic.
	for i := 0; i < len(rec); i++ {
		r := NewReader(rec[:i], Limits{})
		decodeLedgerInfoShape(r)
		if err := r.Done(); !errors.Is(err, ErrShort) {
			t.Fatalf("prefix %d: %v", i, err)
		}
	}
}

// FuzzReader drives the Reader with an op program over arbitrary input and checks
// its invariants: no panic, the offset never passes the input, reads after an error
// are no-ops, and Done fails exactly when an error occurred or input remains.
func FuzzReader(f *testing.F) {
	rec := realRecord(f)
	f.Add([]byte{}, rec)
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, rec)
	f.Add([]byte{9, 3, 3, 7, 7, 4, 4, 10, 9, 10, 3, 3, 10, 9, 7}, rec)
	f.Fuzz(func(t *testing.T, prog, data []byte) {
		r := NewReader(data, Limits{MaxElements: 1000, MaxDepth: 20})
		var firstErr error
		for _, op := range prog {
			before := r.Offset()
			switch op % 14 {
			case 0:
				r.U8("u8")
			case 1:
				r.U16("u16")
			case 2:
				r.U32("u32")
			case 3:
				r.U64("u64")
			case 4:
				r.U128("u128")
			case 5:
				r.Bool("bool")
			case 6:
				r.Option("option")
			case 7:
				if b := r.Bytes("bytes", 100); len(b) > 100 {
					t.Fatal("bytes above max")
				}
			case 8:
				r.String("string", 100)
			case 9:
				if n := r.SeqLen("seq", 500, 1); n > r.Remaining() {
					t.Fatal("seq longer than the input left")
				}
			case 10:
				r.Fixed32("fixed")
			case 11:
				r.Variant("variant", 3)
			case 12:
				r.Push("p")
			case 13:
				r.Pop()
			}
			if r.Offset() < before || r.Offset() > len(data) {
				t.Fatalf("offset %d -> %d of %d", before, r.Offset(), len(data))
			}
			if firstErr != nil {
				if r.Offset() != before || r.Err() != firstErr {
					t.Fatal("read after error changed state")
				}
			}
			if firstErr == nil && r.Err() != nil {
				firstErr = r.Err()
				var e *Error
				if !errors.As(firstErr, &e) || e.Offset < 0 || e.Offset > len(data) {
					t.Fatalf("error %v", firstErr)
				}
			}
		}
		err := r.Done()
		if (err != nil) != (firstErr != nil || r.Offset() != len(data)) {
			t.Fatalf("Done %v with first error %v, offset %d of %d", err, firstErr, r.Offset(), len(data))
		}
	})
}

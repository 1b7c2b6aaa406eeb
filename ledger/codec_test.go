package ledger

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func mustEncode(t testing.TB, v any) []byte {
	t.Helper()
	b, err := Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRoundTripEveryType(t *testing.T) {
	c := newTestChain(t, 2)
	tw := sampleTxn(t, 7)
	aborted, err := NewTransactionWithOutput(Transaction{}, nil, nil, StatusAborted, Hash{1})
	if err != nil {
		t.Fatal(err)
	}

	check := func(name string, v any, decode func([]byte) (any, error)) {
		t.Helper()
		b := mustEncode(t, v)
		got, err := decode(b)
		if err != nil {
			t.Fatalf("%s: decode: %v", name, err)
		}
		b2 := mustEncode(t, got)
		if !bytes.Equal(b, b2) {
			t.Fatalf("%s: re-encoding differs", name)
		}
	}
	check("TransactionWithOutput", &tw, func(b []byte) (any, error) { v, err := DecodeTransactionWithOutput(b); return &v, err })
	check("aborted", &aborted, func(b []byte) (any, error) { v, err := DecodeTransactionWithOutput(b); return &v, err })
	check("TransactionInfo", &tw.Info, func(b []byte) (any, error) { v, err := DecodeTransactionInfo(b); return &v, err })
	check("LedgerInfoWithSignatures", &c.endings[2], func(b []byte) (any, error) { v, err := DecodeLedgerInfoWithSignatures(b); return &v, err })
	check("LedgerInfo", &c.endings[1].LedgerInfo, func(b []byte) (any, error) { v, err := DecodeLedgerInfo(b); return &v, err })
	check("ValidatorSet", c.sets[1], func(b []byte) (any, error) { v, err := DecodeValidatorSet(b); return &v, err })

	// Decoded values equal the originals, and so do their hashes.
	got, err := DecodeTransactionWithOutput(mustEncode(t, &tw))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Transaction, tw.Transaction) || !reflect.DeepEqual(got.Events, tw.Events) ||
		!reflect.DeepEqual(got.WriteSet[:2], tw.WriteSet[:2]) || !got.WriteSet[2].Deleted ||
		!bytes.Equal(got.WriteSet[2].Key, tw.WriteSet[2].Key) || got.Info != tw.Info {
		t.Fatalf("decoded transaction differs:\n%+v\n%+v", got, tw)
	}
	li, err := DecodeLedgerInfoWithSignatures(mustEncode(t, &c.endings[2]))
	if err != nil {
		t.Fatal(err)
	}
	if li.LedgerInfo.Hash() != c.endings[2].LedgerInfo.Hash() || !li.LedgerInfo.NextValidatorSet.Equal(c.sets[3]) {
		t.Fatal("decoded ledger info differs")
	}
	// nil and empty byte slices are the same value with the same encoding.
	a := mustEncode(t, &Event{Type: "x"})
	b := mustEncode(t, &Event{Type: "x", Key: []byte{}, Data: []byte{}})
	if !bytes.Equal(a, b) {
		t.Fatal("nil and empty slices encode differently")
	}
}

func TestHashesAreDomainSeparatedAndSensitive(t *testing.T) {
	tw := sampleTxn(t, 1)
	base := tw.Info.Hash()
	mut := tw.Info
	mut.Status = StatusAborted
	if mut.Hash() == base {
		t.Fatal("status does not change the info hash")
	}
	mut = tw.Info
	mut.StateRootHash[31] ^= 1
	if mut.Hash() == base {
		t.Fatal("state root does not change the info hash")
	}
	// Same bytes in different domains hash differently.
	enc := mustEncode(t, &tw.Transaction)
	if HashOf(DomainTransaction, enc) == HashOf(DomainEvent, enc) {
		t.Fatal("domains not separated")
	}
	if tw.Transaction.Hash() != HashOf(DomainTransaction, enc) {
		t.Fatal("transaction hash is not over its canonical encoding")
	}
	// Event order matters to the event root; no events is the placeholder.
	ev := tw.Events
	swapped := []Event{ev[1], ev[0]}
	if EventRoot(ev) == EventRoot(swapped) {
		t.Fatal("event order does not change the event root")
	}
	if EventRoot(nil) != HashOf(DomainEventTreePlaceholder) || EventRoot(ev[:1]) != ev[0].Hash() {
		t.Fatal("event root of 0 or 1 events wrong")
	}
	three := append(append([]Event(nil), ev...), Event{Type: "third"})
	l := HashOf(DomainEventTreeInternal, hcat(ev[0].Hash(), ev[1].Hash())...)
	want := HashOf(DomainEventTreeInternal, hcat(l, three[2].Hash())...)
	if EventRoot(three) != want {
		t.Fatal("event root of 3 events has the wrong shape")
	}
}

func hcat(a, b Hash) [][]byte { return [][]byte{a[:], b[:]} }

// TestNonCanonicalRejected feeds encodings of valid values that are not canonical.
func TestNonCanonicalRejected(t *testing.T) {
	tw := sampleTxn(t, 3)
	info := mustEncode(t, &tw.Info)
	if info[0] != 0x85 || info[len(info)-1] != 0x00 {
		t.Fatalf("unexpected info encoding %x", info[:2])
	}
	cases := map[string][]byte{
		// Status 0 as a one-byte-argument integer (0x18 0x00) instead of 0x00.
		"non-minimal integer": append(append([]byte(nil), info[:len(info)-1]...), 0x18, 0x00),
		// First hash with a 2-byte length (0x59 0x00 0x20) instead of 0x58 0x20.
		"non-minimal length": append([]byte{0x85, 0x59, 0x00, 0x20}, info[3:]...),
		"indefinite array":   append(append([]byte{0x9f}, info[1:]...), 0xff),
		"tagged":             append([]byte{0xd8, 0x18}, info...),
		"trailing byte":      append(append([]byte(nil), info...), 0x00),
		"extra element":      append(append([]byte{0x86}, info[1:]...), 0x00),
		"missing element":    append([]byte{0x84}, info[1:len(info)-1]...),
		"short hash":         append(append([]byte{0x85, 0x58, 0x1f}, info[3:34]...), info[35:]...),
		"empty":              {},
	}
	for name, b := range cases {
		if _, err := DecodeTransactionInfo(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A long hash (33 bytes) must not be truncated into a valid one.
	long := append([]byte{0x85, 0x58, 0x21}, info[3:35]...)
	long = append(append(long, 0xaa), info[35:]...)
	if _, err := DecodeTransactionInfo(long); err == nil {
		t.Error("33-byte hash accepted")
	}

	// null where an empty byte string is canonical.
	ev := mustEncode(t, &Event{Type: "t"})
	if !bytes.Equal(ev, []byte{0x83, 0x61, 't', 0x40, 0x40}) {
		t.Fatalf("event encoding %x", ev)
	}
	tw2 := tw
	tw2.Events = []Event{{Type: "t"}}
	tw2.Info.EventRootHash = EventRoot(tw2.Events)
	enc := mustEncode(t, &tw2)
	i := bytes.Index(enc, ev)
	nullEnc := append(append(append([]byte(nil), enc[:i]...), 0x83, 0x61, 't', 0xf6, 0x40), enc[i+len(ev):]...)
	if _, err := DecodeTransactionWithOutput(enc); err != nil {
		t.Fatal(err)
	}
	if _, err := DecodeTransactionWithOutput(nullEnc); !errors.Is(err, ErrNonCanonical) {
		t.Errorf("null for empty bytes: %v", err)
	}
	// Invalid UTF-8 in a text string.
	badUTF := append(append(append([]byte(nil), enc[:i]...), 0x83, 0x61, 0xff, 0x40, 0x40), enc[i+len(ev):]...)
	if _, err := DecodeTransactionWithOutput(badUTF); err == nil {
		t.Error("invalid UTF-8 accepted")
	}
	// A map where an array is expected.
	if _, err := DecodeTransactionInfo([]byte{0xa1, 0x01, 0x02}); err == nil {
		t.Error("map accepted")
	}
}

func TestInvalidValuesRejected(t *testing.T) {
	good := sampleTxn(t, 5)
	mutate := func(name string, f func(*TransactionWithOutput)) {
		t.Helper()
		tw := good
		tw.WriteSet = append(WriteSet(nil), good.WriteSet...)
		tw.Events = append([]Event(nil), good.Events...)
		f(&tw)
		b := mustEncode(t, &tw)
		if _, err := DecodeTransactionWithOutput(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	mutate("unsorted write set", func(tw *TransactionWithOutput) {
		tw.WriteSet[0], tw.WriteSet[1] = tw.WriteSet[1], tw.WriteSet[0]
		tw.Info.WriteSetHash = tw.WriteSet.Hash()
	})
	mutate("duplicate key", func(tw *TransactionWithOutput) {
		tw.WriteSet[1].Key = tw.WriteSet[0].Key
		tw.Info.WriteSetHash = tw.WriteSet.Hash()
	})
	mutate("empty key", func(tw *TransactionWithOutput) {
		tw.WriteSet[0].Key = nil
		tw.Info.WriteSetHash = tw.WriteSet.Hash()
	})
	mutate("deletion with value", func(tw *TransactionWithOutput) {
		tw.WriteSet[2].Value = []byte("x")
		tw.Info.WriteSetHash = tw.WriteSet.Hash()
	})
	mutate("huge key", func(tw *TransactionWithOutput) {
		tw.WriteSet = WriteSet{{Key: bytes.Repeat([]byte("k"), MaxKeySize+1), Value: []byte("v")}}
		tw.Info.WriteSetHash = tw.WriteSet.Hash()
	})
	mutate("huge event type", func(tw *TransactionWithOutput) {
		tw.Events[0].Type = strings.Repeat("t", MaxEventTypeSize+1)
		tw.Info.EventRootHash = EventRoot(tw.Events)
	})
	mutate("unknown status", func(tw *TransactionWithOutput) { tw.Info.Status = 9 })
	mutate("aborted with writes", func(tw *TransactionWithOutput) { tw.Info.Status = StatusAborted })
	mutate("wrong transaction hash", func(tw *TransactionWithOutput) { tw.Transaction.Payload = []byte("other") })
	mutate("wrong write set hash", func(tw *TransactionWithOutput) { tw.WriteSet[0].Value = []byte("other") })
	mutate("wrong event root", func(tw *TransactionWithOutput) { tw.Events[0].Data = []byte("other") })

	if _, err := NewTransactionWithOutput(Transaction{}, WriteSet{{Key: []byte("b")}, {Key: []byte("a")}}, nil, StatusSuccess, Hash{}); err == nil {
		t.Error("NewTransactionWithOutput accepted an unsorted write set")
	}
}

func TestLimitsRejected(t *testing.T) {
	// Input larger than the type's cap is rejected before parsing.
	big := make([]byte, MaxTransactionWithOutputSize+1)
	if _, err := DecodeTransactionWithOutput(big); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("oversized transaction: %v", err)
	}
	if _, err := DecodeLedgerInfoWithSignatures(make([]byte, MaxLedgerInfoSize+1)); err == nil || !strings.Contains(err.Error(), "exceeds the limit") {
		t.Errorf("oversized ledger info: %v", err)
	}
	// An array header claiming 2^32 elements, with no elements behind it.
	hostile := []byte{0x84, 0x81, 0x40, 0x9a, 0xff, 0xff, 0xff, 0xff}
	if _, err := DecodeTransactionWithOutput(hostile); err == nil {
		t.Error("huge array header accepted")
	}
	// More array elements than the limit, all present (empty write ops are 4 bytes).
	n := cborMaxArrayElements + 1
	b := []byte{0x84, 0x81, 0x40, 0x9a, byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	for i := 0; i < n; i++ {
		b = append(b, 0x83, 0x40, 0x40, 0xf4)
	}
	if _, err := DecodeTransactionWithOutput(b); err == nil || !strings.Contains(err.Error(), "exceeded max number of elements") {
		t.Errorf("too many elements: %v", err)
	}
	// Nesting deeper than the limit.
	deep := bytes.Repeat([]byte{0x81}, cborMaxNestedLevels+2)
	deep = append(deep, 0x00)
	if _, err := DecodeLedgerInfoWithSignatures(deep); err == nil || !strings.Contains(err.Error(), "nested level") {
		t.Errorf("deep nesting: %v", err)
	}
	// Too many validators.
	vals := make([]ValidatorInfo, MaxValidators+1)
	for i := range vals {
		k := make([]byte, 32)
		k[0], k[1] = byte(i>>8), byte(i)
		vals[i] = ValidatorInfo{PublicKey: k, VotingPower: 1}
	}
	if _, err := NewValidatorSet(vals); err == nil {
		t.Error("validator set over the limit accepted")
	}
	if _, err := DecodeValidatorSet(mustEncode(t, &ValidatorSet{Validators: vals})); err == nil {
		t.Error("decoded validator set over the limit accepted")
	}
}

func TestValidatorSetValidation(t *testing.T) {
	_, vs := signersFor(t, "v", 3, []uint64{1, 2, 3})
	bad := func(name string, f func(*ValidatorSet)) {
		t.Helper()
		c := &ValidatorSet{Validators: append([]ValidatorInfo(nil), vs.Validators...)}
		f(c)
		if err := c.Validate(); err == nil {
			t.Errorf("%s: accepted", name)
		}
		if _, err := DecodeValidatorSet(mustEncode(t, c)); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	bad("empty", func(c *ValidatorSet) { c.Validators = nil })
	bad("unsorted", func(c *ValidatorSet) { c.Validators[0], c.Validators[1] = c.Validators[1], c.Validators[0] })
	bad("duplicate", func(c *ValidatorSet) { c.Validators[1] = c.Validators[0] })
	bad("zero power", func(c *ValidatorSet) { c.Validators[0].VotingPower = 0 })
	bad("short key", func(c *ValidatorSet) { c.Validators[0].PublicKey = c.Validators[0].PublicKey[:31] })
	bad("power overflow", func(c *ValidatorSet) { c.Validators[0].VotingPower = 1 << 63 })
	if vs.TotalPower() != 6 {
		t.Fatalf("total power %d", vs.TotalPower())
	}
	// Quorum is strictly more than 2/3: 4 of 6 is exactly 2/3.
	if vs.HasQuorum(4) || !vs.HasQuorum(5) {
		t.Error("quorum threshold wrong")
	}
}

func TestWaypointText(t *testing.T) {
	c := newTestChain(t, 1)
	wp := NewWaypoint(&c.endings[1].LedgerInfo)
	s := wp.String()
	if !strings.HasPrefix(s, "100:") || len(s) != 4+64 {
		t.Fatalf("waypoint text %q", s)
	}
	got, err := ParseWaypoint(s)
	if err != nil || got != wp {
		t.Fatalf("ParseWaypoint(%q) = %v, %v", s, got, err)
	}
	var u Waypoint
	if err := u.UnmarshalText([]byte(s)); err != nil || u != wp {
		t.Fatalf("UnmarshalText: %v", err)
	}
	for _, bad := range []string{"", "100", ":" + wp.Hash.String(), "x:" + wp.Hash.String(), "-1:" + wp.Hash.String(),
		"+1:" + wp.Hash.String(), "0100:" + wp.Hash.String(), "100:" + wp.Hash.String()[1:], "100:" + wp.Hash.String() + "00",
		"100:" + strings.Repeat("g", 64), "18446744073709551616:" + wp.Hash.String()} {
		if _, err := ParseWaypoint(bad); err == nil {
			t.Errorf("ParseWaypoint(%q) accepted", bad)
		}
	}
}

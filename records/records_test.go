package records

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"testing/iotest"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func randomRecords(seed uint64, n int) [][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	out := make([][]byte, n)
	for i := range out {
		var size int
		switch r.IntN(10) {
		case 0:
			size = 0
		case 1:
			size = 70_000 + r.IntN(100_000) // larger than the buffer
		default:
			size = r.IntN(300)
		}
		b := make([]byte, size)
		for j := range b {
			b[j] = byte(r.Uint32())
		}
		out[i] = b
	}
	return out
}

func encode(t testing.TB, recs [][]byte, bufSize int, reserve bool) []byte {
	t.Helper()
	var buf bytes.Buffer
	w := NewWriterSize(&buf, bufSize)
	for _, r := range recs {
		if reserve {
			b, err := w.Reserve(len(r))
			if err != nil {
				t.Fatal(err)
			}
			copy(b, r)
		} else if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if w.Count() != uint64(len(recs)) {
		t.Fatalf("count %d, want %d", w.Count(), len(recs))
	}
	return buf.Bytes()
}

func readAll(r io.Reader, max int) ([][]byte, error) {
	rr := NewReader(r, max)
	var out [][]byte
	for rr.Next() {
		out = append(out, append([]byte{}, rr.Record()...))
	}
	return out, rr.Err()
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 7, 60} {
		for _, bufSize := range []int{64, 1000, 64 << 10} {
			for _, reserve := range []bool{false, true} {
				recs := randomRecords(uint64(n*bufSize), n)
				data := encode(t, recs, bufSize, reserve)
				// The same bytes whatever the buffering.
				if other := encode(t, recs, 64<<10, !reserve); !bytes.Equal(data, other) {
					t.Fatalf("n=%d buf=%d: encoding depends on buffering", n, bufSize)
				}
				for name, r := range map[string]io.Reader{
					"whole":    bytes.NewReader(data),
					"one byte": iotest.OneByteReader(bytes.NewReader(data)),
					"half":     iotest.HalfReader(bytes.NewReader(data)),
				} {
					got, err := readAll(r, 0)
					if err != nil {
						t.Fatalf("n=%d buf=%d %s: %v", n, bufSize, name, err)
					}
					if len(got) != len(recs) {
						t.Fatalf("n=%d %s: read %d records", n, name, len(got))
					}
					for i := range recs {
						if !bytes.Equal(got[i], recs[i]) {
							t.Fatalf("n=%d %s: record %d differs", n, name, i)
						}
					}
				}
			}
		}
	}
}

func TestEveryTruncationIsAnError(t *testing.T) {
	recs := randomRecords(3, 20)
	for i := range recs {
		recs[i] = recs[i][:min(len(recs[i]), 40)]
	}
	data := encode(t, recs, 128, false)
	for cut := 0; cut < len(data); cut++ {
		_, err := readAll(bytes.NewReader(data[:cut]), 0)
		if err == nil {
			t.Fatalf("stream cut at %d of %d bytes read without error", cut, len(data))
		}
		if cut < len(data)-TrailerSize && !errors.Is(err, ErrTruncated) {
			t.Fatalf("cut at %d: %v, want ErrTruncated", cut, err)
		}
	}
	// A stream that simply stops between records (a writer that was never closed).
	var buf bytes.Buffer
	w := NewWriter(&buf)
	for _, r := range recs {
		if err := w.WriteRecord(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	got, err := readAll(&buf, 0)
	if !errors.Is(err, ErrTruncated) || len(got) != len(recs) {
		t.Fatalf("unclosed stream: %d records, %v", len(got), err)
	}
}

func TestCorruption(t *testing.T) {
	recs := [][]byte{[]byte("alpha"), []byte("beta"), {}}
	data := encode(t, recs, 1024, false)
	flip := func(i int) []byte {
		d := append([]byte{}, data...)
		d[i] ^= 0x10
		return d
	}
	for name, d := range map[string][]byte{
		"payload byte":   flip(5),
		"trailer count":  flip(len(data) - 5),
		"trailer crc":    flip(len(data) - 1),
		"trailing data":  append(append([]byte{}, data...), 0),
		"two end marker": append(append([]byte{}, data...), data[len(data)-TrailerSize:]...),
	} {
		if _, err := readAll(bytes.NewReader(d), 0); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A read error (not EOF) is reported as such.
	boom := errors.New("boom")
	_, err := readAll(io.MultiReader(bytes.NewReader(data[:10]), iotest.ErrReader(boom)), 0)
	if !errors.Is(err, boom) {
		t.Fatalf("read error: %v", err)
	}
}

func TestOversizedPrefixFailsBeforeAllocating(t *testing.T) {
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], 1<<30)
	r := NewReader(io.MultiReader(bytes.NewReader(hdr[:]), iotest.ErrReader(errors.New("must not read the payload"))), 1<<20)
	before := len(r.buf)
	if r.Next() {
		t.Fatal("oversized record read")
	}
	if !errors.Is(r.Err(), ErrRecordTooLarge) {
		t.Fatalf("err = %v", r.Err())
	}
	if len(r.buf) != before {
		t.Fatalf("buffer grew to %d bytes for a rejected record", len(r.buf))
	}
	// The limit is inclusive.
	data := encode(t, [][]byte{make([]byte, 1000)}, 64, false)
	if _, err := readAll(bytes.NewReader(data), 1000); err != nil {
		t.Fatal(err)
	}
	if _, err := readAll(bytes.NewReader(data), 999); !errors.Is(err, ErrRecordTooLarge) {
		t.Fatalf("limit 999: %v", err)
	}
}

func TestWriterErrors(t *testing.T) {
	w := NewWriterSize(errWriter{}, 64)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		err = w.WriteRecord(make([]byte, 10))
	}
	if err == nil {
		t.Fatal("write errors not reported")
	}
	if w.Close() == nil {
		t.Fatal("Close after a write error succeeded")
	}
	w = NewWriter(io.Discard)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRecord(nil); err == nil {
		t.Fatal("write after close accepted")
	}
}

type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestReadingDoesNotAllocatePerRecord(t *testing.T) {
	recs := make([][]byte, 10_000)
	for i := range recs {
		recs[i] = bytes.Repeat([]byte{byte(i)}, 132)
	}
	data := encode(t, recs, 64<<10, false)
	allocs := testing.AllocsPerRun(5, func() {
		r := NewReader(bytes.NewReader(data), 0)
		for r.Next() {
		}
		if r.Err() != nil {
			t.Fatal(r.Err())
		}
	})
	if allocs > 10 {
		t.Fatalf("%.0f allocations to read %d records", allocs, len(recs))
	}
}

func TestKeyValue(t *testing.T) {
	for _, kv := range [][2]string{{"k", ""}, {"account/0001", "value"}, {string(make([]byte, 200)), "v"}} {
		b := make([]byte, KeyValueSize([]byte(kv[0]), []byte(kv[1])))
		if n := PutKeyValue(b, []byte(kv[0]), []byte(kv[1])); n != len(b) {
			t.Fatalf("wrote %d of %d", n, len(b))
		}
		k, v, err := SplitKeyValue(b, 4096)
		if err != nil || string(k) != kv[0] || string(v) != kv[1] {
			t.Fatalf("%q: %q %q %v", kv, k, v, err)
		}
	}
	for _, bad := range [][]byte{nil, {0}, {5, 'a'}, {0x80}, {0x81, 0x00, 'a'}, {200, 1}} {
		if _, _, err := SplitKeyValue(bad, 4096); err == nil {
			t.Errorf("%x accepted", bad)
		}
	}
	if _, _, err := SplitKeyValue([]byte{3, 'a', 'b', 'c'}, 2); err == nil {
		t.Error("key over the limit accepted")
	}
}

func FuzzReader(f *testing.F) {
	f.Add(encode(f, [][]byte{[]byte("a"), {}, []byte("hello")}, 64, false), 100)
	f.Add(encode(f, nil, 64, false), 10)
	f.Add([]byte{0, 0, 0, 5, 1, 2}, 1000)
	f.Add([]byte{0xff, 0xff, 0xff, 0xff}, 10)
	f.Add([]byte{0x7f, 0xff, 0xff, 0xff}, 10)
	f.Fuzz(func(t *testing.T, data []byte, max int) {
		max = max%(1<<16) + 1
		if max <= 0 {
			max = 1
		}
		r := NewReader(bytes.NewReader(data), max)
		var total int
		for r.Next() {
			if len(r.Record()) > max {
				t.Fatalf("record of %d bytes over the limit %d", len(r.Record()), max)
			}
			total += 4 + len(r.Record())
		}
		if r.Err() == nil {
			// A stream accepted as complete re-encodes to exactly the input.
			var recs [][]byte
			rr := NewReader(bytes.NewReader(data), max)
			for rr.Next() {
				recs = append(recs, append([]byte{}, rr.Record()...))
			}
			if got := encode(t, recs, 64, false); !bytes.Equal(got, data) {
				t.Fatal(fmt.Sprintf("accepted stream does not re-encode to itself: %x vs %x", got, data))
			}
		}
		if len(r.buf) > max+4+defaultBufferSize {
			t.Fatalf("buffer grew to %d for limit %d", len(r.buf), max)
		}
	})
}

func FuzzSplitKeyValue(f *testing.F) {
	f.Add([]byte{1, 'k', 'v'})
	f.Add([]byte{0x80, 0x01})
	f.Fuzz(func(t *testing.T, rec []byte) {
		k, v, err := SplitKeyValue(rec, 4096)
		if err != nil {
			return
		}
		b := make([]byte, KeyValueSize(k, v))
		PutKeyValue(b, k, v)
		if !bytes.Equal(b, rec) {
			t.Fatalf("%x decodes and re-encodes to %x", rec, b)
		}
	})
}

package backupservice

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/records"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeStream serves a hand-made stream body for the state snapshot endpoint.
func fakeStream(t *testing.T, announced int, body func(http.ResponseWriter)) *Client {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", RecordsContentType)
		w.Header().Set(RecordCountHeader, strconv.Itoa(announced))
		w.WriteHeader(http.StatusOK)
		body(w)
	}))
	c, err := New(ts.URL, ClientOptions{ReadTimeout: 5 * time.Second, MaxRecordSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ts.Close() })
	return c
}

func readState(c *Client) (int, error) {
	ss, err := c.StateSnapshotChunk(context.Background(), 1, 0, 100)
	if err != nil {
		return 0, err
	}
	defer ss.Close()
	n := 0
	for ss.Next() {
		n++
	}
	return n, ss.Err()
}

func kvRecords(w *records.Writer, n int) {
	for i := range n {
		k := fmt.Appendf(nil, "account/%016x", i) // the key of devnet account i
		b, _ := w.Reserve(records.KeyValueSize(k, []byte("v")))
		records.PutKeyValue(b, k, []byte("v"))
	}
}

func TestShortAndMalformedStreams(t *testing.T) {
	cases := []struct {
		name      string
		announced int
		body      func(http.ResponseWriter)
		want      error
	}{
		{"truncated between records (clean HTTP end, no trailer)", 5, func(w http.ResponseWriter) {
			rw := records.NewWriter(w)
			kvRecords(rw, 3)
			rw.Flush()
		}, records.ErrTruncated},
		{"truncated inside a record", 5, func(w http.ResponseWriter) {
			rw := records.NewWriter(w)
			kvRecords(rw, 3)
			rw.Flush()
			w.Write([]byte{0, 0, 0, 20, 1, 2})
		}, records.ErrTruncated},
		{"oversized length prefix", 5, func(w http.ResponseWriter) {
			w.Write([]byte{0x7f, 0xff, 0xff, 0xf0})
		}, records.ErrRecordTooLarge},
		{"fewer records than announced", 5, func(w http.ResponseWriter) {
			rw := records.NewWriter(w)
			kvRecords(rw, 3)
			rw.Close()
		}, nil},
		{"more records than announced", 2, func(w http.ResponseWriter) {
			rw := records.NewWriter(w)
			kvRecords(rw, 3)
			rw.Close()
		}, nil},
		{"bad trailer", 3, func(w http.ResponseWriter) {
			rw := records.NewWriter(w)
			kvRecords(rw, 3)
			rw.Flush()
			var t [records.TrailerSize]byte
			binary.BigEndian.PutUint32(t[:], 0xffffffff)
			binary.BigEndian.PutUint64(t[4:], 3)
			w.Write(t[:])
		}, records.ErrCorrupt},
		{"malformed state item", 1, func(w http.ResponseWriter) {
			rw := records.NewWriter(w)
			rw.WriteRecord([]byte{0x10, 'a'})
			rw.Close()
		}, records.ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := fakeStream(t, tc.announced, tc.body)
			n, err := readState(c)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("read %d records, err %v; want %v", n, err, tc.want)
			}
			t.Logf("%d records, then: %v", n, err)
		})
	}
	// A good stream from the same fake reads fine.
	c := fakeStream(t, 3, func(w http.ResponseWriter) {
		rw := records.NewWriter(w)
		kvRecords(rw, 3)
		rw.Close()
	})
	if n, err := readState(c); n != 3 || err != nil {
		t.Fatalf("good stream: %d records, %v", n, err)
	}
}

func TestClientRequestTimeout(t *testing.T) {
	release := make(chan struct{})
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer ts.Close()
	defer close(release)
	c, err := New(ts.URL, ClientOptions{RequestTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.DBState(context.Background()); !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("DBState against a silent server: %v", err)
	}
	if _, err := c.Transactions(context.Background(), 0, 10); !errors.Is(err, ErrRequestTimeout) {
		t.Fatalf("stream against a silent server: %v", err)
	}
}

// TestSlowConsumerIsNotAnIdleServer: time the caller spends between reads does not
// count against ReadTimeout.
func TestSlowConsumerIsNotAnIdleServer(t *testing.T) {
	big := make([]byte, 100<<10)
	c := fakeStream(t, 4, func(w http.ResponseWriter) {
		rw := records.NewWriter(w)
		for range 4 {
			k := []byte("key")
			b, _ := rw.Reserve(records.KeyValueSize(k, big))
			records.PutKeyValue(b, k, big)
		}
		rw.Close()
	})
	c.o.ReadTimeout = 100 * time.Millisecond
	ss, err := c.StateSnapshotChunk(context.Background(), 1, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer ss.Close()
	n := 0
	for ss.Next() {
		n++
		time.Sleep(250 * time.Millisecond)
	}
	if err := ss.Err(); err != nil || n != 4 {
		t.Fatalf("slow consumer: %d records, %v", n, err)
	}
}

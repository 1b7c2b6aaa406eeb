package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/devnet"
)

// stallWriter passes the first limit bytes of a response through, then blocks every
// write until released: a node that hangs mid-stream.
type stallWriter struct {
	http.ResponseWriter
	limit   int
	release <-chan struct{}
	stalled chan<- struct{}
	once    *sync.Once
}

func (w *stallWriter) Write(p []byte) (int, error) {
	if w.limit <= 0 {
		w.once.Do(func() { close(w.stalled) })
		<-w.release
		return 0, errors.New("released")
	}
	if len(p) > w.limit {
		p = p[:w.limit]
	}
	n, err := w.ResponseWriter.Write(p)
	w.limit -= n
	return n, err
}

func (w *stallWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// TestClientErrorsWhenServerStalls: the serving side stops sending mid-stream; the
// client fails with ErrReadTimeout within its read timeout, and no goroutine is left.
func TestClientErrorsWhenServerStalls(t *testing.T) {
	tc := newTestChain(t, devnet.Config{GenesisAccounts: 3000, BlockSize: 50}, 100)
	srv, err := New(tc.db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release := make(chan struct{})
	stalled := make(chan struct{})
	once := &sync.Once{}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		srv.ServeHTTP(&stallWriter{ResponseWriter: w, limit: 20_000, release: release, stalled: stalled, once: once}, r)
	}))
	const readTimeout = 300 * time.Millisecond
	c, err := backupservice.New(ts.Listener.Addr().String(), backupservice.ClientOptions{ReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := c.StateSnapshotChunk(context.Background(), 100, 0, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	var lastRecord time.Time
	for ss.Next() {
		n++
		lastRecord = time.Now()
	}
	waited := time.Since(lastRecord)
	err = ss.Err()
	ss.Close()
	if !errors.Is(err, backupservice.ErrReadTimeout) {
		t.Fatalf("after %d records: %v, want a read timeout", n, err)
	}
	if n == 0 || uint64(n) >= ss.Expected() {
		t.Fatalf("read %d of %d records before the stall", n, ss.Expected())
	}
	// Generous bound against scheduler noise: the point is that it does not hang.
	if waited > readTimeout+5*time.Second {
		t.Fatalf("client returned %v after the last record, read timeout %v", waited, readTimeout)
	}
	t.Logf("stalled stream: %d records, then %v after %v", n, err, waited)
	<-stalled
	close(release)
	c.Close()
	ts.Close()
	srv.Wait()
}

// gateWriter passes the writes of a response through until limit bytes are sent, then
// holds each further write until gate is closed.
type gateWriter struct {
	http.ResponseWriter
	limit int
	sent  int
	gate  <-chan struct{}
}

func (w *gateWriter) Write(p []byte) (int, error) {
	if w.sent >= w.limit {
		<-w.gate
	}
	n, err := w.ResponseWriter.Write(p)
	w.sent += n
	return n, err
}

func (w *gateWriter) Flush() { w.ResponseWriter.(http.Flusher).Flush() }

// TestClientErrorsWhenServerIsCancelled: the serving side is cancelled mid-stream (its
// base context, as a node shutting down does) or its connections are closed: the
// client sees an error, not a short stream.
func TestClientErrorsWhenServerIsCancelled(t *testing.T) {
	tc := newTestChain(t, devnet.Config{GenesisAccounts: 5000, BlockSize: 50}, 50)
	for _, kind := range []string{"cancel", "close connections"} {
		srv, err := New(tc.db, Options{})
		if err != nil {
			t.Fatal(err)
		}
		base, cancel := context.WithCancel(context.Background())
		// The server may send its first 20 kB, then waits until the client has
		// cancelled it or closed its connections: the stream is cut mid-way however
		// fast the server is.
		gate := make(chan struct{})
		var once sync.Once
		open := func() { once.Do(func() { close(gate) }) }
		ts := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			srv.ServeHTTP(&gateWriter{ResponseWriter: w, limit: 20_000, gate: gate}, r)
		}))
		ts.Config.BaseContext = func(net.Listener) context.Context { return base }
		ts.Start()
		c, err := backupservice.New(ts.Listener.Addr().String(), backupservice.ClientOptions{ReadTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		ss, err := c.StateSnapshotChunk(context.Background(), 50, 0, 1_000_000)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for ss.Next() {
			n++
			if n == 10 {
				if kind == "cancel" {
					cancel()
				} else {
					ts.CloseClientConnections()
				}
				open()
			}
		}
		open()
		err = ss.Err()
		ss.Close()
		if err == nil || errors.Is(err, backupservice.ErrReadTimeout) || uint64(n) >= ss.Expected() {
			t.Fatalf("%s after %d of %d records: %v, want a stream error", kind, n, ss.Expected(), err)
		}
		t.Logf("%s: %d records then %v", kind, n, err)
		cancel()
		c.Close()
		ts.Close()
		srv.Wait()
	}
}

package server

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testSecret = []byte("backupservice-test")

// testChain is a store with genesis, committed up to a version.
type testChain struct {
	db    *ledgerdb.DB
	chain *devnet.Chain
	wp    ledger.Waypoint
}

func newTestChain(t testing.TB, cfg devnet.Config, last uint64) *testChain {
	t.Helper()
	ctx := context.Background()
	db, err := ledgerdb.Open(ctx, t.TempDir(), ledgerdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cfg.Secret = testSecret
	wp, err := devnet.Genesis(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := devnet.Open(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.CommitUntil(ctx, last); err != nil {
		t.Fatal(err)
	}
	return &testChain{db: db, chain: c, wp: wp}
}

// commitInBackground commits blocks until the returned stop function is called.
func (tc *testChain) commitInBackground(t testing.TB) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			if _, err := tc.chain.CommitBlock(ctx); err != nil && ctx.Err() == nil {
				t.Errorf("background commit: %v", err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// serve starts the backup service over tc on 127.0.0.1 and a client of it.
func serve(t testing.TB, db *ledgerdb.DB, o backupservice.ClientOptions) (*httptest.Server, *Server, *backupservice.Client) {
	t.Helper()
	srv, err := New(db, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	c, err := backupservice.New(ts.Listener.Addr().String(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c.Close()
		ts.Close()
		srv.Wait()
	})
	return ts, srv, c
}

func httpStatus(err error) int {
	var he *backupservice.HTTPError
	if errors.As(err, &he) {
		return he.StatusCode
	}
	return 0
}

var _ http.Handler = (*Server)(nil)

func envUint(name string, def uint64) uint64 {
	if s := os.Getenv(name); s != "" {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			return v
		}
	}
	return def
}

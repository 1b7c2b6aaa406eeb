// Package testchain builds development chains, served by a backup service on
// 127.0.0.1, for the tests and benchmarks of the packages that back them up and
// restore them.
package testchain

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/backupservice/server"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// Chain is a committed development chain and a backup service serving it.
type Chain struct {
	// DB is the chain's store; Devnet commits more to it.
	DB     *ledgerdb.DB
	Devnet *devnet.Chain
	// Waypoint is the genesis waypoint.
	Waypoint ledger.Waypoint
	// Addr is the backup service's address; Service a client of it.
	Addr    string
	Service *backupservice.Client
}

// Options shape a chain.
type Options struct {
	// Accounts are created in bulk after genesis (500 per version, 100 per block).
	Accounts uint64
	// Dir holds the store (default: a directory of t.TempDir()).
	Dir string
	// ReadTimeout is the client's (default 5s).
	ReadTimeout time.Duration
}

// New commits a chain of cfg up to version last (after the bulk accounts) and serves
// it until the test ends; everything is closed by t.Cleanup.
func New(t testing.TB, cfg devnet.Config, last uint64, o Options) *Chain {
	t.Helper()
	ctx := context.Background()
	dir := o.Dir
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "chain")
	}
	db, err := ledgerdb.Open(ctx, dir, ledgerdb.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	wp, err := devnet.Genesis(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	c, err := devnet.Open(ctx, db, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if o.Accounts > 0 {
		if err := c.CommitAccounts(ctx, o.Accounts, 500, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.CommitUntil(ctx, last); err != nil {
		t.Fatal(err)
	}
	ch := &Chain{DB: db, Devnet: c, Waypoint: wp, Addr: Serve(t, db)}
	ch.Service = Client(t, ch.Addr, o.ReadTimeout)
	return ch
}

// Serve serves db's backup service on 127.0.0.1 until the test ends and returns its
// address.
func Serve(t testing.TB, db *ledgerdb.DB) string {
	t.Helper()
	srv, err := server.New(db, server.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ts.CloseClientConnections()
		ts.Close()
		srv.Wait()
	})
	return ts.Listener.Addr().String()
}

// Client returns a backup service client of addr (read timeout 5s unless given),
// closed when the test ends.
func Client(t testing.TB, addr string, readTimeout time.Duration) *backupservice.Client {
	t.Helper()
	if readTimeout <= 0 {
		readTimeout = 5 * time.Second
	}
	c, err := backupservice.New(addr, backupservice.ClientOptions{ReadTimeout: readTimeout})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

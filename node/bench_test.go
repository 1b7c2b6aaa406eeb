package node

import (
	"context"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/backupservice/server"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// BenchmarkCommitRate measures the node's commit rate (transactions/s, blocks of 100
// synthetic transactions) with the backup service idle, and while a client streams
// the whole state (BENCH_STATE_KEYS items, default 200000) over loopback in a loop.
//
//	go test -run '^$' -bench CommitRate -benchtime 2000x ./node
func BenchmarkCommitRate(b *testing.B) {
	ctx := context.Background()
	keys := uint64(200_000)
	if s := os.Getenv("BENCH_STATE_KEYS"); s != "" {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			keys = v
		}
	}
	db, err := ledgerdb.Open(ctx, b.TempDir(), ledgerdb.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	cfg := devnet.Config{Secret: []byte("bench"), BlockSize: 100, EpochLength: 1000}
	if _, err := devnet.Genesis(ctx, db, cfg); err != nil {
		b.Fatal(err)
	}
	chain, err := devnet.Open(ctx, db, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := chain.CommitAccounts(ctx, keys, 4096, 100); err != nil {
		b.Fatal(err)
	}
	svc, err := server.New(db, server.Options{})
	if err != nil {
		b.Fatal(err)
	}
	ts := httptest.NewServer(svc)
	defer func() { ts.Close(); svc.Wait() }()
	c, err := backupservice.New(ts.Listener.Addr().String(), backupservice.ClientOptions{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()

	commit := func(b *testing.B) {
		v0 := chain.NextVersion()
		for b.Loop() {
			if _, err := chain.CommitBlock(ctx); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(chain.NextVersion()-v0)/b.Elapsed().Seconds(), "txn/s")
	}
	b.Run("idle", commit)
	b.Run("while-streaming-state", func(b *testing.B) {
		sctx, stop := context.WithCancel(ctx)
		var wg sync.WaitGroup
		var streamed atomic.Uint64
		wg.Add(1)
		go func() {
			defer wg.Done()
			for sctx.Err() == nil {
				st, err := c.DBState(sctx)
				if err != nil {
					return
				}
				v := *st.CommittedVersion
				n, err := c.StateItemCount(sctx, v)
				if err != nil {
					return
				}
				ss, err := c.StateSnapshotChunk(sctx, v, 0, n)
				if err != nil {
					return
				}
				for ss.Next() {
					streamed.Add(1)
				}
				ss.Close()
			}
		}()
		commit(b)
		stop()
		wg.Wait()
		b.ReportMetric(float64(streamed.Load())/b.Elapsed().Seconds(), "streamed-records/s")
	})
}

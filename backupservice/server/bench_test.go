package server

import (
	"context"
	"testing"

	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/devnet"
)

// Streaming throughput on loopback, each with its baseline measured in the same run:
// the store's own iteration (ledgerdb.StateValues / Transactions) without HTTP.
//
//	go test -run '^$' -bench . -benchtime 3x ./backupservice/server
//
// BENCH_STATE_KEYS (default 200000) sizes the state.

func benchKeys() uint64 { return envUint("BENCH_STATE_KEYS", 200_000) }

func BenchmarkStateSnapshotStream(b *testing.B) {
	ctx := context.Background()
	keys := benchKeys()
	tc := newTestChain(b, devnet.Config{GenesisAccounts: 100, BlockSize: 100, EpochLength: 100_000}, 0)
	if err := tc.chain.CommitAccounts(ctx, keys, 4096, 100); err != nil {
		b.Fatal(err)
	}
	v := tc.chain.NextVersion() - 1
	n, err := tc.db.StateItemCount(ctx, v)
	if err != nil {
		b.Fatal(err)
	}
	var recBytes int64
	if err := tc.db.StateValues(ctx, v, 0, 0, func(_ uint64, k, val []byte) error {
		recBytes += int64(4 + 1 + len(k) + len(val))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d state items, %.1f bytes per framed record", n, float64(recBytes)/float64(n))
	report := func(b *testing.B) {
		b.SetBytes(recBytes)
		b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("baseline-StateValues", func(b *testing.B) {
		for b.Loop() {
			if err := tc.db.StateValues(ctx, v, 0, 0, func(uint64, []byte, []byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("service", func(b *testing.B) {
		_, _, c := serve(b, tc.db, backupservice.ClientOptions{})
		for b.Loop() {
			ss, err := c.StateSnapshotChunk(ctx, v, 0, n)
			if err != nil {
				b.Fatal(err)
			}
			var got uint64
			for ss.Next() {
				got++
			}
			if err := ss.Err(); err != nil || got != n {
				b.Fatalf("%d of %d items: %v", got, n, err)
			}
			ss.Close()
		}
		report(b)
	})
}

func BenchmarkTransactionsStream(b *testing.B) {
	ctx := context.Background()
	const versions = 20_000
	tc := newTestChain(b, devnet.Config{GenesisAccounts: 1000, BlockSize: 200, EpochLength: 5000}, versions)
	var recBytes int64
	if err := tc.db.Transactions(ctx, 0, versions, func(_ uint64, raw []byte) error {
		recBytes += int64(4 + len(raw))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	report := func(b *testing.B) {
		b.SetBytes(recBytes)
		b.ReportMetric(float64(versions)*float64(b.N)/b.Elapsed().Seconds(), "records/s")
	}
	b.Run("baseline-Transactions", func(b *testing.B) {
		for b.Loop() {
			if err := tc.db.Transactions(ctx, 0, versions, func(uint64, []byte) error { return nil }); err != nil {
				b.Fatal(err)
			}
		}
		report(b)
	})
	b.Run("service", func(b *testing.B) {
		_, _, c := serve(b, tc.db, backupservice.ClientOptions{})
		for b.Loop() {
			ts, err := c.Transactions(ctx, 0, versions)
			if err != nil {
				b.Fatal(err)
			}
			var got uint64
			for ts.Next() {
				got++
			}
			if err := ts.Err(); err != nil || got != versions {
				b.Fatalf("%d of %d transactions: %v", got, versions, err)
			}
			ts.Close()
		}
		report(b)
	})
}

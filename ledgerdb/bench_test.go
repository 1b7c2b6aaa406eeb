package ledgerdb_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// benchKeys is the state size of the benchmark store (LEDGERVAULT_BENCH_KEYS overrides).
func benchKeys() int {
	if s := os.Getenv("LEDGERVAULT_BENCH_KEYS"); s != "" {
		if n, err := strconv.Atoi(s); err == nil && n > 0 {
			return n
		}
	}
	return 1_000_000
}

// snapshotSource is a sorted state of n accounts with its tree, to restore from.
type snapshotSource struct {
	recs   []ledgerdb.StateRecord
	root   smt.RootRef
	nodes  *smt.Overlay
	mu     sync.Mutex
	proofs map[int]smt.RangeProof // by chunk end
}

// proof returns the range proof of the chunk ending before end (computed once, so
// that restore timings do not include it).
func (s *snapshotSource) proof(b testing.TB, end int) smt.RangeProof {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.proofs[end]; ok {
		return p
	}
	if s.nodes == nil {
		b.Fatalf("no range proof for a chunk ending at %d", end)
	}
	p, err := smt.ProveRange(context.Background(), s.nodes, s.root, smt.KeyHash(s.recs[end-1].Key))
	if err != nil {
		b.Fatal(err)
	}
	s.proofs[end] = p
	return p
}

var (
	sourceOnce sync.Once
	source     *snapshotSource
)

func benchSource(b testing.TB) *snapshotSource {
	sourceOnce.Do(func() {
		n := benchKeys()
		s := &snapshotSource{nodes: smt.NewOverlay(nil), proofs: map[int]smt.RangeProof{}}
		ups := make([]smt.Update, n)
		s.recs = make([]ledgerdb.StateRecord, n)
		for i := range s.recs {
			k := devnet.AccountKey(uint64(i))
			v := binary.BigEndian.AppendUint64(nil, uint64(i)*7)
			s.recs[i] = ledgerdb.StateRecord{Key: k, Value: v}
			ups[i] = smt.Update{KeyHash: smt.KeyHash(k), ValueHash: smt.ValueHash(v)}
		}
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		slices.SortFunc(order, func(a, b int) int { return bytes.Compare(ups[a].KeyHash[:], ups[b].KeyHash[:]) })
		// Lay the sorted records out in one buffer, as a restore gets them from a decoded
		// chunk.
		var size int
		for _, r := range s.recs {
			size += len(r.Key) + len(r.Value)
		}
		buf := make([]byte, 0, size)
		sorted := make([]ledgerdb.StateRecord, n)
		for i, j := range order {
			r := s.recs[j]
			buf = append(buf, r.Key...)
			buf = append(buf, r.Value...)
			k := buf[len(buf)-len(r.Key)-len(r.Value) : len(buf)-len(r.Value) : len(buf)-len(r.Value)]
			sorted[i] = ledgerdb.StateRecord{Key: k, Value: buf[len(buf)-len(r.Value) : len(buf) : len(buf)]}
		}
		s.recs = sorted
		root, writes, err := smt.Apply(context.Background(), s.nodes, smt.EmptyRoot(), 0, ups)
		if err != nil {
			b.Fatal(err)
		}
		s.nodes.Put(writes...)
		s.root = root
		for i := 0; i < len(s.recs); i += benchChunk {
			s.proof(b, min(i+benchChunk, len(s.recs)))
		}
		// The proofs are all that is needed from the tree: drop it, so that the garbage
		// collector does not scan it during the timings.
		s.nodes = nil
		runtime.GC()
		source = s
	})
	return source
}

const benchChunk = 100_000

// restoreState loads the source into a fresh store through the verifying restore path.
func restoreState(b testing.TB, db *ledgerdb.DB, src *snapshotSource) {
	ctx := context.Background()
	sr, err := db.StartStateRestore(ctx, 0, src.root.RootHash())
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < len(src.recs); i += benchChunk {
		end := min(i+benchChunk, len(src.recs))
		if err := sr.AddChunk(ctx, src.recs[i:end], src.proof(b, end)); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := sr.Finish(ctx); err != nil {
		b.Fatal(err)
	}
}

// bigStore returns a store holding the source state at version 0, seeded so that a
// devnet chain can commit on top of it.
func bigStore(b testing.TB) (*ledgerdb.DB, *devnet.Chain) {
	ctx := context.Background()
	src := benchSource(b)
	db := openDB(b, b.TempDir())
	restoreState(b, db, src)
	if err := db.SeedAccumulator(ctx, 1, []ledger.Hash{ledger.HashOf(ledger.DomainTransactionInfo, []byte("bench"))}); err != nil {
		b.Fatal(err)
	}
	cfg := devnet.Config{Secret: testSecret, EpochLength: 1 << 40, BlockSize: 1000, GenesisAccounts: len(src.recs)}
	// Genesis ledger info over the seeded state, starting epoch 1.
	pb, err := db.PrepareBlock(ctx, []ledgerdb.TxnInput{{Transaction: ledger.Transaction{Payload: []byte("genesis")}}})
	if err != nil {
		b.Fatal(err)
	}
	_, vs, err := devnet.Validators(testSecret, 1, 4)
	if err != nil {
		b.Fatal(err)
	}
	li := ledger.LedgerInfo{Epoch: 0, Version: pb.LastVersion(), AccumulatorRoot: pb.AccumulatorRoot(), NextValidatorSet: vs}
	if err := db.CommitBlock(ctx, pb, ledger.LedgerInfoWithSignatures{LedgerInfo: li}); err != nil {
		b.Fatal(err)
	}
	c, err := devnet.Open(ctx, db, cfg)
	if err != nil {
		b.Fatal(err)
	}
	// Settle the restore's compaction debt so that it does not run during the timing.
	if err := db.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	return db, c
}

// BenchmarkCommit measures block commits (1000 transactions of about 2 keys each) into
// a store of 1M keys: transactions/s and the state-tree update cost per key.
func BenchmarkCommit(b *testing.B) {
	db, c := bigStore(b)
	defer db.Close()
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	first := c.NextVersion()
	for i := 0; i < b.N; i++ {
		if _, err := c.CommitBlock(ctx); err != nil {
			b.Fatal(err)
		}
	}
	el := time.Since(start).Seconds()
	txns := float64(c.NextVersion() - first)
	b.ReportMetric(txns/el, "txn/s")
	b.ReportMetric(el*1e6/(txns*2), "µs/key")
}

// BenchmarkPrepareBlock isolates the state-tree and accumulator work of a block (no
// write): the sparse Merkle update cost per key against a Pebble-backed 1M-key tree.
func BenchmarkPrepareBlock(b *testing.B) {
	db, _ := bigStore(b)
	defer db.Close()
	ctx := context.Background()
	txns := make([]ledgerdb.TxnInput, 1000)
	for i := range txns {
		n := uint64(benchKeys())
		a, c := devnet.AccountKey(uint64(i*7919)%n), devnet.AccountKey((uint64(i*104729)+1)%n)
		ws := ledger.WriteSet{{Key: a, Value: []byte("x")}, {Key: c, Value: []byte("y")}}
		if bytes.Compare(a, c) > 0 {
			ws[0], ws[1] = ws[1], ws[0]
		}
		txns[i] = ledgerdb.TxnInput{Transaction: ledger.Transaction{Payload: []byte{byte(i)}}, WriteSet: ws}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := db.PrepareBlock(ctx, txns); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*2000), "µs/key")
}

// BenchmarkStateIteration iterates the whole state at a past version (the base, after
// blocks were committed on top), keys/s.
func BenchmarkStateIteration(b *testing.B) {
	db, c := bigStore(b)
	defer db.Close()
	ctx := context.Background()
	if err := c.CommitUntil(ctx, 20_000); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	var n, bytesRead int
	for i := 0; i < b.N; i++ {
		if err := db.StateValues(ctx, 0, 0, 0, func(_ uint64, k, v []byte) error {
			n++
			bytesRead += len(k) + len(v)
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "keys/s")
	b.ReportMetric(float64(bytesRead)/b.Elapsed().Seconds()/1e6, "MB/s")
}

// BenchmarkStateRangeProof measures generating the range proof of a chunk's last key at
// 1M keys.
func BenchmarkStateRangeProof(b *testing.B) {
	db, _ := bigStore(b)
	defer db.Close()
	src := benchSource(b)
	ctx := context.Background()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		k := smt.KeyHash(src.recs[(i*7919)%len(src.recs)].Key)
		if _, err := db.StateRangeProof(ctx, 0, k); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTransactionRangeProof measures an accumulator range proof of 1000
// transactions.
func BenchmarkTransactionRangeProof(b *testing.B) {
	db, c := bigStore(b)
	defer db.Close()
	ctx := context.Background()
	if err := c.CommitUntil(ctx, 50_000); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		first := uint64(1 + (i*997)%48_000)
		if _, err := db.TransactionRangeProof(ctx, first, first+999, 50_000); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStateLoad compares three ways to load the same sorted leaves
// (LEDGERVAULT_BENCH_KEYS, default 1M) into a fresh store: the verifying restore (range
// proofs checked per chunk, tree nodes built and ingested), building and ingesting
// SSTables of the values alone (the baseline a verified restore is held to: at least half
// its rate), and batch writes of the values alone. MB/s counts the records' keys and
// values. The verified restore also loads the baseline in every iteration, outside its
// timing, and reports its rate as a fraction of the baseline's (x-sst-ingest), so that
// the ratio compares two runs under the same machine load.
func BenchmarkStateLoad(b *testing.B) {
	src := benchSource(b)
	keys := float64(len(src.recs))
	var recBytes float64
	for _, r := range src.recs {
		recBytes += float64(len(r.Key) + len(r.Value))
	}
	report := func(b *testing.B, el time.Duration) {
		b.ReportMetric(keys*float64(b.N)/el.Seconds(), "keys/s")
		b.ReportMetric(recBytes*float64(b.N)/el.Seconds()/1e6, "MB/s")
	}
	b.Run("verified-restore", func(b *testing.B) {
		var restore, baseline, restoreCPU, baselineCPU time.Duration
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			c0 := cpuTime()
			baseline += sstIngest(b, src)
			c1 := cpuTime()
			baselineCPU += c1 - c0
			db := openDB(b, b.TempDir())
			b.StartTimer()
			start, c2 := time.Now(), cpuTime()
			restoreState(b, db, src)
			restore += time.Since(start)
			restoreCPU += cpuTime() - c2
			_ = db.Close()
		}
		report(b, restore)
		b.ReportMetric(baseline.Seconds()/restore.Seconds(), "x-sst-ingest")
		// Process CPU time per million keys, of the restore and of the baseline loaded in
		// the same iterations: a comparison that does not depend on the machine's load.
		b.ReportMetric(restoreCPU.Seconds()*1e6/(keys*float64(b.N)), "cpu-s/Mkey")
		b.ReportMetric(baselineCPU.Seconds()*1e6/(keys*float64(b.N)), "sst-cpu-s/Mkey")
	})
	b.Run("sst-ingest-unverified", func(b *testing.B) {
		var el time.Duration
		for i := 0; i < b.N; i++ {
			el += sstIngest(b, src)
		}
		report(b, el)
	})
	b.Run("batch-writes-unverified", func(b *testing.B) {
		start := time.Now()
		for i := 0; i < b.N; i++ {
			pdb, err := pebble.Open(b.TempDir(), &pebble.Options{Logger: quietLogger{}})
			if err != nil {
				b.Fatal(err)
			}
			for c := 0; c < len(src.recs); c += benchChunk {
				batch := pdb.NewBatch()
				for _, r := range src.recs[c:min(c+benchChunk, len(src.recs))] {
					kh := smt.KeyHash(r.Key)
					if err := batch.Set(append(kh[:], 0, 0, 0, 0, 0, 0, 0, 0), r.Value, nil); err != nil {
						b.Fatal(err)
					}
				}
				if err := batch.Commit(pebble.NoSync); err != nil {
					b.Fatal(err)
				}
				_ = batch.Close()
			}
			if err := pdb.Flush(); err != nil {
				b.Fatal(err)
			}
			_ = pdb.Close()
		}
		report(b, time.Since(start))
	})
}

// cpuTime returns the CPU time (user and system) the process has used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sstIngest loads the source's values, keyed by key hash, into a fresh Pebble store as
// one SSTable per chunk, without verification, and returns the time it took.
func sstIngest(b *testing.B, src *snapshotSource) time.Duration {
	dir := b.TempDir()
	opts := &pebble.Options{Logger: quietLogger{}}
	opts.EnsureDefaults()
	pdb, err := pebble.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer pdb.Close()
	start := time.Now()
	for c := 0; c < len(src.recs); c += benchChunk {
		path := filepath.Join(b.TempDir(), fmt.Sprintf("%d.sst", c))
		f, err := vfsCreate(path)
		if err != nil {
			b.Fatal(err)
		}
		w := sstable.NewWriter(objstorageprovider.NewFileWritable(f), opts.MakeWriterOptions(0, pdb.TableFormat()))
		for _, r := range src.recs[c:min(c+benchChunk, len(src.recs))] {
			kh := smt.KeyHash(r.Key)
			if err := w.Set(append(kh[:], 0, 0, 0, 0, 0, 0, 0, 0), r.Value); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		if err := pdb.Ingest(context.Background(), []string{path}); err != nil {
			b.Fatal(err)
		}
	}
	return time.Since(start)
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// BenchmarkTransactions measures reading committed transactions back as a transaction
// backup does (Transactions): 4 bulk transactions of 50000 accounts (100-byte values)
// and 20000 devnet transfers. Transaction records reference their write sets' values in
// the state value table, so reading puts them back; the baseline of the same run,
// x-records, is the scan of the stored records alone, which is what reading cost when
// the records held the values.
func BenchmarkTransactions(b *testing.B) {
	ctx := context.Background()
	db := openDB(b, b.TempDir())
	defer db.Close()
	cfg := devnet.Config{Secret: testSecret, EpochLength: 1 << 40, BlockSize: 100, GenesisAccounts: 100}
	if _, err := devnet.Genesis(ctx, db, cfg); err != nil {
		b.Fatal(err)
	}
	c, err := devnet.Open(ctx, db, cfg)
	if err != nil {
		b.Fatal(err)
	}
	if err := c.CommitAccounts(ctx, 200_000, 50_000, 100); err != nil {
		b.Fatal(err)
	}
	if err := c.CommitUntil(ctx, c.NextVersion()+20_000); err != nil {
		b.Fatal(err)
	}
	if err := db.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	n := c.NextVersion()
	b.ResetTimer()
	var el, base time.Duration
	var txnBytes, recBytes int
	for i := 0; i < b.N; i++ {
		start := time.Now()
		txnBytes = 0
		if err := db.Transactions(ctx, 0, n, func(_ uint64, raw []byte) error { txnBytes += len(raw); return nil }); err != nil {
			b.Fatal(err)
		}
		el += time.Since(start)
		start = time.Now()
		recBytes = 0
		if err := db.ScanTxnRecords(ctx, 0, n, func(_ uint64, rec []byte) error { recBytes += len(rec); return nil }); err != nil {
			b.Fatal(err)
		}
		base += time.Since(start)
	}
	b.ReportMetric(float64(n)*float64(b.N)/el.Seconds(), "txn/s")
	b.ReportMetric(float64(txnBytes)*float64(b.N)/el.Seconds()/1e6, "MB/s")
	b.ReportMetric(float64(n)*float64(b.N)/base.Seconds(), "x-records-txn/s")
	b.ReportMetric(float64(recBytes)/float64(txnBytes), "record/txn-bytes")
}

package restore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/objstorage/objstorageprovider"
	"github.com/cockroachdb/pebble/v2/sstable"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/internal/testchain"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/restore"
	"github.com/ledgervault/ledgervault/storage/local"
)

func envInt(name string, def uint64) uint64 {
	if s := os.Getenv(name); s != "" {
		if v, err := strconv.ParseUint(s, 10, 64); err == nil {
			return v
		}
	}
	return def
}

// benchWorld is a chain with a state snapshot and transaction backups for benchmarks.
type benchWorld struct {
	*world
	dir string
}

// newBenchWorld commits keys accounts (then txns ordinary transactions) and backs up
// every epoch ending, a state snapshot at the end of the accounts' epoch, and the
// transactions after it.
func newBenchWorld(b *testing.B, keys, txns uint64) *benchWorld {
	b.Helper()
	ctx := context.Background()
	dir := b.TempDir()
	cfg := devnet.Config{Secret: []byte("restore-bench"), EpochLength: 20000, BlockSize: 500, GenesisAccounts: 1000}
	c := testchain.New(b, cfg, 0, testchain.Options{Dir: filepath.Join(dir, "src"), ReadTimeout: time.Minute})
	db, wp, svc := c.DB, c.Waypoint, c.Service
	if err := c.Devnet.CommitAccounts(ctx, keys, 1000, 100); err != nil {
		b.Fatal(err)
	}
	snap := c.Devnet.NextVersion() - 1
	if err := c.Devnet.CommitUntil(ctx, snap+txns); err != nil {
		b.Fatal(err)
	}
	root := filepath.Join(dir, "backups")
	os.MkdirAll(root, 0o755)
	st, err := local.New(root)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	ds, err := svc.DBState(ctx)
	if err != nil {
		b.Fatal(err)
	}
	opts := backup.Options{MaxChunkSize: 16 << 20}
	if _, err := backup.EpochEnding(ctx, svc, st, 0, ds.Epoch, opts); err != nil {
		b.Fatal(err)
	}
	if _, err := backup.StateSnapshot(ctx, svc, st, snap, opts); err != nil {
		b.Fatal(err)
	}
	if txns > 0 {
		if _, err := backup.Transactions(ctx, svc, st, snap+1, txns, opts); err != nil {
			b.Fatal(err)
		}
	}
	// The source's background compactions would otherwise run during the measured
	// restores and take their CPU.
	if err := db.Compact(ctx); err != nil {
		b.Fatal(err)
	}
	return &benchWorld{world: &world{src: db, wp: wp, st: st, root: root, last: snap + txns, snapshot: snap, epochs: ds.Epoch}, dir: dir}
}

// startProfile writes a CPU profile of the restore alone (not the chain and backups
// the benchmark builds first) to LEDGERVAULT_BENCH_CPUPROFILE, if set, for run 0.
func startProfile(b *testing.B, run int) (stop func()) {
	path := os.Getenv("LEDGERVAULT_BENCH_CPUPROFILE")
	if path == "" || run != 0 {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Fatal(err)
		}
	}
}

// cpuTime returns the process's user and system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func maxRSSMiB() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return float64(ru.Maxrss) / 1024
}

// BenchmarkRestoreState restores a state snapshot of LEDGERVAULT_BENCH_KEYS keys
// (default 200000) with full verification, and in the same run builds SSTables of the
// same sorted pairs and ingests them into a fresh Pebble store without any
// verification: the ceiling a verified restore is compared with.
func BenchmarkRestoreState(b *testing.B) {
	keys := envInt("LEDGERVAULT_BENCH_KEYS", 200_000)
	w := newBenchWorld(b, keys, 0)
	ctx := context.Background()
	// The pairs, as the snapshot holds them (key-hash order).
	type pair struct{ k, v []byte }
	var pairs []pair
	var rawBytes int64
	if err := w.src.StateValues(ctx, w.snapshot, 0, 0, func(_ uint64, k, v []byte) error {
		pairs = append(pairs, pair{append([]byte(nil), k...), append([]byte(nil), v...)})
		rawBytes += int64(len(k) + len(v))
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	items := float64(len(pairs))
	b.ResetTimer()
	var verified, baseline time.Duration
	var rss float64
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "db")
		o := w.options(dir)
		o.Target = w.snapshot
		o.Concurrency = 4
		o.DB.CacheSize = int64(envInt("LEDGERVAULT_BENCH_CACHE_MIB", 0)) << 20
		var res *restore.Result
		if os.Getenv("LEDGERVAULT_BENCH_INPROCESS") != "" {
			if os.Getenv("LEDGERVAULT_BENCH_DEBUG") != "" {
				o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
			}
			stop := startProfile(b, i)
			var err error
			res, err = restore.Run(ctx, w.st, o)
			stop()
			if err != nil {
				b.Fatal(err)
			}
		} else {
			// In a child process: its peak RSS is the restore's alone.
			var r float64
			res, r = runRestoreChild(b, w.world, o)
			rss = max(rss, r)
		}
		verified += res.Elapsed

		t0 := time.Now()
		ingestBaseline(b, filepath.Join(b.TempDir(), "base"), len(pairs), func(i int) ([]byte, []byte) { return pairs[i].k, pairs[i].v })
		baseline += time.Since(t0)
	}
	b.StopTimer()
	n := float64(b.N)
	vs, bs := verified.Seconds()/n, baseline.Seconds()/n
	b.ReportMetric(items/vs, "items/s")
	b.ReportMetric(float64(rawBytes)/vs/1e6, "MB/s")
	b.ReportMetric(items/bs, "baseline-items/s")
	b.ReportMetric(float64(rawBytes)/bs/1e6, "baseline-MB/s")
	b.ReportMetric(bs/vs, "ratio")
	if rss > 0 {
		b.ReportMetric(rss, "restore-maxrss-MiB")
	}
}

// ingestBaseline writes n sorted pairs as state values (same key layout as the store)
// into SSTables of at most 64 MiB and ingests them, without verification.
func ingestBaseline(b *testing.B, dir string, n int, pair func(i int) (k, v []byte)) {
	opts := &pebble.Options{Logger: quietLogger{}, FormatMajorVersion: pebble.FormatNewest}
	opts.EnsureDefaults()
	pdb, err := pebble.Open(dir, opts)
	if err != nil {
		b.Fatal(err)
	}
	defer pdb.Close()
	tmp := filepath.Join(dir, "tmp")
	os.MkdirAll(tmp, 0o755)
	var paths []string
	var w *sstable.Writer
	var size int64
	var key, val []byte
	flush := func() {
		if w == nil {
			return
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		w = nil
	}
	for i := 0; i < n; i++ {
		if w == nil {
			var rnd [8]byte
			rand.Read(rnd[:])
			p := filepath.Join(tmp, hex.EncodeToString(rnd[:])+".sst")
			f, err := opts.FS.Create(p, "")
			if err != nil {
				b.Fatal(err)
			}
			w = sstable.NewWriter(objstorageprovider.NewFileWritable(f), opts.MakeWriterOptions(0, pdb.TableFormat()))
			paths = append(paths, p)
			size = 0
		}
		k, v := pair(i)
		kh := smt.KeyHash(k)
		key = append(append(append(key[:0], 0x05), kh[:]...), 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)
		val = append(append(append(val[:0], 0, byte(len(k))), k...), v...)
		if err := w.Set(key, val); err != nil {
			b.Fatal(err)
		}
		size += int64(len(key) + len(val))
		if size >= 64<<20 {
			flush()
		}
	}
	flush()
	if err := pdb.Ingest(context.Background(), paths); err != nil {
		b.Fatal(err)
	}
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(format)
}

// BenchmarkRestoreTransactions restores LEDGERVAULT_BENCH_TXNS transactions (default
// 20000) after a snapshot of LEDGERVAULT_BENCH_TXN_KEYS keys (default 10000), verifying
// every chunk. A larger snapshot makes the state tree deeper and its nodes miss the
// node cache, as after a restore of a large node.
func BenchmarkRestoreTransactions(b *testing.B) {
	txns := envInt("LEDGERVAULT_BENCH_TXNS", 20_000)
	w := newBenchWorld(b, envInt("LEDGERVAULT_BENCH_TXN_KEYS", 10_000), txns)
	ctx := context.Background()
	b.ResetTimer()
	var d, cpu time.Duration
	for i := 0; i < b.N; i++ {
		dir := filepath.Join(b.TempDir(), "db")
		o := w.options(dir)
		o.Target = w.last
		o.TxnBatch = int(envInt("LEDGERVAULT_BENCH_TXN_BATCH", restore.DefaultTxnBatch))
		o.Concurrency = 4
		if os.Getenv("LEDGERVAULT_BENCH_DEBUG") != "" {
			o.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
		}
		stop := startProfile(b, i)
		c0 := cpuTime()
		res, err := restore.Run(ctx, w.st, o)
		if err != nil {
			b.Fatal(err)
		}
		cpu += cpuTime() - c0
		stop()
		d += res.TxnDuration
	}
	b.ReportMetric(float64(txns)*float64(b.N)/d.Seconds(), "txn/s")
	// The whole restore's CPU (snapshot, fetch, verify, save) per 10k transactions.
	b.ReportMetric(cpu.Seconds()/(float64(txns)*float64(b.N)/1e4), "cpu-s/10k-txn")
	b.ReportMetric(maxRSSMiB(), "maxrss-MiB")
}

// BenchmarkVerify verifies every backup of a chain with LEDGERVAULT_BENCH_KEYS keys
// (default 200000) and LEDGERVAULT_BENCH_TXNS transactions (default 20000).
func BenchmarkVerify(b *testing.B) {
	w := newBenchWorld(b, envInt("LEDGERVAULT_BENCH_KEYS", 200_000), envInt("LEDGERVAULT_BENCH_TXNS", 20_000))
	ctx := context.Background()
	b.ResetTimer()
	var bytes int64
	var d time.Duration
	for i := 0; i < b.N; i++ {
		rep, err := restore.Verify(ctx, w.st, restore.VerifyOptions{Waypoints: []ledger.Waypoint{w.wp}, Concurrency: 4})
		if err != nil || !rep.OK {
			b.Fatalf("%v %+v", err, rep)
		}
		bytes += rep.Bytes
		d += rep.Elapsed
	}
	b.ReportMetric(float64(bytes)/d.Seconds()/1e6, "stored-MB/s")
}

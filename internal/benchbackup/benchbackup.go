// Package benchbackup measures backups end to end: it builds node stores with devnet,
// serves them with the real backup service on 127.0.0.1, runs each backup in a child
// process of the ledgervault binary (so that its peak RSS is its own), and prints a
// table with the baseline `tar -cf - DBDIR | zstd -1 -T0 > /dev/null` measured in the
// same run.
package benchbackup

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/ledgervault/ledgervault/backup"
	"github.com/ledgervault/ledgervault/backupservice"
	"github.com/ledgervault/ledgervault/backupservice/server"
	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// Config says what to measure.
type Config struct {
	// Binary is the ledgervault executable run for each backup.
	Binary string
	// Dir holds the node stores and backups (a temporary directory if empty).
	Dir string
	// Keys lists the state sizes to back up (state snapshot rows).
	Keys []uint64
	// ValueSize is the value size of the generated accounts (default 100).
	ValueSize int
	// Txns is the number of transactions to back up (0: no transaction row).
	Txns uint64
	// Concurrency is --concurrent-data-requests of the backups (0: the default).
	Concurrency int
	// Logger receives progress (default: discard).
	Logger *slog.Logger
}

// Row is one measured backup.
type Row struct {
	What        string
	Items       int64
	Elapsed     time.Duration
	RawBytes    int64
	StoredBytes int64
	PeakRSS     int64 // bytes
	Stats       backup.Summary
	// Baseline is the tar|zstd time of the node's store directory and its size.
	Baseline     time.Duration
	BaselineSize int64
	BaselineNote string
}

// Run measures every configured backup and prints the table to out.
func Run(ctx context.Context, cfg Config, out io.Writer) ([]Row, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ValueSize == 0 {
		cfg.ValueSize = 100
	}
	if cfg.Dir == "" {
		d, err := os.MkdirTemp("", "ledgervault-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		cfg.Dir = d
	}
	var rows []Row
	for _, n := range cfg.Keys {
		r, err := stateRow(ctx, cfg, n)
		if err != nil {
			return rows, fmt.Errorf("state snapshot of %d keys: %w", n, err)
		}
		rows = append(rows, r)
	}
	if cfg.Txns > 0 {
		r, err := txnRow(ctx, cfg)
		if err != nil {
			return rows, fmt.Errorf("transaction backup of %d: %w", cfg.Txns, err)
		}
		rows = append(rows, r)
	}
	return rows, Print(out, rows)
}

// store is a node store served by the backup service.
type store struct {
	dir  string
	db   *ledgerdb.DB
	addr string
	stop func()
}

func openStore(ctx context.Context, dir string, build func(c *devnet.Chain) error, cfg devnet.Config) (*store, error) {
	db, err := ledgerdb.Open(ctx, dir, ledgerdb.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := devnet.Genesis(ctx, db, cfg); err != nil {
		db.Close()
		return nil, err
	}
	c, err := devnet.Open(ctx, db, cfg)
	if err == nil {
		err = build(c)
	}
	if err != nil {
		db.Close()
		return nil, err
	}
	srv, err := server.New(db, server.Options{})
	if err != nil {
		db.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		db.Close()
		return nil, err
	}
	hs := &http.Server{Handler: srv}
	done := make(chan struct{})
	go func() { defer close(done); hs.Serve(ln) }()
	var once sync.Once
	return &store{dir: dir, db: db, addr: ln.Addr().String(), stop: func() {
		once.Do(func() {
			hs.Close()
			<-done
			srv.Wait()
			db.Close()
		})
	}}, nil
}

func stateRow(ctx context.Context, cfg Config, n uint64) (Row, error) {
	dir := filepath.Join(cfg.Dir, fmt.Sprintf("state-%d", n))
	cfg.Logger.Info("building store", "keys", n, "dir", dir)
	t0 := time.Now()
	st, err := openStore(ctx, filepath.Join(dir, "db"), func(c *devnet.Chain) error {
		return c.CommitAccounts(ctx, n, 1000, cfg.ValueSize)
	}, devnet.Config{Secret: []byte("bench"), EpochLength: 1_000_000, GenesisAccounts: 100})
	if err != nil {
		return Row{}, err
	}
	defer st.stop()
	cfg.Logger.Info("store built", "keys", n, "elapsed", time.Since(t0))
	svc, err := backupservice.New(st.addr, backupservice.ClientOptions{})
	if err != nil {
		return Row{}, err
	}
	ds, err := svc.DBState(ctx)
	svc.Close()
	if err != nil {
		return Row{}, err
	}
	v := *ds.CommittedVersion
	r, err := runBackup(ctx, cfg, dir, st.addr, fmt.Sprintf("state snapshot %dk keys", n/1000), "state-snapshot", "--version", fmt.Sprint(v))
	if err != nil {
		return r, err
	}
	st.stop() // a closed store: no compaction changes the directory under tar
	r.Baseline, r.BaselineSize, r.BaselineNote = baseline(ctx, filepath.Join(dir, "db"))
	return r, nil
}

func txnRow(ctx context.Context, cfg Config) (Row, error) {
	dir := filepath.Join(cfg.Dir, fmt.Sprintf("txns-%d", cfg.Txns))
	cfg.Logger.Info("building chain", "transactions", cfg.Txns)
	st, err := openStore(ctx, filepath.Join(dir, "db"), func(c *devnet.Chain) error {
		return c.CommitUntil(ctx, cfg.Txns)
	}, devnet.Config{Secret: []byte("bench"), EpochLength: 100_000, BlockSize: 1000, GenesisAccounts: 1000})
	if err != nil {
		return Row{}, err
	}
	defer st.stop()
	r, err := runBackup(ctx, cfg, dir, st.addr, fmt.Sprintf("transactions %dk", cfg.Txns/1000), "transaction", "--start-version", "0", "--num-transactions", fmt.Sprint(cfg.Txns))
	if err != nil {
		return r, err
	}
	st.stop() // a closed store: no compaction changes the directory under tar
	r.Baseline, r.BaselineSize, r.BaselineNote = baseline(ctx, filepath.Join(dir, "db"))
	return r, nil
}

// runBackup runs one backup in a child process and reads its counters and peak RSS.
func runBackup(ctx context.Context, cfg Config, dir, addr, what string, args ...string) (Row, error) {
	out := filepath.Join(dir, "backups")
	os.RemoveAll(out)
	statsFile := filepath.Join(dir, "stats.json")
	args = append([]string{"backup"}, args...)
	args = append(args, "--backup-service-address", addr, "--storage", "file://"+out, "--progress", "none", "--log-level", "warn", "--stats-file", statsFile)
	if cfg.Concurrency > 0 {
		args = append(args, "--concurrent-data-requests", fmt.Sprint(cfg.Concurrency))
	}
	cmd := exec.CommandContext(ctx, cfg.Binary, args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	cfg.Logger.Info("backing up", "what", what)
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return Row{}, err
	}
	// The child's own high-water mark (rusage's maxrss of a child can include the
	// parent's image from before the exec).
	var hwm int64
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	var err error
poll:
	for {
		if v := vmHWM(cmd.Process.Pid); v > hwm {
			hwm = v
		}
		select {
		case err = <-waited:
			break poll
		case <-time.After(20 * time.Millisecond):
		}
	}
	elapsed := time.Since(t0)
	if err != nil {
		return Row{}, fmt.Errorf("%s: %w: %s", what, err, stderr.String())
	}
	b, err := os.ReadFile(statsFile)
	if err != nil {
		return Row{}, err
	}
	var s backup.Summary
	if err := json.Unmarshal(b, &s); err != nil {
		return Row{}, fmt.Errorf("stats file: %w", err)
	}
	r := Row{What: what, Items: s.Items, Elapsed: elapsed, RawBytes: s.RawBytes, StoredBytes: s.StoredBytes, Stats: s}
	r.PeakRSS = hwm
	os.RemoveAll(out)
	return r, nil
}

// vmHWM reads a process's peak resident set size in bytes (0 if unknown).
func vmHWM(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			var kb int64
			fmt.Sscanf(strings.TrimSpace(rest), "%d", &kb)
			return kb << 10
		}
	}
	return 0
}

// baseline times tar -cf - DIR | zstd -1 -T0 > /dev/null.
func baseline(ctx context.Context, dir string) (time.Duration, int64, string) {
	if _, err := exec.LookPath("zstd"); err != nil {
		return 0, 0, "zstd not installed: baseline skipped"
	}
	var size int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if in, err := d.Info(); err == nil {
				size += in.Size()
			}
		}
		return nil
	})
	t0 := time.Now()
	cmd := exec.CommandContext(ctx, "bash", "-c", `set -o pipefail; tar -C "$1" -cf - . | zstd -1 -T0 > /dev/null`, "bash", dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		return 0, 0, fmt.Sprintf("baseline failed: %v %s", err, out)
	}
	return time.Since(t0), size, ""
}

// Print writes the table of rows.
func Print(out io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(out, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backup\titems\ttime\titems/s\traw MB/s\tstored MB/s\tpeak RSS MiB\ttar|zstd MB/s\traw/tar ratio\t")
	for _, r := range rows {
		secs := r.Elapsed.Seconds()
		base, ratio := "-", "-"
		if r.Baseline > 0 {
			bmbs := float64(r.BaselineSize) / r.Baseline.Seconds() / 1e6
			base = fmt.Sprintf("%.0f", bmbs)
			ratio = fmt.Sprintf("%.2f", float64(r.RawBytes)/secs/1e6/bmbs)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.2fs\t%.0f\t%.0f\t%.0f\t%.0f\t%s\t%s\t\n", r.What, r.Items, secs, float64(r.Items)/secs,
			float64(r.RawBytes)/secs/1e6, float64(r.StoredBytes)/secs/1e6, float64(r.PeakRSS)/(1<<20), base, ratio)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(out, "\nwhere the time goes (summed over workers, seconds; fetch = node scan+encode+transfer as seen by the client):")
	tw = tabwriter.NewWriter(out, 2, 8, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backup\twall\tfetch\tcompress\thash\twrite\tverify\t")
	for _, r := range rows {
		s := r.Stats
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t%.2f\t\n", r.What, r.Elapsed.Seconds(), s.Fetch.Seconds(), s.Compress.Seconds(), s.Hash.Seconds(), s.Write.Seconds(), s.Verify.Seconds())
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rows {
		if r.BaselineNote != "" {
			fmt.Fprintf(out, "%s: %s\n", r.What, r.BaselineNote)
		}
	}
	return nil
}

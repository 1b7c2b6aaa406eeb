package restore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"text/tabwriter"
	"time"

	"github.com/ledgervault/ledgervault/catalog"
	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/storage"
)

// VerifyOptions configures Verify.
type VerifyOptions struct {
	// Waypoints are the trusted waypoints (see Options.Waypoints).
	Waypoints []ledger.Waypoint
	// MetadataCacheDir, if set, keeps a local cache of the metadata files.
	MetadataCacheDir string
	// FromVersion and ToVersion, if ToVersion is not zero, restrict the state snapshot
	// and transaction backups checked to those that intersect [FromVersion, ToVersion].
	// The epoch chain is always checked whole.
	FromVersion, ToVersion uint64
	// Concurrency is the number of downloads in flight (default DefaultConcurrency).
	Concurrency int
	// Limits bound chunk decoding.
	Limits native.Limits
	// Logger receives progress messages (default: discard).
	Logger *slog.Logger
	// Progress, if set, receives progress increments.
	Progress Progress
}

// Row is the verdict on one backup (or one gap).
type Row struct {
	Type     string             `json:"type"`
	Range    string             `json:"range"`
	Manifest storage.FileHandle `json:"manifest,omitempty"`
	Files    int                `json:"files"`
	Bytes    int64              `json:"bytes"`
	OK       bool               `json:"ok"`
	Error    string             `json:"error,omitempty"`
}

// Report is the result of Verify: one row per backup, in order (epoch endings, state
// snapshots, transactions), then one per gap.
type Report struct {
	Rows    []Row         `json:"rows"`
	OK      bool          `json:"ok"`
	Files   int           `json:"files"`
	Bytes   int64         `json:"bytes"`
	Elapsed time.Duration `json:"elapsed_ns"`
}

// Failed returns the number of failing rows.
func (r *Report) Failed() int {
	n := 0
	for i := range r.Rows {
		if !r.Rows[i].OK {
			n++
		}
	}
	return n
}

// Verify runs every check of a restore over the backups in storage, without writing a
// database: the epoch chain from the waypoints, each state snapshot (chunk hashes, the
// tree rebuilt from the chunks with their range proofs, the root proof against a
// verified ledger info), each transaction backup (hashes, decoding, range proofs against
// verified ledger infos), and the continuity of epochs and versions. It continues after
// a failing backup to report them all; the error return is for failures that stop it
// (storage unreachable, malformed metadata, cancellation).
func Verify(ctx context.Context, st storage.Store, o VerifyOptions) (*Report, error) {
	start := time.Now()
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Concurrency > MaxConcurrency {
		return nil, fmt.Errorf("verify: %d concurrent downloads exceeds the limit of %d", o.Concurrency, MaxConcurrency)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	e := &env{st: st, lim: o.Limits.Normalize(), concurrency: o.Concurrency, progress: o.Progress, everyFile: true}
	inv, err := catalog.LoadCached(ctx, st, o.MetadataCacheDir)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	hb, err := newHistoryBuilder(e, o.Waypoints)
	if err != nil {
		return nil, fmt.Errorf("verify: %w", err)
	}
	inRange := func(b catalog.Backup) bool {
		return o.ToVersion == 0 || (b.Last >= o.FromVersion && b.First <= o.ToVersion)
	}
	var total int64
	for _, b := range inv.Backups {
		if b.Type == native.TypeEpochEnding || inRange(b) {
			total += b.Size
		}
	}
	e.phase("verify", total)
	rep := &Report{}
	fail := func(row *Row, err error) error {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		row.OK, row.Error = false, err.Error()
		log.Warn("backup failed verification", "type", row.Type, "range", row.Range, "manifest", row.Manifest, "error", err)
		return nil
	}
	add := func(row Row) {
		rep.Rows = append(rep.Rows, row)
		rep.Files += row.Files
		rep.Bytes += row.Bytes
	}

	// The epoch chain, backup by backup.
	ees := inv.EpochEndings()
	for _, b := range ees {
		row := Row{Type: b.Type, Range: fmt.Sprintf("epochs %d-%d", b.First, b.Last), Manifest: b.Manifest, OK: true}
		files, bytes := hb.res.files, hb.res.bytes
		jobs, _, err := hb.manifests(ctx, []catalog.Backup{b})
		if err == nil {
			err = hb.add(ctx, jobs)
		}
		row.Files, row.Bytes = hb.res.files-files+1, hb.res.bytes-bytes
		if err != nil {
			if err := fail(&row, err); err != nil {
				return nil, err
			}
		}
		add(row)
	}
	var hist *ledger.EpochHistory
	hr, herr := hb.finish(ees)
	if herr != nil {
		add(Row{Type: "epoch_history", Range: "waypoints", Error: herr.Error()})
		// The epoch-ending backups decoded, but their chain of trust failed: none of
		// them is verified, and no row may say ok.
		for i := range rep.Rows {
			if r := &rep.Rows[i]; len(ees) > 0 && r.Type == ees[0].Type && r.OK {
				r.OK, r.Error = false, "not verified: files intact, but the chain of trust failed (see epoch_history)"
			}
		}
	} else {
		hist = hr.hist
		log.Info("epoch history verified", "first_epoch", hist.FirstEpoch(), "latest_epoch", hist.LatestEpoch())
	}

	// checkAll adds a row for each backup of bs in range, checked against the history.
	checkAll := func(bs []catalog.Backup, rangeOf func(catalog.Backup) string, check func(context.Context, *env, catalog.Backup, *ledger.EpochHistory, *Row) error) error {
		for _, b := range bs {
			if !inRange(b) {
				continue
			}
			row := Row{Type: b.Type, Range: rangeOf(b), Manifest: b.Manifest, OK: true}
			if hist == nil {
				row.OK, row.Error = false, "not checked: no verified epoch history"
			} else if err := check(ctx, e, b, hist, &row); err != nil {
				if err := fail(&row, err); err != nil {
					return err
				}
			}
			add(row)
		}
		return nil
	}
	if err := checkAll(inv.Snapshots(), func(b catalog.Backup) string { return fmt.Sprintf("version %d", b.First) }, verifySnapshot); err != nil {
		return nil, err
	}
	if err := checkAll(inv.Transactions(), func(b catalog.Backup) string { return fmt.Sprintf("versions %d-%d", b.First, b.Last) }, verifyTransactions); err != nil {
		return nil, err
	}
	for _, row := range gapRows(inv, hist) {
		add(row)
	}
	rep.OK = rep.Failed() == 0
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// gapRows reports the gaps of inv: a row for each, failed unless it is an epoch gap
// before the verified history (not needed, left out) or a transaction gap that a
// state snapshot bridges.
func gapRows(inv *catalog.Inventory, hist *ledger.EpochHistory) []Row {
	var rows []Row
	snaps := inv.Snapshots()
	for i, g := range inv.Gaps {
		unit := "versions"
		if g.Type == native.TypeEpochEnding {
			unit = "epochs"
		}
		if g.Type == native.TypeEpochEnding && hist != nil && g.Last < hist.FirstEpoch() {
			continue // before the trusted waypoint: not needed
		}
		row := Row{Type: g.Type, Range: fmt.Sprintf("%s %d-%d", unit, g.First, g.Last)}
		if g.Type == native.TypeTransaction {
			// A state snapshot at or after the gap's last version, before the next gap,
			// bridges it: every version after it is restorable from that snapshot.
			next := uint64(1<<64 - 1)
			for _, h := range inv.Gaps[i+1:] {
				if h.Type == g.Type {
					next = h.First
					break
				}
			}
			for _, sn := range snaps {
				if sn.First >= g.Last && sn.First < next {
					row.OK = true
					row.Range += fmt.Sprintf(" (gap bridged by the state snapshot at version %d)", sn.First)
					break
				}
			}
		}
		if !row.OK {
			row.Error = fmt.Sprintf("gap: no backup covers %s %d-%d", unit, g.First, g.Last)
		}
		rows = append(rows, row)
	}
	return rows
}

func verifySnapshot(ctx context.Context, e *env, b catalog.Backup, hist *ledger.EpochHistory, row *Row) error {
	row.Files = 1
	s, err := loadSnapshot(ctx, e, b, hist)
	if err != nil {
		return err
	}
	row.Files++
	row.Bytes += s.bytes
	ver := smt.NewChunkVerifier(s.root)
	work := func(ctx context.Context, i int) (*stateChunk, error) {
		return fetchStateChunk(ctx, e, &s.m.Chunks[i])
	}
	sink := func(ctx context.Context, c *stateChunk) error {
		if _, err := ver.AddChunk(c.leaves, c.proof); err != nil {
			return fmt.Errorf("chunk %s with range proof %s (items %d-%d): %w", c.desc.Handle, c.desc.Proof.Handle, c.desc.FirstIndex, c.desc.LastIndex, err)
		}
		row.Files += 2
		row.Bytes += c.bytes
		return nil
	}
	if err := ordered(ctx, e, len(s.m.Chunks), work, sink); err != nil {
		return err
	}
	got, _, err := ver.Finish()
	if err != nil {
		return fmt.Errorf("manifest %s: %w", b.Manifest, err)
	}
	if got.RootHash() != s.root {
		return fmt.Errorf("manifest %s: chunks rebuild root %s, proven root %s", b.Manifest, got.RootHash(), s.root)
	}
	if got.LeafCount != s.m.ItemCount {
		return fmt.Errorf("manifest %s: chunks hold %d items, manifest says %d", b.Manifest, got.LeafCount, s.m.ItemCount)
	}
	return nil
}

func verifyTransactions(ctx context.Context, e *env, b catalog.Backup, hist *ledger.EpochHistory, row *Row) error {
	row.Files = 1
	ms, err := txnManifests(ctx, e, []catalog.Backup{b})
	if err != nil {
		return err
	}
	m := ms[0]
	work := func(ctx context.Context, i int) (*txnChunk, error) {
		return fetchTxnChunk(ctx, e, m.Chunks[i], hist)
	}
	sink := func(ctx context.Context, c *txnChunk) error {
		row.Files += 2
		row.Bytes += c.bytes
		return nil
	}
	return ordered(ctx, e, len(m.Chunks), work, sink)
}

// WriteTable prints the report as a table with a summary line.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 2, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "TYPE\tRANGE\tFILES\tCHUNK BYTES\tRESULT") // list's STORED also counts manifests and proofs
	for _, row := range r.Rows {
		res := "ok"
		if !row.OK {
			res = "FAILED: " + row.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", row.Type, row.Range, row.Files, row.Bytes, res)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	verdict := "all backups verified"
	if !r.OK {
		verdict = fmt.Sprintf("%d of %d rows FAILED", r.Failed(), len(r.Rows))
	}
	_, err := fmt.Fprintf(w, "%s: %d files, %d bytes of chunks in %s (%.1f MB/s)\n", verdict, r.Files, r.Bytes, r.Elapsed.Round(time.Millisecond),
		float64(r.Bytes)/max(r.Elapsed.Seconds(), 1e-9)/1e6)
	return err
}

// WriteJSON prints the report as one JSON object.
func (r *Report) WriteJSON(w io.Writer) error { return json.NewEncoder(w).Encode(r) }

// ErrVerifyFailed is returned by callers that turn a failing report into an error.
var ErrVerifyFailed = errors.New("verification failed")

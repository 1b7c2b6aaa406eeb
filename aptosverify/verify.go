// Package aptosverify verifies an Aptos-framework backup-cli store from a trusted
// waypoint, as ledgervault's restore verifies its own format: the signed epoch chain,
// each state snapshot's root proof and each transaction backup, chunk by chunk.
//
// It reads through package backupcli (any storage.Store: file:// with an operator's
// gzip layer, or the command adapter whose open_for_read removes it) and verifies with
// packages aptos and aptos/txn. It never writes.
//
// Each backup gets one Row whose Status says exactly what was established:
//
//   - verified: every file the manifest lists was read and checked;
//   - failed: something is false or does not decode (the error names the file);
//   - incomplete: files are missing (listed in Missing); what is present verified;
//   - not_checked: nothing was found false, but the backup was not checked
//     cryptographically (a Diem 1.x generation, no verified epoch history);
//   - skipped: an epoch-ending backup before the trusted waypoint, not needed.
//
// A row is never "verified" for what was not checked.
package aptosverify

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sort"
	"time"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/txn"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
)

// MaxProofSize bounds a proof file (state.proof, a chunk proof) read into memory.
const MaxProofSize = 16 << 20

// Options configure Verify.
type Options struct {
	// Trusted is the only thing trusted: the waypoint of an epoch-ending ledger info
	// (usually the chain's genesis waypoint).
	Trusted aptos.Waypoint
	// Concurrency bounds the signatures verified at once and the goroutines decoding and
	// hashing transaction records (default GOMAXPROCS).
	Concurrency int
	// Logger receives progress messages (default: discard).
	Logger *slog.Logger
}

// Verify verifies every backup of the backup-cli store src from o.Trusted and returns
// one row per backup (undecodable metadata files first, then epoch endings, state
// snapshots, transactions, then gaps). It continues past a failing backup to report
// them all; the error return is for what stops it: a storage failure while loading the
// metadata and manifests, cancellation.
func Verify(ctx context.Context, src backupcli.Source, o Options) (*Report, error) {
	start := time.Now()
	if o.Concurrency <= 0 {
		o.Concurrency = runtime.GOMAXPROCS(0)
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	view, err := backupcli.Load(ctx, src, backupcli.LoadOptions{})
	if err != nil {
		return nil, fmt.Errorf("verify: load metadata: %w", err)
	}
	v := &verifier{src: src, o: o, log: log, view: view, rep: &Report{Format: string(backupcli.FormatBackupCLI), Trusted: o.Trusted.String()},
		manifests: map[storage.FileHandle]*backupcli.ManifestFile{}}
	for i := range view.Manifests {
		v.manifests[view.Manifests[i].Handle] = &view.Manifests[i]
	}
	for _, f := range view.Files {
		if f.Err != nil { // what it describes is unknown: the store is not verified
			v.add(Row{Type: "metadata", Range: string(f.Handle), Status: StatusFailed, Error: fmt.Sprintf("metadata file %s does not decode: %v", f.Handle, f.Err)})
		}
	}
	hist, err := v.epochChain(ctx)
	if err != nil {
		return nil, err
	}
	for _, b := range v.backups(backupcli.TypeStateSnapshot) {
		if err := v.stateSnapshot(ctx, b, hist); err != nil {
			return nil, err
		}
	}
	txnStart := time.Now()
	for _, b := range v.backups(backupcli.TypeTransaction) {
		if err := v.transactions(ctx, b, hist); err != nil {
			return nil, err
		}
	}
	v.rep.TransactionsElapsed = time.Since(txnStart)
	for _, g := range view.Gaps {
		unit := "versions"
		if v.beforeTrust(g) {
			continue // before the trusted waypoint: not needed
		}
		if g.Type == backupcli.TypeEpochEnding {
			unit = "epochs"
		}
		v.add(Row{Type: g.Type, Range: fmt.Sprintf("%s %d-%d", unit, g.First, g.Last), Status: StatusIncomplete,
			Error: fmt.Sprintf("gap: no backup covers %s %d-%d", unit, g.First, g.Last)})
	}
	v.rep.finish(time.Since(start))
	return v.rep, nil
}

type verifier struct {
	src       backupcli.Source
	o         Options
	log       *slog.Logger
	view      *backupcli.View
	manifests map[storage.FileHandle]*backupcli.ManifestFile
	rep       *Report
}

// beforeTrust reports whether a gap lies wholly before the trusted waypoint.
func (v *verifier) beforeTrust(g backupcli.Gap) bool {
	if g.Type != backupcli.TypeEpochEnding {
		return g.Last < v.o.Trusted.Version
	}
	for _, b := range v.view.Backups {
		if b.Type == g.Type && b.First == g.Last+1 {
			return b.FirstVersion <= v.o.Trusted.Version
		}
	}
	return false
}

func (v *verifier) add(r Row) {
	r.OK = r.Status == StatusVerified || r.Status == StatusSkipped
	v.rep.Rows = append(v.rep.Rows, r)
}

// backups returns the distinct backups of a type, in range order.
func (v *verifier) backups(typ string) []backupcli.Backup {
	var out []backupcli.Backup
	for _, b := range v.view.Backups {
		if b.Type == typ {
			out = append(out, b)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].First < out[j].First })
	return out
}

// manifest returns b's decoded manifest, or a row verdict when it cannot be read.
func (v *verifier) manifest(b backupcli.Backup, row *Row) *backupcli.Manifest {
	mf := v.manifests[b.Manifest]
	switch {
	case mf == nil:
		row.Status, row.Error = StatusFailed, fmt.Sprintf("manifest %s was not loaded", b.Manifest)
	case mf.Err != nil && errors.Is(mf.Err, storage.ErrNotFound):
		row.Status, row.Error = StatusIncomplete, fmt.Sprintf("manifest %s is missing", b.Manifest)
		row.Missing = append(row.Missing, b.Manifest)
	case mf.Err != nil:
		row.Status, row.Error = StatusFailed, fmt.Sprintf("manifest %s: %v", b.Manifest, mf.Err)
	case mf.Manifest.Type != b.Type:
		row.Status, row.Error = StatusFailed, fmt.Sprintf("manifest %s is a %s manifest, metadata says %s", b.Manifest, mf.Manifest.Type, b.Type)
	default:
		if err := mf.Manifest.Verify(); err != nil {
			row.Status, row.Error = StatusFailed, fmt.Sprintf("manifest %s: %v", b.Manifest, err)
			return nil
		}
		if err := mf.Manifest.CheckAgainst(&b); err != nil {
			row.Status, row.Error = StatusFailed, fmt.Sprintf("manifest %s: %v", b.Manifest, err)
			return nil
		}
		row.Files++
		row.Bytes += mf.Size
		return mf.Manifest
	}
	return nil
}

// open opens a file through the gzip layer; the caller closes the returned closer.
func (v *verifier) open(ctx context.Context, h storage.FileHandle) (io.Reader, io.Closer, *countingReader, error) {
	rc, err := v.src.Open(ctx, h)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("open %s: %w", h, err)
	}
	cr := &countingReader{r: rc}
	r, _, err := backupcli.Decompress(cr, 0)
	if err != nil {
		rc.Close()
		return nil, nil, nil, fmt.Errorf("read %s: %w", h, err)
	}
	return r, rc, cr, nil
}

// readSmall reads a whole proof file through the gzip layer.
func (v *verifier) readSmall(ctx context.Context, h storage.FileHandle, row *Row) ([]byte, error) {
	b, _, err := backupcli.ReadFile(ctx, v.src, h, MaxProofSize)
	if err != nil {
		return nil, err
	}
	row.Files++
	row.Bytes += int64(len(b))
	return b, nil
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// missing records h in row.Missing when err says the file is absent.
func missing(row *Row, h storage.FileHandle, err error) bool {
	if errors.Is(err, storage.ErrNotFound) {
		row.Missing = append(row.Missing, h)
		return true
	}
	return false
}

// ledgerInfoVerifier adapts an epoch history to aptos/txn.
func ledgerInfoVerifier(h *aptos.EpochHistory) txn.LedgerInfoVerifier {
	return txn.LedgerInfoVerifierFunc(func(_ context.Context, li *aptos.LedgerInfoWithSignatures) error {
		return h.VerifyLedgerInfo(li)
	})
}

// recordsOf streams an epoch-ending chunk's records, each at most one ledger info.
func recordsOf(r io.Reader) *backupcli.Records {
	return backupcli.NewRecords(r, backupcli.RecordLimits{MaxRecordSize: aptos.MaxLedgerInfoBytes})
}

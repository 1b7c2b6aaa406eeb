package aptosverify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/format/backupcli"
	"github.com/ledgervault/ledgervault/storage"
)

// epochRow is an epoch-ending backup's row while the chain is walked.
type epochRow struct {
	b       backupcli.Backup
	row     Row
	endings int
	trusted bool // holds the trusted ending, which carries no signature to check
	chunks  []storage.FileHandle
}

// endingSource streams the endings of the epoch-ending backups to
// aptos.VerifyEpochChain, one chunk in memory at a time. A backup it cannot read
// (missing or undecodable file) ends the stream there with the row's verdict set, so
// the chain verified so far still yields a history for the other backups.
type endingSource struct {
	v       *verifier
	rows    []*epochRow
	bi, ci  int
	m       *backupcli.EpochEndingManifest
	recs    *backupcli.Records
	closer  io.Closer
	counter *countingReader
	chunk   backupcli.EpochEndingChunk
	idx     int
	started bool
	next    uint64 // the epoch expected next, once started
	stopped bool
	pf      *prefetcher
}

func (s *endingSource) close() {
	if s.closer != nil {
		s.closer.Close()
		s.closer = nil
	}
	s.recs = nil
}

func (s *endingSource) stop(r *epochRow, st Status, format string, args ...any) (aptos.Ending, error) {
	s.close()
	if st != "" {
		r.row.Status, r.row.Error = st, fmt.Sprintf(format, args...)
	}
	s.stopped = true
	return aptos.Ending{}, io.EOF
}

// Next implements aptos.EndingSource.
func (s *endingSource) Next(ctx context.Context) (aptos.Ending, error) {
	trusted := s.v.o.Trusted
	for {
		if s.stopped || s.bi >= len(s.rows) {
			return aptos.Ending{}, io.EOF
		}
		if err := ctx.Err(); err != nil {
			return aptos.Ending{}, err
		}
		r := s.rows[s.bi]
		if s.m == nil {
			if r.b.LastVersion < trusted.Version {
				r.row.Status, r.row.Detail = StatusSkipped, "precedes the trusted waypoint: not needed, not checked"
				s.bi++
				continue
			}
			if s.started && r.b.First < s.next {
				r.row.Status, r.row.Error = StatusNotChecked, fmt.Sprintf("overlaps epochs already verified (the chain continues at epoch %d): not checked", s.next)
				s.bi++
				continue
			}
			m := s.v.manifest(r.b, &r.row)
			if m == nil {
				return s.stop(r, "", "")
			}
			s.m, s.ci = m.EpochEnding, 0
		}
		if s.recs == nil {
			if s.ci >= len(s.m.Chunks) {
				s.m = nil
				s.bi++
				continue
			}
			s.chunk = s.m.Chunks[s.ci]
			h := s.chunk.LedgerInfos
			r.chunks = append(r.chunks, h)
			recs, closer, cr, err := s.openChunk(ctx, h)
			if err != nil {
				if ctx.Err() != nil {
					return aptos.Ending{}, ctx.Err()
				}
				if missing(&r.row, h, err) {
					return s.stop(r, StatusIncomplete, "%s is missing: the epoch chain cannot continue past epoch %d", h, s.chunk.FirstEpoch-1)
				}
				return s.stop(r, StatusFailed, "%v", err)
			}
			s.recs, s.closer, s.counter, s.idx = recs, closer, cr, 0
		}
		if !s.recs.Next() {
			h := s.chunk.LedgerInfos
			if err := s.recs.Err(); err != nil {
				return s.stop(r, StatusFailed, "read %s: %v", h, err)
			}
			if want := int(s.chunk.LastEpoch - s.chunk.FirstEpoch + 1); s.idx != want {
				return s.stop(r, StatusFailed, "%s holds %d ledger infos, its manifest lists epochs %d-%d", h, s.idx, s.chunk.FirstEpoch, s.chunk.LastEpoch)
			}
			r.row.Files++
			r.row.Bytes += s.counter.n
			s.close()
			s.ci++
			continue
		}
		epoch := s.chunk.FirstEpoch + uint64(s.idx)
		if epoch > s.chunk.LastEpoch {
			return s.stop(r, StatusFailed, "%s holds more ledger infos than its manifest's epochs %d-%d", s.chunk.LedgerInfos, s.chunk.FirstEpoch, s.chunk.LastEpoch)
		}
		rec := bytes.Clone(s.recs.Record())
		idx := s.idx
		s.idx++
		if !s.started {
			// Endings before the trusted one are not needed; the chain starts at it.
			if li, err := aptos.DecodeLedgerInfoWithSignatures(rec); err == nil && li.LedgerInfo.Version() < trusted.Version {
				continue
			}
			s.started = true
			r.trusted = true
		}
		s.next = epoch + 1
		wp := s.m.Waypoints[epoch-s.m.FirstEpoch]
		mw := aptos.Waypoint{Version: wp.Version, Value: aptos.HashValue(wp.Hash)}
		r.endings++
		return aptos.Ending{Source: fmt.Sprintf("%s record %d", s.chunk.LedgerInfos, idx), Record: rec, ManifestWaypoint: &mw}, nil
	}
}

// epochChain verifies the epoch chain and adds one row per epoch-ending backup. It
// returns the verified history, or nil when there is none (every later check is then
// "not checked").
func (v *verifier) epochChain(ctx context.Context) (*aptos.EpochHistory, error) {
	var rows []*epochRow
	for _, b := range v.backups(backupcli.TypeEpochEnding) {
		rows = append(rows, &epochRow{b: b, row: Row{Type: b.Type, Range: fmt.Sprintf("epochs %d-%d", b.First, b.Last), Manifest: b.Manifest}})
	}
	var plan []storage.FileHandle
	for _, r := range rows {
		if mf := v.manifests[r.b.Manifest]; mf != nil && mf.Manifest != nil && mf.Manifest.EpochEnding != nil && r.b.LastVersion >= v.o.Trusted.Version {
			for _, c := range mf.Manifest.EpochEnding.Chunks {
				plan = append(plan, c.LedgerInfos)
			}
		}
	}
	src := &endingSource{v: v, rows: rows, pf: newPrefetcher(ctx, v, plan)}
	hist, stats, err := aptos.VerifyEpochChain(ctx, v.o.Trusted, src, aptos.ChainOptions{Concurrency: v.o.Concurrency})
	src.close()
	src.pf.close()
	if ctx.Err() != nil {
		return nil, fmt.Errorf("verify epoch chain: %w", ctx.Err())
	}
	v.rep.ChainElapsed = stats.Elapsed
	switch {
	case err != nil && errors.Is(err, aptos.ErrGenerationNotChecked):
		v.rep.Generation = aptos.GenerationDiem1.String()
		for _, r := range rows {
			if r.row.Status == "" || r.row.Status == StatusVerified {
				r.row.Status = StatusNotChecked
				r.row.Error = "Diem 1.x generation (Ed25519 signatures, LIBRA:: salts): decoded but not checked cryptographically by verify"
			}
		}
	case err != nil:
		broken := -1
		msg := err.Error()
		for i, r := range rows {
			for _, h := range r.chunks {
				if strings.Contains(msg, string(h)+" record") {
					broken = i
				}
			}
			if broken >= 0 {
				break
			}
		}
		if broken < 0 {
			v.add(Row{Type: "epoch_history", Range: "from waypoint " + v.o.Trusted.String(), Status: StatusFailed, Error: msg})
		}
		for i, r := range rows {
			switch {
			case r.row.Status != "":
			case i < broken:
				r.row.Status, r.row.Detail = StatusNotChecked, "its endings passed, but the chain breaks later: no verified history"
			case i == broken:
				r.row.Status, r.row.Error = StatusFailed, msg
			default:
				r.row.Status, r.row.Error = StatusNotChecked, "not checked: the epoch chain is broken before it"
			}
		}
	default:
		v.rep.Generation = aptos.GenerationAptos.String()
		v.rep.Domain = hist.Domain().Prefix()
		v.rep.EpochEndings, v.rep.Signatures, v.rep.SignerKeys = stats.Endings, stats.Signatures, stats.SignerKeys
		stoppedAt := -1
		for i, r := range rows {
			if (r.row.Status == StatusFailed || r.row.Status == StatusIncomplete) && stoppedAt < 0 {
				stoppedAt = i
			}
		}
		for i, r := range rows {
			switch {
			case r.row.Status != "":
			case stoppedAt >= 0 && i > stoppedAt:
				r.row.Status, r.row.Error = StatusNotChecked, fmt.Sprintf("not checked: the epoch chain stops at epoch %d, before this backup", hist.LastEpoch())
			default:
				sigs := r.endings
				if r.trusted {
					sigs--
				}
				r.row.Status = StatusVerified
				r.row.Detail = fmt.Sprintf("%d endings, %d quorum signatures verified", r.endings, sigs)
				if r.trusted {
					r.row.Detail += fmt.Sprintf("; epoch %d matches the trusted waypoint", hist.FirstEpoch())
				}
			}
		}
	}
	for _, r := range rows {
		v.add(r.row)
	}
	if err != nil {
		return nil, nil
	}
	v.log.Info("epoch chain verified", "first_epoch", hist.FirstEpoch(), "last_epoch", hist.LastEpoch(), "signatures", stats.Signatures)
	return hist, nil
}

package aptosverify

import (
	"context"
	"fmt"
	"strings"

	"github.com/ledgervault/ledgervault/aptos"
	"github.com/ledgervault/ledgervault/aptos/txn"
	"github.com/ledgervault/ledgervault/format/backupcli"
)

// transactions verifies a transaction backup chunk by chunk and adds its row: each
// chunk's proof ledger info against the history, every record decoded strictly and
// hashed against its info, the infos proven by the range proof (txn.VerifyChunk,
// streaming). A missing chunk is listed in the row; its proof, when present, is still
// decoded and its ledger info verified, and the other chunks are verified.
func (v *verifier) transactions(ctx context.Context, b backupcli.Backup, hist *aptos.EpochHistory) error {
	row := Row{Type: b.Type, Range: fmt.Sprintf("versions %d-%d", b.First, b.Last), Manifest: b.Manifest}
	defer func() { v.add(row) }()
	m := v.manifest(b, &row)
	if m == nil {
		return nil
	}
	if hist == nil {
		row.Status, row.Error = StatusNotChecked, "no verified epoch history"
		return nil
	}
	opts := txn.Options{Domain: hist.Domain(), LedgerInfo: ledgerInfoVerifier(hist), Workers: v.o.Concurrency}
	var verified uint64
	var notes []string
	for _, c := range m.Transaction.Chunks {
		if c.Format != "" && c.Format != "V0" {
			row.Status, row.Error = StatusNotChecked, fmt.Sprintf("%s: chunk format %s is not decoded by this version", c.Transactions, c.Format)
			return nil
		}
		proof, err := v.readSmall(ctx, c.Proof, &row)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if missing(&row, c.Proof, err) {
				notes = append(notes, fmt.Sprintf("versions %d-%d not checked: proof %s missing", c.FirstVersion, c.LastVersion, c.Proof))
				continue
			}
			row.Status, row.Error = StatusFailed, err.Error()
			return nil
		}
		rd, closer, cr, err := v.open(ctx, c.Transactions)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			if !missing(&row, c.Transactions, err) {
				row.Status, row.Error = StatusFailed, err.Error()
				return nil
			}
			// The records are absent: what the proof alone proves is still checked.
			p, err := txn.DecodeChunkProof(proof)
			if err == nil {
				err = hist.VerifyLedgerInfo(&p.LedgerInfo)
			}
			if err != nil {
				row.Status, row.Error = StatusFailed, fmt.Sprintf("proof %s: %v", c.Proof, err)
				return nil
			}
			notes = append(notes, fmt.Sprintf("versions %d-%d not checked: chunk %s missing (its proof's ledger info verified)", c.FirstVersion, c.LastVersion, c.Transactions))
			continue
		}
		st, err := txn.VerifyChunk(ctx, txn.Chunk{Name: string(c.Transactions), ProofName: string(c.Proof), FirstVersion: c.FirstVersion, LastVersion: c.LastVersion},
			rd, proof, opts)
		closer.Close()
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			row.Status, row.Error = StatusFailed, err.Error()
			return nil
		}
		row.Files++
		row.Bytes += cr.n
		verified += st.Transactions
	}
	v.rep.Transactions += verified
	row.Detail = fmt.Sprintf("%d transactions verified", verified)
	if len(row.Missing) > 0 {
		row.Status, row.Error = StatusIncomplete, strings.Join(notes, "; ")
		if verified > 0 {
			row.Error += fmt.Sprintf("; the other %d transactions verified", verified)
		}
		return nil
	}
	row.Status = StatusVerified
	return nil
}

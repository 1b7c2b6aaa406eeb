package devnet

import (
	"cmp"
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// maxBulkWritesPerBlock bounds the state writes of one bulk block, and so the memory
// of preparing it.
const maxBulkWritesPerBlock = 1 << 16

// CommitAccounts grows the state quickly: it commits blocks of transactions that each
// create up to perTxn new accounts (with random values of valueSize bytes, at least
// 8), until n accounts have been created. Blocks respect epoch boundaries and are
// signed like any other. It is meant for building large test and benchmark states
// (a million keys takes a few hundred versions instead of millions).
//
// The new accounts go to the transactions in the order of their key hashes, as a
// genesis loader writes a large state: each transaction's accounts fill the next part
// of the tree, so a version rewrites only the path along that part's left edge besides
// its own nodes. Handed out in number order instead, every version would rewrite most of
// the tree's upper levels, and an archive store would keep all those superseded nodes (at
// 2M accounts in 31 versions, about 900 MB of the node's 1.68 GB). Ordering costs one
// SHA-256 and 16 bytes per account, for the duration of the call.
func (c *Chain) CommitAccounts(ctx context.Context, n uint64, perTxn, valueSize int) error {
	perTxn = max(1, min(perTxn, ledger.MaxWriteOps))
	valueSize = max(8, valueSize)
	order := keyHashOrder(c.nextAccount, n)
	c.nextAccount += n
	for len(order) > 0 {
		if err := ctx.Err(); err != nil {
			return err
		}
		epochEnd := c.epoch * c.cfg.EpochLength
		txnsPerBlock := uint64(max(1, min(c.cfg.BlockSize, maxBulkWritesPerBlock/perTxn)))
		last := min(c.next+txnsPerBlock-1, epochEnd)
		txns := make([]ledgerdb.TxnInput, 0, last-c.next+1)
		for v := c.next; v <= last && len(order) > 0; v++ {
			accounts := order[:min(len(order), perTxn)]
			order = order[len(accounts):]
			// Account keys are fixed-width hex, so number order is key order: the write
			// set is sorted.
			slices.SortFunc(accounts, func(x, y hashedAccount) int { return cmp.Compare(x.number, y.number) })
			ws := make(ledger.WriteSet, len(accounts))
			for i, a := range accounts {
				val := make([]byte, valueSize)
				for j := 0; j < valueSize; j += 8 {
					x := c.rng.Uint64()
					for b := 0; b < 8 && j+b < valueSize; b++ {
						val[j+b] = byte(x >> (8 * b))
					}
				}
				ws[i] = ledger.WriteOp{Key: AccountKey(a.number), Value: val}
			}
			txns = append(txns, ledgerdb.TxnInput{
				Transaction: ledger.Transaction{Payload: fmt.Appendf(nil, "create-accounts v=%d n=%d", v, len(ws))},
				WriteSet:    ws,
				Events:      []ledger.Event{{Type: "create-accounts", Key: ws[0].Key, Data: fmt.Appendf(nil, "%d", len(ws))}},
			})
		}
		if _, err := c.commitTxns(ctx, txns); err != nil {
			return err
		}
	}
	return nil
}

// hashedAccount is an account number and the first 8 bytes of its key hash.
type hashedAccount struct{ hash, number uint64 }

// keyHashOrder returns the account numbers start to start+n-1 in the order of their
// key hashes (by the first 8 bytes; accounts that tie there keep number order).
func keyHashOrder(start, n uint64) []hashedAccount {
	as := make([]hashedAccount, n)
	for i := range as {
		a := start + uint64(i)
		h := smt.KeyHash(AccountKey(a))
		as[i] = hashedAccount{binary.BigEndian.Uint64(h[:8]), a}
	}
	slices.SortFunc(as, func(x, y hashedAccount) int {
		return cmp.Or(cmp.Compare(x.hash, y.hash), cmp.Compare(x.number, y.number))
	})
	return as
}

// commitTxns prepares, signs and commits a block of the given transactions (which
// must not cross the current epoch's end).
func (c *Chain) commitTxns(ctx context.Context, txns []ledgerdb.TxnInput) (ledger.LedgerInfoWithSignatures, error) {
	epochEnd := c.epoch * c.cfg.EpochLength
	pb, err := c.db.PrepareBlock(ctx, txns)
	if err != nil {
		return ledger.LedgerInfoWithSignatures{}, err
	}
	if pb.LastVersion() > epochEnd {
		return ledger.LedgerInfoWithSignatures{}, fmt.Errorf("devnet: block [%d, %d] crosses the end of epoch %d at %d", pb.FirstVersion(), pb.LastVersion(), c.epoch, epochEnd)
	}
	li := ledger.LedgerInfo{
		Epoch:           c.epoch,
		Version:         pb.LastVersion(),
		AccumulatorRoot: pb.AccumulatorRoot(),
		TimestampUsec:   uint64(c.cfg.Clock().UnixMicro()),
	}
	var nextSigners []*ledger.ValidatorSigner
	if pb.LastVersion() == epochEnd {
		s, vs, err := Validators(c.cfg.Secret, c.epoch+1, c.cfg.Validators)
		if err != nil {
			return ledger.LedgerInfoWithSignatures{}, err
		}
		li.NextValidatorSet = vs
		nextSigners = s
	}
	// A quorum: all validators but one sign (more than 2/3 of 4).
	quorum := len(c.signers)*2/3 + 1
	liws := ledger.SignLedgerInfo(li, c.signers[:quorum]...)
	if err := c.db.CommitBlock(ctx, pb, liws); err != nil {
		return ledger.LedgerInfoWithSignatures{}, err
	}
	c.next = pb.LastVersion() + 1
	if nextSigners != nil {
		c.signers = nextSigners
		c.epoch++
	}
	return liws, nil
}

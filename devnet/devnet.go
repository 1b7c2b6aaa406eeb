// Package devnet drives a development ledger: deterministic validator sets per epoch, a
// synthetic workload (transfers between accounts, new accounts, deletions, occasional
// large values) and a chain that commits it block by block to a ledgerdb, signing each
// block's ledger info with a quorum and rotating the validator set every epoch.
package devnet

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

// seedReader is a deterministic byte stream derived from a seed.
type seedReader struct {
	seed []byte
	n    uint64
	buf  []byte
}

func (r *seedReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], r.n)
		r.n++
		s := sha256.Sum256(append(append([]byte{}, r.seed...), c[:]...))
		r.buf = append(r.buf, s[:]...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// Validators returns the deterministic validators of an epoch (n signers derived from
// the chain secret and the epoch) and their set, all with voting power 1.
func Validators(secret []byte, epoch uint64, n int) ([]*ledger.ValidatorSigner, *ledger.ValidatorSet, error) {
	r := &seedReader{seed: append(append([]byte("devnet-validators/"), secret...), binary.BigEndian.AppendUint64(nil, epoch)...)}
	signers := make([]*ledger.ValidatorSigner, n)
	vals := make([]ledger.ValidatorInfo, n)
	for i := range signers {
		s, err := ledger.GenerateValidatorSigner(r)
		if err != nil {
			return nil, nil, err
		}
		signers[i] = s
		vals[i] = ledger.ValidatorInfo{PublicKey: s.PublicKey(), VotingPower: 1}
	}
	vs, err := ledger.NewValidatorSet(vals)
	if err != nil {
		return nil, nil, err
	}
	return signers, vs, nil
}

// Config shapes a chain.
type Config struct {
	// Secret derives every validator key; keep it private on a real deployment.
	Secret []byte
	// Validators is the number of validators per epoch (default 4).
	Validators int
	// EpochLength is the number of versions per epoch (default 1000).
	EpochLength uint64
	// BlockSize is the most transactions per block (default 100).
	BlockSize int
	// GenesisAccounts is the number of accounts created at genesis (default 100).
	GenesisAccounts int
	// Seed makes the workload deterministic.
	Seed uint64
	// LargeValueEvery puts a large value (LargeValueSize bytes) in one transaction out of
	// this many (0: never).
	LargeValueEvery int
	// LargeValueSize is the size of an occasional large value (default 64 KiB).
	LargeValueSize int
	// Clock returns the timestamp for ledger infos (default time.Now).
	Clock func() time.Time
}

func (c *Config) defaults() {
	if c.Validators <= 0 {
		c.Validators = 4
	}
	if c.EpochLength == 0 {
		c.EpochLength = 1000
	}
	if c.BlockSize <= 0 {
		c.BlockSize = 100
	}
	if c.GenesisAccounts <= 0 {
		c.GenesisAccounts = 100
	}
	if c.LargeValueSize <= 0 {
		c.LargeValueSize = 64 << 10
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
}

// Chain commits a synthetic workload to a store.
type Chain struct {
	cfg     Config
	db      *ledgerdb.DB
	rng     *rand.Rand
	signers []*ledger.ValidatorSigner // current epoch's
	epoch   uint64                    // current epoch (the one the next block belongs to)
	next    uint64                    // next version
	// nextAccount is the number the next new account gets.
	nextAccount uint64
}

// AccountKey returns the state key of account n.
func AccountKey(n uint64) []byte { return fmt.Appendf(nil, "account/%016x", n) }

// Genesis builds the genesis block (version 0 creating the genesis accounts) and its
// ledger info (epoch 0, ending it with the first validator set), commits them to db and
// returns the waypoint.
func Genesis(ctx context.Context, db *ledgerdb.DB, cfg Config) (ledger.Waypoint, error) {
	cfg.defaults()
	_, vs, err := Validators(cfg.Secret, 1, cfg.Validators)
	if err != nil {
		return ledger.Waypoint{}, err
	}
	ws := make(ledger.WriteSet, 0, cfg.GenesisAccounts)
	for i := 0; i < cfg.GenesisAccounts; i++ {
		ws = append(ws, ledger.WriteOp{Key: AccountKey(uint64(i)), Value: balance(1_000_000)})
	}
	sortWriteSet(ws)
	pb, err := db.PrepareBlock(ctx, []ledgerdb.TxnInput{{
		Transaction: ledger.Transaction{Payload: []byte("genesis")},
		WriteSet:    ws,
		Events:      []ledger.Event{{Type: "genesis", Key: []byte("chain"), Data: []byte("devnet")}},
	}})
	if err != nil {
		return ledger.Waypoint{}, fmt.Errorf("genesis: %w", err)
	}
	li := ledger.LedgerInfo{
		Epoch:            0,
		Version:          0,
		AccumulatorRoot:  pb.AccumulatorRoot(),
		TimestampUsec:    uint64(cfg.Clock().UnixMicro()),
		NextValidatorSet: vs,
	}
	if err := db.CommitBlock(ctx, pb, ledger.LedgerInfoWithSignatures{LedgerInfo: li}); err != nil {
		return ledger.Waypoint{}, fmt.Errorf("genesis: %w", err)
	}
	return ledger.NewWaypoint(&li), nil
}

// Open resumes the workload on a store that holds at least the genesis block.
func Open(ctx context.Context, db *ledgerdb.DB, cfg Config) (*Chain, error) {
	cfg.defaults()
	sum, err := db.Summary(ctx)
	if err != nil {
		return nil, err
	}
	if sum.LatestLedgerInfo == nil {
		return nil, fmt.Errorf("devnet: store has no genesis")
	}
	li := sum.LatestLedgerInfo.LedgerInfo
	epoch := li.Epoch
	if li.EndsEpoch() {
		epoch++
	}
	signers, _, err := Validators(cfg.Secret, epoch, cfg.Validators)
	if err != nil {
		return nil, err
	}
	c := &Chain{
		cfg:     cfg,
		db:      db,
		rng:     rand.New(rand.NewPCG(cfg.Seed, sum.NextVersion)),
		signers: signers,
		epoch:   epoch,
		next:    sum.NextVersion,
	}
	// An upper bound of the accounts created so far: the live keys and at most one
	// deletion per version (bulk blocks create many accounts in one version, so the
	// version count alone is no bound); a transfer to an account that does not exist
	// creates it.
	live, err := db.StateItemCount(ctx, sum.NextVersion-1)
	if err != nil {
		return nil, fmt.Errorf("devnet: count the accounts at version %d: %w", sum.NextVersion-1, err)
	}
	c.nextAccount = max(uint64(cfg.GenesisAccounts), live) + sum.NextVersion
	return c, nil
}

// NextVersion returns the next version the chain will commit.
func (c *Chain) NextVersion() uint64 { return c.next }

// Epoch returns the epoch the next block belongs to.
func (c *Chain) Epoch() uint64 { return c.epoch }

func balance(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func sortWriteSet(ws ledger.WriteSet) {
	for i := 1; i < len(ws); i++ {
		for j := i; j > 0 && string(ws[j-1].Key) > string(ws[j].Key); j-- {
			ws[j-1], ws[j] = ws[j], ws[j-1]
		}
	}
}

// txn builds one synthetic transaction at version v.
func (c *Chain) txn(v uint64) ledgerdb.TxnInput {
	r := c.rng
	accounts := c.nextAccount
	pick := func() uint64 { return r.Uint64N(accounts) }
	var ws ledger.WriteSet
	var kind string
	switch x := r.IntN(100); {
	case x < 10: // new account
		kind = "create"
		n := c.nextAccount
		c.nextAccount++
		ws = ledger.WriteSet{{Key: AccountKey(n), Value: balance(r.Uint64N(1000))}}
	case x < 13: // delete an account
		kind = "delete"
		ws = ledger.WriteSet{{Key: AccountKey(pick()), Deleted: true}}
	default: // transfer: two balances change
		kind = "transfer"
		a, b := pick(), pick()
		if a == b {
			b = (a + 1) % accounts
		}
		ws = ledger.WriteSet{
			{Key: AccountKey(a), Value: balance(r.Uint64N(1 << 40))},
			{Key: AccountKey(b), Value: balance(r.Uint64N(1 << 40))},
		}
	}
	if c.cfg.LargeValueEvery > 0 && r.IntN(c.cfg.LargeValueEvery) == 0 && !ws[0].Deleted {
		big := make([]byte, c.cfg.LargeValueSize)
		for i := range big {
			big[i] = byte(r.Uint32())
		}
		ws[0].Value = big
	}
	sortWriteSet(ws)
	payload := fmt.Appendf(nil, "%s v=%d", kind, v)
	return ledgerdb.TxnInput{
		Transaction: ledger.Transaction{Payload: payload},
		WriteSet:    ws,
		Events:      []ledger.Event{{Type: kind, Key: ws[0].Key, Data: binary.BigEndian.AppendUint64(nil, v)}},
	}
}

// CommitBlock builds, signs and commits the next block. A block never crosses an epoch
// boundary: the block that reaches the epoch's last version ends the epoch and carries
// the next epoch's validator set. It returns the committed ledger info.
func (c *Chain) CommitBlock(ctx context.Context) (ledger.LedgerInfoWithSignatures, error) {
	return c.commitBlock(ctx, ^uint64(0))
}

// commitBlock commits the next block, ending it at version maxLast at the latest.
func (c *Chain) commitBlock(ctx context.Context, maxLast uint64) (ledger.LedgerInfoWithSignatures, error) {
	epochEnd := c.epoch * c.cfg.EpochLength // epoch e >= 1 holds versions ((e-1)L, eL]
	last := min(c.next+uint64(c.cfg.BlockSize)-1, epochEnd, maxLast)
	n := last - c.next + 1
	txns := make([]ledgerdb.TxnInput, n)
	for i := range txns {
		txns[i] = c.txn(c.next + uint64(i))
	}
	return c.commitTxns(ctx, txns)
}

// CommitUntil commits blocks until the chain has committed exactly up to version last.
func (c *Chain) CommitUntil(ctx context.Context, last uint64) error {
	for c.next <= last {
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := c.commitBlock(ctx, last); err != nil {
			return err
		}
	}
	return nil
}

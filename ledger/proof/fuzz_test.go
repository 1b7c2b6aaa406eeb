package proof_test

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"go.uber.org/goleak"

	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledgerdb"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var (
	seedOnce sync.Once
	seeds    struct {
		stateRootProof, txnRangeProof, dbState []byte
	}
)

// fuzzSeeds encodes real proofs and a real db state from a small chain.
func fuzzSeeds(f *testing.F) {
	seedOnce.Do(func() {
		ctx := context.Background()
		db, err := ledgerdb.Open(ctx, f.TempDir(), ledgerdb.Options{})
		if err != nil {
			f.Fatal(err)
		}
		defer db.Close()
		cfg := devnet.Config{EpochLength: 20, BlockSize: 7, Secret: []byte("proof-test")}
		if _, err := devnet.Genesis(ctx, db, cfg); err != nil {
			f.Fatal(err)
		}
		c, err := devnet.Open(ctx, db, cfg)
		if err != nil {
			f.Fatal(err)
		}
		if err := c.CommitUntil(ctx, 50); err != nil {
			f.Fatal(err)
		}
		srp, err := db.StateRootProof(ctx, 33)
		if err != nil {
			f.Fatal(err)
		}
		if seeds.stateRootProof, err = srp.Encode(); err != nil {
			f.Fatal(err)
		}
		li, err := db.LedgerInfoCovering(ctx, 30)
		if err != nil {
			f.Fatal(err)
		}
		p, err := db.TransactionRangeProof(ctx, 10, 30, li.LedgerInfo.Version)
		if err != nil {
			f.Fatal(err)
		}
		tr := proof.TransactionRange{Proof: p, LedgerInfo: li}
		if seeds.txnRangeProof, err = tr.Encode(); err != nil {
			f.Fatal(err)
		}
		raw, _ := li.Encode()
		v := li.LedgerInfo.Version
		seeds.dbState, _ = json.Marshal(proof.DBState{NextVersion: v + 1, CommittedVersion: &v, Epoch: li.LedgerInfo.Epoch, LatestLedgerInfo: raw})
	})
}

func FuzzDecodeStateRootProof(f *testing.F) {
	fuzzSeeds(f)
	f.Add(seeds.stateRootProof)
	f.Add([]byte{0x83, 0x40, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := proof.DecodeStateRoot(b)
		if err != nil {
			return
		}
		re, err := p.Encode()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("accepted input does not re-encode to itself (%v)", err)
		}
	})
}

func FuzzDecodeTransactionRangeProof(f *testing.F) {
	fuzzSeeds(f)
	f.Add(seeds.txnRangeProof)
	f.Add([]byte{0x82, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := proof.DecodeTransactionRange(b)
		if err != nil {
			return
		}
		re, err := p.Encode()
		if err != nil || !bytes.Equal(re, b) {
			t.Fatalf("accepted input does not re-encode to itself (%v)", err)
		}
	})
}

func FuzzDecodeDBState(f *testing.F) {
	fuzzSeeds(f)
	f.Add(seeds.dbState)
	f.Add([]byte(`{"next_version":0,"epoch":0,"first_txn_version":0}`))
	f.Add([]byte(`{"next_version":1,"committed_version":0,"epoch":0,"first_txn_version":0,"latest_ledger_info":"gA=="}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := proof.DecodeDBState(b)
		if err != nil {
			return
		}
		if s.CommittedVersion != nil {
			li, err := s.LedgerInfo()
			if err != nil || li.LedgerInfo.Version != *s.CommittedVersion || *s.CommittedVersion >= s.NextVersion {
				t.Fatalf("accepted an inconsistent db state: %+v (%v)", s, err)
			}
			var _ ledger.LedgerInfoWithSignatures = li
		}
	})
}

package backupservice

import (
	"bytes"
	"context"
	"encoding/json"
	"sync"
	"testing"

	"github.com/ledgervault/ledgervault/devnet"
	"github.com/ledgervault/ledgervault/ledger"
)

var (
	seedOnce sync.Once
	seeds    struct {
		stateRootProof, txnRangeProof, dbState []byte
	}
)

// fuzzSeeds encodes real responses from a small chain.
func fuzzSeeds(f *testing.F) {
	seedOnce.Do(func() {
		ctx := context.Background()
		tc := newTestChain(f, devnet.Config{EpochLength: 20, BlockSize: 7}, 50)
		srp, err := tc.db.StateRootProof(ctx, 33)
		if err != nil {
			f.Fatal(err)
		}
		if seeds.stateRootProof, err = EncodeStateRootProof(&srp); err != nil {
			f.Fatal(err)
		}
		li, err := tc.db.LedgerInfoCovering(ctx, 30)
		if err != nil {
			f.Fatal(err)
		}
		p, err := tc.db.TransactionRangeProof(ctx, 10, 30, li.LedgerInfo.Version)
		if err != nil {
			f.Fatal(err)
		}
		if seeds.txnRangeProof, err = EncodeTransactionRangeProof(&TransactionRangeProof{Proof: p, LedgerInfo: li}); err != nil {
			f.Fatal(err)
		}
		raw, _ := li.Encode()
		v := li.LedgerInfo.Version
		seeds.dbState, _ = json.Marshal(DBState{NextVersion: v + 1, CommittedVersion: &v, Epoch: li.LedgerInfo.Epoch, LatestLedgerInfo: raw})
	})
}

func FuzzDecodeStateRootProof(f *testing.F) {
	fuzzSeeds(f)
	f.Add(seeds.stateRootProof)
	f.Add([]byte{0x83, 0x40, 0x40, 0x40})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeStateRootProof(b)
		if err != nil {
			return
		}
		re, err := EncodeStateRootProof(&p)
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
		p, err := DecodeTransactionRangeProof(b)
		if err != nil {
			return
		}
		re, err := EncodeTransactionRangeProof(&p)
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
		s, err := DecodeDBState(b)
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

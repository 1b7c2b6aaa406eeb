package aptos

import (
	"bytes"
	"os"
	"testing"
)

// Seeds are real records of aptos-libra7 (testdata/: the epoch 0 and 1 endings without
// their frames, and the state.proof of the epoch-202 snapshot).
func seed(f *testing.F, name string) []byte {
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		f.Fatal(err)
	}
	return b
}

func FuzzDecodeLedgerInfoWithSignatures(f *testing.F) {
	f.Add(seed(f, "epoch0.bcs"))
	f.Add(seed(f, "epoch1.bcs"))
	f.Fuzz(func(t *testing.T, b []byte) {
		li, err := DecodeLedgerInfoWithSignatures(b)
		if err != nil {
			return
		}
		// A strict decode consumed everything: the ledger info is a prefix of the input
		// and re-decoding its parts is consistent.
		if !bytes.Equal(b[1:1+len(li.LedgerInfo.Raw)], li.LedgerInfo.Raw) {
			t.Fatal("Raw is not the ledger info's bytes")
		}
		for _, d := range KnownDomains {
			_ = d.Waypoint(&li.LedgerInfo)
			_ = d.SigningMessage(&li.LedgerInfo)
		}
		if ns := li.LedgerInfo.CommitInfo.NextEpochState; ns != nil {
			set := newValidatorSet(ns)
			if _, err := set.checkSigners(&li.Signatures); err == nil {
				// Keys that parse must be on the curve; errors are fine, panics are not.
				_, _ = set.publicKeys()
			}
		}
		for _, i := range li.Signatures.Signers() {
			if i >= 8*len(li.Signatures.Bitmask) {
				t.Fatalf("signer %d outside the bitmask", i)
			}
		}
	})
}

func FuzzDecodeStateSnapshotProof(f *testing.F) {
	f.Add(seed(f, "state-202.proof"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeStateSnapshotProof(b)
		if err != nil {
			return
		}
		for _, d := range KnownDomains {
			_ = p.TxnInfo.Verify(d, &p.LedgerInfo.LedgerInfo, p.LedgerInfo.LedgerInfo.Version())
		}
		if len(p.TxnInfo.Proof.Siblings) > MaxAccumulatorProofDepth {
			t.Fatal("proof deeper than the limit decoded")
		}
	})
}

func FuzzAccumulatorRangeProof(f *testing.F) {
	f.Add([]byte{}, uint64(0), 3)
	f.Add(bytes.Repeat([]byte{7}, 32*5), uint64(5), 2)
	f.Fuzz(func(t *testing.T, hashes []byte, first uint64, nleaves int) {
		var hs []HashValue
		for len(hashes) >= 32 && len(hs) < 200 {
			hs = append(hs, HashValue(hashes[:32]))
			hashes = hashes[32:]
		}
		if nleaves < 0 || nleaves > len(hs) {
			nleaves = len(hs)
		}
		rest := hs[nleaves:]
		p := AccumulatorRangeProof{LeftSiblings: rest[:len(rest)/2], RightSiblings: rest[len(rest)/2:]}
		_ = p.Verify(AptosDomain, HashValue{}, first, hs[:nleaves])
		_ = AccumulatorProof{Siblings: rest}.Verify(AptosDomain, HashValue{}, HashValue{}, first)
	})
}

func FuzzDecodeDiemLedgerInfoWithSignatures(f *testing.F) {
	f.Add(seed(f, "diem-epoch14.bcs"))
	f.Add(seed(f, "epoch1.bcs"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = DetectGeneration(b)
		li, err := DecodeDiemLedgerInfoWithSignatures(b)
		if err != nil {
			return
		}
		_ = LibraDomain.DiemWaypoint(li)
		if li.NextEpochState != nil {
			set := *li.NextEpochState
			set.Epoch = li.LedgerInfo.Epoch()
			_, _ = VerifyDiemLedgerInfo(LibraDomain, &set, li)
		}
	})
}

func FuzzDecodeSparseMerkleRangeProof(f *testing.F) {
	f.Add(append([]byte{1}, SparseMerklePlaceholderHash[:]...))
	f.Fuzz(func(t *testing.T, b []byte) {
		if p, err := DecodeSparseMerkleRangeProof(b); err == nil && len(p.RightSiblings) > maxSparseMerkleDepth {
			t.Fatal("too many siblings decoded")
		}
	})
}

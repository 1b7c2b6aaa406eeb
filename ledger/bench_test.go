package ledger

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
)

func BenchmarkTransactionInfoHash(b *testing.B) {
	ti := sampleTxn(b, 1).Info
	b.ReportAllocs()
	for b.Loop() {
		_ = ti.Hash()
	}
}

func BenchmarkTransactionInfoEncode(b *testing.B) {
	ti := sampleTxn(b, 1).Info
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ti.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTransactionWithOutputEncode(b *testing.B) {
	tw := sampleTxn(b, 1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := tw.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRestoreTransaction is the restore's per-transaction work: decode (with the
// canonical check), validate the info against the parts, hash the info.
// BenchmarkRestoreTransactionBaselineSHA256 hashes the same bytes once, for scale.
func BenchmarkRestoreTransaction(b *testing.B) {
	tw := sampleTxn(b, 1)
	enc := mustEncode(b, &tw)
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		got, err := DecodeTransactionWithOutput(enc)
		if err != nil {
			b.Fatal(err)
		}
		_ = got.Info.Hash()
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "txn/s")
}

func BenchmarkRestoreTransactionBaselineSHA256(b *testing.B) {
	tw := sampleTxn(b, 1)
	enc := mustEncode(b, &tw)
	b.SetBytes(int64(len(enc)))
	for b.Loop() {
		_ = sha256.Sum256(enc)
	}
}

func benchQuorum(b *testing.B, n int) {
	signers, vs := signersFor(b, "bench", n, nil)
	li := LedgerInfo{Epoch: 3, Version: 12345, AccumulatorRoot: Hash{1}, NextValidatorSet: vs}
	l := SignLedgerInfo(li, signers[:n*2/3+1]...)
	b.ReportAllocs()
	for b.Loop() {
		if err := l.VerifySignatures(vs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(l.Signatures)), "sigs/op")
}

func BenchmarkVerifyQuorum4(b *testing.B)   { benchQuorum(b, 4) }
func BenchmarkVerifyQuorum100(b *testing.B) { benchQuorum(b, 100) }

// BenchmarkVerifyQuorumBaselineEd25519 is one bare ed25519 verification, for scale.
func BenchmarkVerifyQuorumBaselineEd25519(b *testing.B) {
	signers, _ := signersFor(b, "bench", 1, nil)
	li := LedgerInfo{Epoch: 3}
	s := signers[0].Sign(&li)
	h := li.Hash()
	for b.Loop() {
		if !ed25519.Verify(s.PublicKey, h[:], s.Signature) {
			b.Fatal("bad signature")
		}
	}
}

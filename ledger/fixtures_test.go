package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"testing"
)

// detReader is a deterministic byte stream for generating test keys.
type detReader struct {
	seed string
	n    uint64
	buf  []byte
}

func (r *detReader) Read(p []byte) (int, error) {
	for len(r.buf) < len(p) {
		var c [8]byte
		binary.BigEndian.PutUint64(c[:], r.n)
		r.n++
		s := sha256.Sum256(append([]byte(r.seed), c[:]...))
		r.buf = append(r.buf, s[:]...)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// signersFor returns n deterministic signers named by tag and their validator set with
// the given powers (all 1 when powers is nil).
func signersFor(t testing.TB, tag string, n int, powers []uint64) ([]*ValidatorSigner, *ValidatorSet) {
	t.Helper()
	r := &detReader{seed: tag}
	signers := make([]*ValidatorSigner, n)
	vals := make([]ValidatorInfo, n)
	for i := range signers {
		s, err := GenerateValidatorSigner(r)
		if err != nil {
			t.Fatal(err)
		}
		signers[i] = s
		p := uint64(1)
		if powers != nil {
			p = powers[i]
		}
		vals[i] = ValidatorInfo{PublicKey: s.PublicKey(), VotingPower: p}
	}
	vs, err := NewValidatorSet(vals)
	if err != nil {
		t.Fatal(err)
	}
	return signers, vs
}

// testChain is a chain of epochs: endings[e] ends epoch e and is signed by signers[e]
// (the validators of epoch e; epoch 0 is genesis and unsigned).
type testChain struct {
	signers [][]*ValidatorSigner
	sets    []*ValidatorSet
	endings []LedgerInfoWithSignatures
}

func newTestChain(t testing.TB, epochs int) *testChain {
	t.Helper()
	c := &testChain{}
	for e := 0; e <= epochs+1; e++ {
		s, vs := signersFor(t, fmt.Sprintf("epoch-%d", e), 4, nil)
		c.signers = append(c.signers, s)
		c.sets = append(c.sets, vs)
	}
	for e := 0; e <= epochs; e++ {
		li := LedgerInfo{
			Epoch:            uint64(e),
			Version:          uint64(e * 100),
			AccumulatorRoot:  HashOf(DomainTransactionInfo, []byte(fmt.Sprint("root", e))),
			TimestampUsec:    uint64(1_700_000_000_000_000 + e),
			NextValidatorSet: c.sets[e+1],
		}
		if e == 0 {
			c.endings = append(c.endings, LedgerInfoWithSignatures{LedgerInfo: li})
			continue
		}
		c.endings = append(c.endings, SignLedgerInfo(li, c.signers[e][:3]...))
	}
	return c
}

func sampleTxn(t testing.TB, i int) TransactionWithOutput {
	t.Helper()
	ws := WriteSet{
		{Key: []byte(fmt.Sprintf("account/%08d", i)), Value: []byte(fmt.Sprintf("balance=%d", 1000-i))},
		{Key: []byte(fmt.Sprintf("account/%08d", i+1)), Value: []byte(fmt.Sprintf("balance=%d", 1000+i))},
		{Key: []byte(fmt.Sprintf("account/%08d", i+7)), Deleted: true},
	}
	events := []Event{
		{Type: "transfer", Key: []byte(fmt.Sprintf("account/%08d", i)), Data: []byte("amount=1")},
		{Type: "deposit", Key: []byte(fmt.Sprintf("account/%08d", i+1)), Data: []byte("amount=1")},
	}
	txn := Transaction{Payload: []byte(fmt.Sprintf("transfer %d -> %d amount 1 nonce %d", i, i+1, i))}
	tw, err := NewTransactionWithOutput(txn, ws, events, StatusSuccess, HashOf(DomainSMTInternal, []byte(fmt.Sprint(i))))
	if err != nil {
		t.Fatal(err)
	}
	return tw
}

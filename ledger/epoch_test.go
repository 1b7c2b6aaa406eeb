package ledger

import (
	"errors"
	"strings"
	"testing"
)

func TestEpochHistoryFromGenesis(t *testing.T) {
	c := newTestChain(t, 7)
	genesis := c.endings[0].LedgerInfo
	h, err := NewEpochHistory(NewWaypoint(&genesis), &genesis)
	if err != nil {
		t.Fatal(err)
	}
	if h.LatestEpoch() != 1 {
		t.Fatalf("latest epoch %d, want 1", h.LatestEpoch())
	}
	for e := 1; e <= 7; e++ {
		if err := h.Append(&c.endings[e]); err != nil {
			t.Fatalf("epoch %d: %v", e, err)
		}
	}
	if h.LatestEpoch() != 8 {
		t.Fatalf("latest epoch %d, want 8", h.LatestEpoch())
	}
	// Replaying a known ending, the waypoint's included, is accepted.
	for _, e := range []int{0, 3} {
		if err := h.Append(&c.endings[e]); err != nil {
			t.Fatalf("replay of ending %d: %v", e, err)
		}
	}
	if h.LatestEpoch() != 8 {
		t.Fatal("replay changed the history")
	}
	otherGenesis := c.endings[0]
	otherGenesis.LedgerInfo.TimestampUsec++
	if err := h.Append(&otherGenesis); err == nil {
		t.Fatal("a different genesis was accepted")
	}
	// Ledger infos inside known epochs verify, including with the next epoch's signers
	// for epoch 8 (whose set is known from ending 7).
	for e := 1; e <= 8; e++ {
		li := LedgerInfo{Epoch: uint64(e), Version: uint64(e*100 - 50), AccumulatorRoot: Hash{byte(e)}}
		if err := h.Verify(ptr(SignLedgerInfo(li, c.signers[e][1:]...))); err != nil {
			t.Fatalf("epoch %d: %v", e, err)
		}
		// Signed by the wrong epoch's validators: rejected.
		if err := h.Verify(ptr(SignLedgerInfo(li, c.signers[e-1][1:]...))); err == nil {
			t.Fatalf("epoch %d: ledger info signed by epoch %d's validators accepted", e, e-1)
		}
	}
	for e := 1; e <= 7; e++ {
		if err := h.Verify(&c.endings[e]); err != nil {
			t.Fatalf("ending %d: %v", e, err)
		}
	}
	if err := h.Verify(&c.endings[0]); err != nil {
		t.Fatalf("genesis: %v", err)
	}
	// Beyond the known history.
	li := LedgerInfo{Epoch: 9, Version: 900}
	err = h.Verify(ptr(SignLedgerInfo(li, c.signers[8]...)))
	if !errors.Is(err, ErrBeyondHistory) || err.Error() != "ledger info of epoch 9 is beyond verified epoch history (known up to 8)" {
		t.Fatalf("beyond history: %v", err)
	}
}

func TestEpochVersionBounds(t *testing.T) {
	c := newTestChain(t, 4)
	g := c.endings[0].LedgerInfo
	h, err := NewEpochHistory(NewWaypoint(&g), &g)
	if err != nil {
		t.Fatal(err)
	}
	for e := 1; e <= 4; e++ {
		if err := h.Append(&c.endings[e]); err != nil {
			t.Fatal(err)
		}
	}
	ok := func(v uint64) error {
		return h.Verify(ptr(SignLedgerInfo(LedgerInfo{Epoch: 3, Version: v}, c.signers[3]...)))
	}
	if err := ok(250); err != nil {
		t.Errorf("version 250 in epoch 3 (200, 300]: %v", err)
	}
	if err := ok(350); err == nil {
		t.Error("version 350 accepted in epoch 3 ending at 300")
	}
	if err := ok(150); err == nil {
		t.Error("version 150 accepted in epoch 3 starting after 200")
	}
	// A second, different ending of a known epoch (equivocation) is rejected.
	fork := c.endings[3].LedgerInfo
	fork.AccumulatorRoot = Hash{0xee}
	forked := SignLedgerInfo(fork, c.signers[3]...)
	if err := h.Verify(&forked); err == nil {
		t.Error("conflicting ending verified")
	}
	if err := h.Append(&forked); err == nil {
		t.Error("conflicting ending appended")
	}
}

func TestEpochHistoryFromMidChainWaypoint(t *testing.T) {
	c := newTestChain(t, 7)
	trusted := c.endings[4].LedgerInfo
	wp, err := ParseWaypoint(NewWaypoint(&trusted).String())
	if err != nil {
		t.Fatal(err)
	}
	h, err := NewEpochHistory(wp, &trusted)
	if err != nil {
		t.Fatal(err)
	}
	if h.FirstEpoch() != 4 || h.LatestEpoch() != 5 {
		t.Fatalf("epochs %d..%d", h.FirstEpoch(), h.LatestEpoch())
	}
	// Earlier endings are not part of this history.
	if err := h.Append(&c.endings[2]); err == nil {
		t.Fatal("ending before the waypoint appended")
	}
	if err := h.Verify(&c.endings[2]); err == nil {
		t.Fatal("ledger info before the waypoint verified")
	}
	for e := 5; e <= 7; e++ {
		if err := h.Append(&c.endings[e]); err != nil {
			t.Fatalf("epoch %d: %v", e, err)
		}
	}
	if vs, ok := h.ValidatorSet(8); !ok || !vs.Equal(c.sets[8]) {
		t.Fatal("validator set of epoch 8 unknown")
	}
	if _, ok := h.ValidatorSet(4); ok {
		t.Fatal("validator set of the waypoint's own epoch claimed")
	}
	if end, ok := h.Ending(6); !ok || end.Hash() != c.endings[6].LedgerInfo.Hash() {
		t.Fatal("ending of epoch 6 missing")
	}
}

func TestEpochHistoryRejections(t *testing.T) {
	c := newTestChain(t, 4)
	g := c.endings[0].LedgerInfo
	start := func() *EpochHistory {
		t.Helper()
		h, err := NewEpochHistory(NewWaypoint(&g), &g)
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Append(&c.endings[1]); err != nil {
			t.Fatal(err)
		}
		return h
	}
	e2 := c.endings[2]

	t.Run("wrong waypoint hash", func(t *testing.T) {
		wp := NewWaypoint(&g)
		wp.Hash[0] ^= 1
		if _, err := NewEpochHistory(wp, &g); err == nil || !strings.Contains(err.Error(), "does not match waypoint") {
			t.Fatalf("got %v", err)
		}
		wp = NewWaypoint(&g)
		wp.Version++
		if _, err := NewEpochHistory(wp, &g); err == nil {
			t.Fatal("wrong waypoint version accepted")
		}
		other := c.endings[1].LedgerInfo
		if err := NewWaypoint(&g).Verify(&other); err == nil {
			t.Fatal("other ledger info matched the waypoint")
		}
	})
	t.Run("waypoint not at an epoch end", func(t *testing.T) {
		li := LedgerInfo{Epoch: 1, Version: 50}
		if _, err := NewEpochHistory(NewWaypoint(&li), &li); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("forged signature", func(t *testing.T) {
		bad := cloneLIWS(e2)
		bad.Signatures[0].Signature[10] ^= 1
		err := start().Append(&bad)
		if err == nil || !strings.Contains(err.Error(), "invalid signature") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("tampered ledger info", func(t *testing.T) {
		bad := cloneLIWS(e2)
		bad.LedgerInfo.TimestampUsec++
		if err := start().Append(&bad); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("exactly two thirds", func(t *testing.T) {
		// Powers 1,1,1,3 (total 6): the three power-1 validators plus nothing else hold 3;
		// one power-1 validator and the power-3 one hold exactly 4 = 2/3.
		signers, vs := signersFor(t, "weighted", 4, []uint64{1, 1, 1, 3})
		g := LedgerInfo{NextValidatorSet: vs}
		h, err := NewEpochHistory(NewWaypoint(&g), &g)
		if err != nil {
			t.Fatal(err)
		}
		var heavy, light []*ValidatorSigner
		for _, s := range signers {
			if vs.Validators[vs.index(s.PublicKey())].VotingPower == 3 {
				heavy = append(heavy, s)
			} else {
				light = append(light, s)
			}
		}
		li := LedgerInfo{Epoch: 1, Version: 10, NextValidatorSet: c.sets[2]}
		err = h.Append(ptr(SignLedgerInfo(li, heavy[0], light[0])))
		if !errors.Is(err, ErrNoQuorum) {
			t.Fatalf("2/3 exactly: got %v", err)
		}
		if err := h.Append(ptr(SignLedgerInfo(li, heavy[0], light[0], light[1]))); err != nil {
			t.Fatalf("5/6: %v", err)
		}
	})
	t.Run("insufficient quorum", func(t *testing.T) {
		li := e2.LedgerInfo
		if err := start().Append(ptr(SignLedgerInfo(li, c.signers[2][:2]...))); !errors.Is(err, ErrNoQuorum) {
			t.Fatalf("2 of 4: %v", err)
		}
		if err := start().Append(ptr(SignLedgerInfo(li))); !errors.Is(err, ErrNoQuorum) {
			t.Fatalf("no signatures: %v", err)
		}
	})
	t.Run("duplicate signer", func(t *testing.T) {
		// Two signatures by the same validator (3 of 4 needed, 2 distinct given).
		sigs := SignLedgerInfo(e2.LedgerInfo, c.signers[2][:2]...).Signatures
		dup := LedgerInfoWithSignatures{LedgerInfo: e2.LedgerInfo, Signatures: []ValidatorSignature{sigs[0], sigs[0], sigs[1]}}
		err := start().Append(&dup)
		if err == nil || !strings.Contains(err.Error(), "duplicate signature") {
			t.Fatalf("got %v", err)
		}
		if _, err := DecodeLedgerInfoWithSignatures(mustEncode(t, &dup)); err == nil {
			t.Fatal("decoded with a duplicate signer")
		}
	})
	t.Run("signer outside the set", func(t *testing.T) {
		outsider, _ := signersFor(t, "outsider", 1, nil)
		l := SignLedgerInfo(e2.LedgerInfo, append([]*ValidatorSigner{outsider[0]}, c.signers[2][:3]...)...)
		if err := start().Append(&l); err == nil || !strings.Contains(err.Error(), "not in the validator set") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("skipped epoch", func(t *testing.T) {
		err := start().Append(&c.endings[3])
		if !errors.Is(err, ErrBeyondHistory) || !strings.Contains(err.Error(), "skips epochs") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("not an ending", func(t *testing.T) {
		li := e2.LedgerInfo
		li.NextValidatorSet = nil
		if err := start().Append(ptr(SignLedgerInfo(li, c.signers[2]...))); err == nil {
			t.Fatal("accepted")
		}
	})
	t.Run("version goes back", func(t *testing.T) {
		li := e2.LedgerInfo
		li.Version = 99
		if err := start().Append(ptr(SignLedgerInfo(li, c.signers[2]...))); err == nil {
			t.Fatal("accepted")
		}
		li.Version = 100 // equal to the previous end: an epoch without transactions
		if err := start().Append(ptr(SignLedgerInfo(li, c.signers[2]...))); err != nil {
			t.Fatalf("equal version rejected: %v", err)
		}
	})
	t.Run("unsorted signatures", func(t *testing.T) {
		l := cloneLIWS(e2)
		l.Signatures[0], l.Signatures[1] = l.Signatures[1], l.Signatures[0]
		if err := start().Append(&l); err == nil {
			t.Fatal("accepted")
		}
	})
}

func ptr[T any](v T) *T { return &v }

func cloneLIWS(l LedgerInfoWithSignatures) LedgerInfoWithSignatures {
	out := l
	out.Signatures = make([]ValidatorSignature, len(l.Signatures))
	for i, s := range l.Signatures {
		out.Signatures[i] = ValidatorSignature{PublicKey: append([]byte(nil), s.PublicKey...), Signature: append([]byte(nil), s.Signature...)}
	}
	return out
}

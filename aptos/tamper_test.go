package aptos

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// cloneEndings deep-copies the corpus endings up to epoch last+2 (the chain beyond a
// corruption is never reached; keeping it short keeps the race-detector run short) so
// that a test can corrupt its copy.
func cloneEndings(in []corpusEnding, last int) []corpusEnding {
	if last+3 < len(in) {
		in = in[:last+3]
	}
	out := make([]corpusEnding, len(in))
	for i, e := range in {
		out[i] = e
		out[i].record = append([]byte(nil), e.record...)
	}
	return out
}

// verifyCorrupted runs the chain over endings and requires an error wrapping want whose
// text names each of the given strings (the file and the epoch).
func verifyCorrupted(t *testing.T, trusted Waypoint, endings []corpusEnding, want error, names ...string) {
	t.Helper()
	_, _, err := VerifyEpochChain(context.Background(), trusted, corpusSource(t, endings), ChainOptions{})
	if err == nil {
		t.Fatal("corrupted chain verified")
	}
	if want != nil && !errors.Is(err, want) {
		t.Fatalf("error %v does not wrap %v", err, want)
	}
	for _, n := range names {
		if !strings.Contains(err.Error(), n) {
			t.Fatalf("error %q does not name %q", err, n)
		}
	}
	t.Logf("rejected: %v", err)
}

func epochName(e uint64) string { return fmt.Sprintf("(epoch %d,", e) }

// bitmaskOffset returns the offset of the validator bitmask's bytes in a record whose
// signature is present (the record ends bitmask, option tag 1, length 96, signature).
func bitmaskOffset(t *testing.T, rec []byte) (int, int) {
	li, err := DecodeLedgerInfoWithSignatures(rec)
	if err != nil {
		t.Fatal(err)
	}
	n := len(li.Signatures.Bitmask)
	return len(rec) - SignatureLen - 2 - n, n
}

func TestTamperSignatureBit(t *testing.T) {
	endings := cloneEndings(loadCorpusEndings(t), 15)
	rec := endings[15].record
	rec[len(rec)-40] ^= 0x01 // one bit inside the aggregate signature: not a G2 point
	verifyCorrupted(t, genesisWaypoint(t), endings, ErrSignature, endings[15].source, epochName(15))

	// The sign bit of the compressed point: -sig is a valid G2 point of the subgroup, so
	// only the pairing check can reject it.
	endings = cloneEndings(loadCorpusEndings(t), 15)
	rec = endings[15].record
	rec[len(rec)-SignatureLen] ^= 0x20
	verifyCorrupted(t, genesisWaypoint(t), endings, ErrSignature, endings[15].source, epochName(15), "3 signers of 3")
}

func TestTamperSignerWhoDidNotSign(t *testing.T) {
	endings := cloneEndings(loadCorpusEndings(t), 1)
	// Epoch 1 is signed by validators 0-2 of 4; claim validator 3 signed too. The
	// quorum still holds, so only the pairing check can catch it.
	off, n := bitmaskOffset(t, endings[1].record)
	if n != 1 || endings[1].record[off] != 0xe0 {
		t.Fatalf("epoch 1 bitmask %x, expected e0", endings[1].record[off:off+n])
	}
	endings[1].record[off] |= 0x10
	verifyCorrupted(t, genesisWaypoint(t), endings, ErrSignature, endings[1].source, epochName(1), "4 signers of 4")
}

func TestTamperBelowQuorum(t *testing.T) {
	endings := cloneEndings(loadCorpusEndings(t), 7)
	off, _ := bitmaskOffset(t, endings[7].record)
	endings[7].record[off] &^= 0x20 // drop signer 2 of 3: 2 < quorum 3
	verifyCorrupted(t, genesisWaypoint(t), endings, ErrSignature, endings[7].source, epochName(7), "below the quorum")
}

// raiseVotingPower sets validator i's voting power in the next epoch state of rec.
func raiseVotingPower(t *testing.T, rec []byte, i int, power uint64) {
	li, err := DecodeLedgerInfoWithSignatures(rec)
	if err != nil {
		t.Fatal(err)
	}
	pk := li.LedgerInfo.CommitInfo.NextEpochState.Validators[i].PublicKey
	at := bytes.Index(rec, pk)
	if at < 0 {
		t.Fatal("public key not found")
	}
	binary.LittleEndian.PutUint64(rec[at+len(pk):], power)
	li2, err := DecodeLedgerInfoWithSignatures(rec)
	if err != nil || li2.LedgerInfo.CommitInfo.NextEpochState.Validators[i].VotingPower != power {
		t.Fatalf("voting power not rewritten: %v", err)
	}
}

func TestTamperVotingPower(t *testing.T) {
	// With the manifest's waypoints, the changed validator set changes the waypoint.
	endings := cloneEndings(loadCorpusEndings(t), 12)
	raiseVotingPower(t, endings[12].record, 0, 1000)
	verifyCorrupted(t, genesisWaypoint(t), endings, ErrChain, endings[12].source, epochName(12), "the manifest lists")

	// Without them, the signature over the changed ledger info fails.
	for i := range endings {
		endings[i].waypoint = ""
	}
	s := make(SliceSource, len(endings))
	for i, e := range endings {
		s[i] = Ending{Source: e.source, Record: e.record}
	}
	_, _, err := VerifyEpochChain(context.Background(), genesisWaypoint(t), &s, ChainOptions{})
	if !errors.Is(err, ErrSignature) || !strings.Contains(err.Error(), endings[12].source) {
		t.Fatalf("raised voting power without manifest waypoints: %v", err)
	}
	t.Logf("rejected: %v", err)
}

func TestTamperSwappedChunks(t *testing.T) {
	endings := cloneEndings(loadCorpusEndings(t), 11)
	// The chunk files of epochs 10 and 11 swapped: each manifest now reads the other's.
	endings[10].record, endings[11].record = endings[11].record, endings[10].record
	verifyCorrupted(t, genesisWaypoint(t), endings, ErrChain, endings[10].source, epochName(11), "expected epoch 10")
}

func TestTamperWrongWaypoint(t *testing.T) {
	endings := loadCorpusEndings(t)
	w := genesisWaypoint(t)
	w.Value[31] ^= 1
	verifyCorrupted(t, w, endings, ErrChain, endings[0].source, epochName(0), "does not match trusted waypoint")
	w = genesisWaypoint(t)
	w.Version = 1
	verifyCorrupted(t, w, endings, ErrChain, endings[0].source, "version")
}

func TestTamperTruncatedEnding(t *testing.T) {
	endings := cloneEndings(loadCorpusEndings(t), 3)
	endings[3].record = endings[3].record[:len(endings[3].record)-1]
	verifyCorrupted(t, genesisWaypoint(t), endings, bcs.ErrShort, endings[3].source)
}

var (
	historyOnce  sync.Once
	history      *EpochHistory
	historyStats ChainStats
	historyErr   error
)

// verifiedHistory returns the corpus's verified epoch history (verified once per run).
func verifiedHistory(t testing.TB) *EpochHistory {
	t.Helper()
	endings := loadCorpusEndings(t)
	historyOnce.Do(func() {
		history, historyStats, historyErr = VerifyEpochChain(context.Background(), genesisWaypoint(t), corpusSource(t, endings), ChainOptions{})
	})
	if historyErr != nil {
		t.Fatal(historyErr)
	}
	return history
}

func TestStateSnapshotRootProofs(t *testing.T) {
	h := verifiedHistory(t)
	for _, s := range loadCorpusSnapshots(t) {
		root, err := ParseHashValue(s.manifest.RootHash)
		if err != nil {
			t.Fatal(err)
		}
		p, err := h.VerifyStateSnapshot(s.proof, s.manifest.Version, root)
		if err != nil {
			t.Fatalf("%s: %v", s.proofPath, err)
		}
		li := &p.LedgerInfo.LedgerInfo
		if li.Epoch() != s.manifest.Epoch {
			t.Fatalf("%s: ledger info epoch %d, manifest epoch %d", s.proofPath, li.Epoch(), s.manifest.Epoch)
		}
		if len(p.LedgerInfo.Signatures.Signers()) == 0 {
			t.Fatalf("%s: unsigned ledger info accepted", s.proofPath)
		}
	}
}

func TestTamperStateRootHash(t *testing.T) {
	h := verifiedHistory(t)
	s := loadCorpusSnapshots(t)[1]
	root, _ := ParseHashValue(s.manifest.RootHash)
	root[0] ^= 0x80
	_, err := h.VerifyStateSnapshot(s.proof, s.manifest.Version, root)
	if !errors.Is(err, ErrStateRoot) || !strings.Contains(err.Error(), fmt.Sprint(s.manifest.Version)) {
		t.Fatalf("changed root_hash: %v", err)
	}
	t.Logf("rejected: %v", err)
}

func TestTamperStateProof(t *testing.T) {
	h := verifiedHistory(t)
	s := loadCorpusSnapshots(t)[0]
	root, _ := ParseHashValue(s.manifest.RootHash)
	v := s.manifest.Version
	for cut := 1; cut < len(s.proof); cut += 37 {
		_, err := h.VerifyStateSnapshot(s.proof[:len(s.proof)-cut], v, root)
		if !errors.Is(err, bcs.ErrShort) && !errors.Is(err, bcs.ErrTrailing) {
			t.Fatalf("proof truncated by %d bytes: %v", cut, err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("version %d", v)) {
			t.Fatalf("error %q does not name the snapshot", err)
		}
	}
	// One bit of an accumulator sibling, of the transaction info, of the signature.
	for _, at := range []int{40, 0x170, len(s.proof) - 30} {
		p := append([]byte(nil), s.proof...)
		p[at] ^= 0x04
		if _, err := h.VerifyStateSnapshot(p, v, root); err == nil {
			t.Fatalf("bit flipped at %d verified", at)
		} else {
			t.Logf("flip at %d rejected: %v", at, err)
		}
	}
	// The wrong version for the proof.
	if _, err := h.VerifyStateSnapshot(s.proof, v-1, root); !errors.Is(err, ErrProof) {
		t.Fatalf("wrong version: %v", err)
	}
}

func TestVerifyLedgerInfoAgainstPartialHistory(t *testing.T) {
	endings := loadCorpusEndings(t)
	h, stats, err := VerifyEpochChain(context.Background(), genesisWaypoint(t), corpusSource(t, endings[:101]), ChainOptions{Concurrency: 1})
	if err != nil || h.LastEpoch() != 100 || stats.Signatures != 100 {
		t.Fatalf("partial history: %v, last %d", err, h.LastEpoch())
	}
	decode := func(i int) *LedgerInfoWithSignatures {
		li, err := DecodeLedgerInfoWithSignatures(endings[i].record)
		if err != nil {
			t.Fatal(err)
		}
		return li
	}
	for _, i := range []int{0, 1, 50, 100, 101} { // 101 is signed by the set ending 100 announced
		if err := h.VerifyLedgerInfo(decode(i)); err != nil {
			t.Fatalf("epoch %d: %v", i, err)
		}
	}
	if err := h.VerifyLedgerInfo(decode(150)); err == nil || !strings.Contains(err.Error(), "beyond the verified epoch history") {
		t.Fatalf("epoch 150 against a history ending at 100: %v", err)
	}
	// A ledger info of epoch 5 signed by epoch 5's set but presented as another: flip a
	// byte of its consensus data hash; the signature no longer covers it.
	li := decode(5)
	li.LedgerInfo.Raw[len(li.LedgerInfo.Raw)-1] ^= 1
	if err := h.VerifyLedgerInfo(li); !errors.Is(err, ErrSignature) {
		t.Fatalf("altered ledger info of epoch 5: %v", err)
	}
	// An altered genesis is not the trusted ending.
	g := decode(0)
	g.LedgerInfo.Raw[10] ^= 1
	if err := h.VerifyLedgerInfo(g); err == nil {
		t.Fatal("altered genesis accepted")
	}
}

func TestVerifyEpochChainCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, _, err := VerifyEpochChain(ctx, genesisWaypoint(t), corpusSource(t, loadCorpusEndings(t)), ChainOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

package aptos

import (
	"errors"
	"fmt"
	"math/big"
	"sync"

	"github.com/cloudflare/circl/ecc/bls12381"
)

// BLSSignatureDST is the hash-to-curve domain separation tag of Aptos's BLS signatures:
// the proof-of-possession ciphersuite over G2 (min-pk), as in aptos-crypto's
// DST_BLS_SIG_IN_G2_WITH_POP.
const BLSSignatureDST = "BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_"

// ErrSignature is wrapped by every failed signature check: a bad signature, bitmask or
// signer, or a signer set below the quorum.
var ErrSignature = errors.New("signature check failed")

// parsePublicKey decodes a compressed G1 public key. circl's SetBytes rejects points off
// the curve or outside the prime-order subgroup; the identity is rejected here (Aptos
// validator keys carry proofs of possession, which the identity cannot have).
func parsePublicKey(b []byte) (*bls12381.G1, error) {
	if len(b) != PublicKeyLen {
		return nil, fmt.Errorf("public key is %d bytes, want %d", len(b), PublicKeyLen)
	}
	var p bls12381.G1
	if err := p.SetBytes(b); err != nil {
		return nil, fmt.Errorf("public key %x: %w", b, err)
	}
	if p.IsIdentity() {
		return nil, fmt.Errorf("public key %x is the identity", b)
	}
	return &p, nil
}

// verifyMultiSig checks a BLS multi-signature over msg by the aggregate of keys:
// e(sum keys, H(msg)) == e(g1, sig), computed as one product of two pairings.
func verifyMultiSig(keys []*bls12381.G1, msg, sig []byte) error {
	if len(keys) == 0 {
		return fmt.Errorf("%w: no signers", ErrSignature)
	}
	if len(sig) != SignatureLen {
		return fmt.Errorf("%w: signature is %d bytes, want %d", ErrSignature, len(sig), SignatureLen)
	}
	var s bls12381.G2
	if err := s.SetBytes(sig); err != nil { // also checks the subgroup
		return fmt.Errorf("%w: signature is not a G2 point: %v", ErrSignature, err)
	}
	if s.IsIdentity() {
		return fmt.Errorf("%w: signature is the identity", ErrSignature)
	}
	var agg bls12381.G1
	agg = *keys[0]
	for _, k := range keys[1:] {
		agg.Add(&agg, k)
	}
	if agg.IsIdentity() {
		return fmt.Errorf("%w: aggregate public key is the identity", ErrSignature)
	}
	var h bls12381.G2
	h.Hash(msg, []byte(BLSSignatureDST))
	e := bls12381.ProdPairFrac(
		[]*bls12381.G1{&agg, bls12381.G1Generator()},
		[]*bls12381.G2{&h, &s},
		[]int{1, -1})
	if !e.IsIdentity() {
		return ErrSignature
	}
	return nil
}

// validatorSet is an EpochState with its public keys parsed once, on first use.
type validatorSet struct {
	state *EpochState
	// quorum is the voting power a signer set needs: total*2/3+1 over u128, as in
	// Aptos's ValidatorVerifier::new (0 for an empty set).
	quorum *big.Int

	cache *keyCache // shared by the sets of one chain; may be nil

	once sync.Once
	keys []*bls12381.G1
	err  error
}

// keyCache holds parsed public keys by their encoding: consecutive validator sets
// mostly repeat the same keys, and parsing one (square root and subgroup check) costs
// about a tenth of a signature check. Parsed points are only read afterwards.
type keyCache struct {
	mu sync.Mutex
	m  map[[PublicKeyLen]byte]*bls12381.G1
}

func newKeyCache() *keyCache { return &keyCache{m: map[[PublicKeyLen]byte]*bls12381.G1{}} }

func (c *keyCache) parse(b []byte) (*bls12381.G1, error) {
	if c == nil || len(b) != PublicKeyLen {
		return parsePublicKey(b)
	}
	k := [PublicKeyLen]byte(b)
	c.mu.Lock()
	p, ok := c.m[k]
	c.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := parsePublicKey(b)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.m[k] = p
	c.mu.Unlock()
	return p, nil
}

func newValidatorSet(s *EpochState) *validatorSet {
	total := new(big.Int)
	for _, v := range s.Validators {
		total.Add(total, new(big.Int).SetUint64(v.VotingPower))
	}
	q := new(big.Int)
	if len(s.Validators) > 0 {
		q.Mul(total, big.NewInt(2))
		q.Quo(q, big.NewInt(3))
		q.Add(q, big.NewInt(1))
	}
	return &validatorSet{state: s, quorum: q}
}

func (v *validatorSet) publicKeys() ([]*bls12381.G1, error) {
	v.once.Do(func() {
		keys := make([]*bls12381.G1, len(v.state.Validators))
		for i := range v.state.Validators {
			k, err := v.cache.parse(v.state.Validators[i].PublicKey)
			if err != nil {
				v.err = fmt.Errorf("validator %d (0x%x) of epoch %d: %w", i, v.state.Validators[i].Address, v.state.Epoch, err)
				return
			}
			keys[i] = k
		}
		v.keys = keys
	})
	return v.keys, v.err
}

// checkSigners checks the bitmask and quorum (Aptos's check_num_of_voters and
// check_voting_power) and returns the signer indices.
func (v *validatorSet) checkSigners(sig *AggregateSignature) ([]int, error) {
	n := len(v.state.Validators)
	if want := (n + 7) / 8; len(sig.Bitmask) != want {
		return nil, fmt.Errorf("%w: bitmask of %d bytes for %d validators (want %d)", ErrSignature, len(sig.Bitmask), n, want)
	}
	signers := sig.Signers()
	power := new(big.Int)
	for _, i := range signers {
		if i >= n {
			return nil, fmt.Errorf("%w: bitmask names signer %d of only %d validators", ErrSignature, i, n)
		}
		power.Add(power, new(big.Int).SetUint64(v.state.Validators[i].VotingPower))
	}
	if power.Cmp(v.quorum) < 0 {
		return nil, fmt.Errorf("%w: signers' voting power %s below the quorum %s of the epoch %d validator set",
			ErrSignature, power, v.quorum, v.state.Epoch)
	}
	if sig.Signature == nil {
		return nil, fmt.Errorf("%w: no signature", ErrSignature)
	}
	return signers, nil
}

// verify checks that sig is a quorum signature of the set over msg.
func (v *validatorSet) verify(msg []byte, sig *AggregateSignature) (signers int, err error) {
	idx, err := v.checkSigners(sig)
	if err != nil {
		return 0, err
	}
	keys, err := v.publicKeys()
	if err != nil {
		return 0, err
	}
	sel := make([]*bls12381.G1, len(idx))
	for j, i := range idx {
		sel[j] = keys[i]
	}
	if err := verifyMultiSig(sel, msg, sig.Signature); err != nil {
		return 0, fmt.Errorf("%w (%d signers of %d)", err, len(idx), len(keys))
	}
	return len(idx), nil
}

package txn

import (
	"crypto/sha3"
	"fmt"
	"hash"

	"github.com/ledgervault/ledgervault/aptos"
)

// Hashing follows aptos-crypto's CryptoHasher in a chain's hash domain (package aptos's
// Domain: the salt prefix "APTOS::" or, on chains built from the diem fork of
// aptos-core such as 0L's libra v7, "DIEM::"): a value of a type named N hashes to
// SHA3-256(seed(N) || BCS(value)) with seed(N) = SHA3-256(prefix || N), and accumulator
// internal nodes to SHA3-256(seed(N) || left || right) with the accumulator's name.

// seeds holds the seeds of one domain.
type seeds struct {
	domain                                                *aptos.Domain
	transaction, transactionInfo, contractEvent, writeSet [32]byte
	eventAccumulator, transactionAccumulator              [32]byte
}

func seedsOf(d *aptos.Domain) *seeds {
	return &seeds{
		domain:                 d,
		transaction:            d.Seed("Transaction"),
		transactionInfo:        d.Seed("TransactionInfo"),
		contractEvent:          d.Seed("ContractEvent"),
		writeSet:               d.Seed("WriteSet"),
		eventAccumulator:       d.Seed("EventAccumulator"),
		transactionAccumulator: d.Seed("TransactionAccumulator"),
	}
}

// Hashes are the hashes of one record in one domain.
type Hashes struct {
	// Transaction is the transaction's hash (CryptoHasher "Transaction"), which the
	// info must carry as transaction_hash.
	Transaction HashValue
	// Info is the TransactionInfo's hash (CryptoHasher "TransactionInfo"): the
	// accumulator leaf of the record's version.
	Info HashValue
	// EventRoot is the root of the event accumulator over the events' hashes
	// (CryptoHasher "ContractEvent" leaves, "EventAccumulator" nodes, the placeholder
	// when there are none), which the info must carry as event_root_hash.
	EventRoot HashValue
	// WriteSet is the write set's hash (CryptoHasher "WriteSet"), which the info must
	// carry as state_change_hash.
	WriteSet HashValue
}

// Hash returns the record's hashes in domain d.
func (r *Record) Hash(d *aptos.Domain) Hashes {
	var scratch []HashValue
	return newHasher().hashes(seedsOf(d), r, &scratch)
}

// hashes computes r's hashes; *scratch is reused for the event accumulator.
func (x *hasher) hashes(s *seeds, r *Record, scratch *[]HashValue) Hashes {
	h := Hashes{
		Transaction: x.sum(&s.transaction, r.txnBytes),
		Info:        x.sum(&s.transactionInfo, r.infoBytes),
		WriteSet:    x.sum(&s.writeSet, r.writeSetBytes),
	}
	h.EventRoot, *scratch = x.eventRoot(s, r.eventBytes, (*scratch)[:0])
	return h
}

// check returns an error naming the first hash of h that disagrees with the record's
// info.
func (r *Record) check(h *Hashes) error {
	switch {
	case h.Transaction != r.Info.TransactionHash:
		return fmt.Errorf("%w: transaction hashes to %s, its info says transaction_hash %s", ErrMismatch, h.Transaction, r.Info.TransactionHash)
	case h.EventRoot != r.Info.EventRootHash:
		return fmt.Errorf("%w: %d events have root %s, its info says event_root_hash %s", ErrMismatch, len(r.Events), h.EventRoot, r.Info.EventRootHash)
	case h.WriteSet != r.Info.StateChangeHash:
		return fmt.Errorf("%w: write set hashes to %s, its info says state_change_hash %s", ErrMismatch, h.WriteSet, r.Info.StateChangeHash)
	}
	return nil
}

// DetectDomain returns the domain of aptos.KnownDomains under which the record's
// transaction hashes to the transaction_hash its info carries, or nil if there is none.
// It is only a guess of which rules to apply: everything is still verified under the
// domain, up to a signed ledger info.
func DetectDomain(r *Record) *aptos.Domain {
	x := newHasher()
	for _, d := range aptos.KnownDomains {
		seed := [32]byte(d.Seed("Transaction"))
		if x.sum(&seed, r.txnBytes) == r.Info.TransactionHash {
			return d
		}
	}
	return nil
}

// hasher computes seeded SHA3-256 hashes, reusing one state. It is not safe for
// concurrent use; each goroutine uses its own.
type hasher struct {
	h   hash.Hash
	out HashValue
}

func newHasher() *hasher { return &hasher{h: sha3.New256()} }

func (x *hasher) sum(seed *[32]byte, parts ...[]byte) HashValue {
	x.h.Reset()
	x.h.Write(seed[:])
	for _, p := range parts {
		x.h.Write(p)
	}
	x.h.Sum(x.out[:0])
	return x.out
}

func (x *hasher) node(seed *[32]byte, left, right HashValue) HashValue {
	return x.sum(seed, left[:], right[:])
}

// eventRoot computes the in-memory accumulator root over the event hashes, using
// scratch for the frozen subtree roots, and returns scratch for reuse.
func (x *hasher) eventRoot(s *seeds, events [][]byte, scratch []HashValue) (HashValue, []HashValue) {
	if len(events) == 0 {
		return aptos.AccumulatorPlaceholderHash, scratch
	}
	frozen := scratch[:0]
	for i, e := range events {
		frozen = append(frozen, x.sum(&s.contractEvent, e))
		// Merge as many times as the number of leaves before this one has trailing ones.
		for n := uint64(i); n&1 == 1; n >>= 1 {
			right := frozen[len(frozen)-1]
			left := frozen[len(frozen)-2]
			frozen = frozen[:len(frozen)-2]
			frozen = append(frozen, x.node(&s.eventAccumulator, left, right))
		}
	}
	return accumulatorRoot(x, &s.eventAccumulator, frozen, uint64(len(events))), frozen
}

// accumulatorRoot combines the frozen subtree roots of an accumulator of numLeaves
// leaves into its root, padding the right with placeholders as Aptos's
// InMemoryAccumulator::compute_root_hash does.
func accumulatorRoot(x *hasher, seed *[32]byte, frozen []HashValue, numLeaves uint64) HashValue {
	switch len(frozen) {
	case 0:
		return aptos.AccumulatorPlaceholderHash
	case 1:
		return frozen[0]
	}
	bitmap := numLeaves
	for bitmap&1 == 0 {
		bitmap >>= 1
	}
	cur := aptos.AccumulatorPlaceholderHash
	i := len(frozen) - 1
	for bitmap > 0 {
		if bitmap&1 != 0 {
			cur = x.node(seed, frozen[i], cur)
			i--
		} else {
			cur = x.node(seed, cur, aptos.AccumulatorPlaceholderHash)
		}
		bitmap >>= 1
	}
	return cur
}

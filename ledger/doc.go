// Package ledger is the data model of the authenticated ledger: transactions with their
// write sets, events and TransactionInfo; validator sets, signed LedgerInfos, waypoints
// and the verified epoch history; and their canonical encoding.
//
// Canonical encoding: every hashed or signed structure has exactly one encoding, CBOR in
// core deterministic mode with structures as arrays (Encode). Decoders (DecodeXxx) check
// a per-type input size cap, reject indefinite lengths, tags, duplicate map keys, more
// than 65536 array elements and deep nesting, re-encode the decoded value and reject the
// input unless it is byte-identical, then validate the value's own invariants (sorted
// unique write-set keys, size limits, hashes that Info commits to...). Hashes are
// HashOf(domain, canonical bytes) with one domain per type.
//
// Versions number transactions from 0. The transaction accumulator (package
// ledger/accumulator) is an RFC 6962 tree over TransactionInfo hashes; a LedgerInfo at
// version v carries the root of the accumulator with v+1 leaves.
//
// Epochs: the ledger info that ends epoch e carries the validator set of epoch e+1; the
// genesis ledger info (epoch 0, version 0) carries the set of epoch 1 and is trusted
// through a Waypoint. Ledger infos of epoch e are signed by more than 2/3 of the voting
// power of epoch e's validators (ed25519 over the LedgerInfo hash). EpochHistory walks
// the chain of epoch endings from a waypoint and verifies ledger infos of known epochs.
package ledger

// Package aptos verifies what an Aptos-framework chain's backup-cli backups claim: the
// chain of signed epoch-ending ledger infos from a trusted waypoint (BLS12-381
// aggregate signatures by a quorum of each epoch's validator set), ledger infos of later
// backups against that chain, transaction accumulator proofs (single leaves and ranges)
// and state snapshot root proofs.
//
// It reads bytes handed to it (decoded records and proof files); reading them from
// storage is the job of the backup-cli format package. Every decoder is strict BCS with
// limits (package aptos/bcs) and every error names what was being verified.
//
// Hashing follows aptos-crypto: a type's hash is SHA3-256(seed || bcs(value)) where
// seed = SHA3-256("APTOS::" || type name); a signature signs seed || bcs(value) (the
// signing message), not the hash.
package aptos

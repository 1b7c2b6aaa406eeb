// Package proof holds the proofs that tie backed-up data to signed ledger infos, and
// the node's database state, with their canonical encodings and size limits.
//
// The same bytes are the answers of the backup service (package backupservice) and
// the proof files of a backup in storage: state_root.proof holds an encoded StateRoot,
// each transaction chunk's proof file an encoded TransactionRange. The package sits
// below the store (ledgerdb returns these types), the service and every reader of
// backups, and depends only on the ledger packages.
package proof

// Package txn decodes and verifies the transaction backups that Aptos backup-cli writes
// for chains on the Aptos framework as it was in 2023 (such as 0L's libra v7, the
// aptos-libra7 corpus).
//
// A transaction backup is a manifest of chunks; each chunk is a file of records, every
// record a big-endian u32 length and the BCS tuple (Transaction, TransactionInfo,
// Vec<ContractEvent>, WriteSet) of one version, and a proof file, the BCS tuple
// (TransactionAccumulatorRangeProof, LedgerInfoWithSignatures).
//
// DecodeRecord decodes one record fully and strictly: every enum variant must be one
// the 2023 framework defines (Transaction: UserTransaction, GenesisTransaction,
// BlockMetadata, StateCheckpoint; payloads Script, ModuleBundle, EntryFunction,
// Multisig; authenticators Ed25519, MultiEd25519, MultiAgent, FeePayer; ContractEvent V0
// and V1; WriteOp with and without StateValueMetadata; StateKey AccessPath, TableItem,
// Raw), every byte must be consumed, BCS must be canonical (package aptos/bcs), the
// write set's map keys strictly increasing, key and signature lengths and MultiEd25519
// thresholds and bitmaps those aptos-crypto accepts, every Ed25519 signature's S below
// the group order (aptos-crypto refuses to verify one that is not, so no committed
// transaction carries one), TypeTag nesting at most
// MaxTypeTagDepth, and a record at most MaxRecordSize bytes and MaxRecordElements
// sequence elements. As in aptos-core, identifiers are any UTF-8 string (the VM
// enforces the Move grammar when it uses a name). Not checked at decoding: that
// Ed25519 keys decompress to curve points and that VM status codes are ones the VM
// defines (aptos-core's own checks there changed between versions; neither can change a
// hash, and every hash is proven up to a signed ledger info).
//
// VerifyChunk verifies one chunk as it streams: each record's transaction must hash to
// its info's transaction_hash, its events' accumulator root must be the info's
// event_root_hash and its write set's hash the info's state_change_hash; the infos'
// hashes, in version order, must be proven by the chunk's range proof into the
// accumulator root of the proof's ledger info, which a LedgerInfoVerifier (package
// aptos's EpochHistory, verified from a trusted waypoint) must accept. Decoding and
// hashing run on several goroutines; the range proof is checked incrementally with
// O(log n) hashes, so memory does not grow with the chunk.
//
// Hashing is aptos-crypto's CryptoHasher in the chain's hash domain (aptos.Domain):
// "APTOS::" on Aptos itself, "DIEM::" on libra7, whose every hash matches only there.
package txn

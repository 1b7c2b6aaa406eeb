// Package state verifies the chunks of an Aptos backup-cli state snapshot: it decodes
// each chunk's records strictly and rebuilds the Jellyfish Merkle root from them and
// the chunks' range proofs, as aptos-core's JellyfishMerkleRestore does when it restores
// a snapshot, but without writing a tree.
//
// A chunk is a stream of records, each a big-endian u32 length and the BCS tuple
// (StateKey, StateValue) of the 2023 Aptos framework (StateKey AccessPath, TableItem or
// Raw; StateValue V0 or WithMetadata). A leaf's key is CryptoHash(StateKey) (the
// "StateKey" hasher over the key's storage encoding: a tag byte then its fields), its
// value hash CryptoHash(StateValue) (the "StateValue" hasher over the value's BCS). The
// tree is the binary sparse Merkle tree of package ledger/smt with the chain's hashing:
// a leaf hashes to SparseMerkleLeafNode(key, value_hash), an internal node to
// SparseMerkleInternal(left, right), an empty subtree is the placeholder, and a subtree
// of one leaf is that leaf.
//
// Tree keeps what a streaming restore keeps: the last leaf and the left siblings of its
// path (at most 256 subtree hashes), so memory does not grow with the snapshot. After
// each chunk the chunk's SparseMerkleRangeProof (the right siblings of the path to the
// chunk's last leaf) and those left siblings must hash to the manifest's root; after
// the last chunk the tree without right siblings must too, so no leaf is missing.
package state

// Package smt is ledgervault's authenticated state tree: a versioned binary sparse Merkle
// tree over SHA-256 key hashes, stored Jellyfish-Merkle style, with inclusion and
// non-inclusion proofs, range proofs for snapshot chunks, and a streaming Builder that
// restores a tree from verified chunks.
//
// # The tree
//
// A subtree holding no leaf hashes to PlaceholderHash; a subtree holding exactly one
// leaf is collapsed to that leaf, whose hash is HashOf(DomainSMTLeaf, keyHash,
// valueHash); any other subtree hashes to HashOf(DomainSMTInternal, left, right). The
// root is therefore a pure function of the set of (keyHash, valueHash) pairs. Bit i of a
// key hash (i = 0 is the most significant bit of byte 0) chooses the child at depth i:
// 0 left, 1 right, so left-to-right order is the byte order of key hashes.
//
// # Storage
//
// Every node is written once, by the version that created it, under a NodeKey (version,
// depth, path) and never changed, so every version stays readable from its RootRef
// (archive). An internal node records, per child, the hash, the version that wrote the
// child node, whether it is a leaf, and its leaf count (used to find the i-th leaf). The
// package is storage-agnostic: a store implements NodeReader and persists the NodeWrites
// the package returns (NodeKey.Bytes → Node.MarshalBinary), plus a RootRef per version
// (RootRef.AppendBinary).
//
// # Use by a store
//
//   - Commit a block: ApplyBlock(ctx, store, prevRoot, firstVersion, writeSets) returns
//     each version's root and the nodes to write; it layers the pending nodes over the
//     store with an Overlay, which a caller can also use directly around Apply. On a
//     large tree it applies the two halves under the root on two goroutines, each
//     version's updates of a half touching only that half, and computes each
//     version's root from the two: the store's NodeReader must be safe for concurrent
//     use.
//   - Serve reads at any version: Get, LeafAtIndex, Leaves (in key-hash order, for
//     snapshot backups), Prove and ProveRange (the range proof of a chunk's last leaf).
//   - Restore: NewBuilder(root, version), then for each chunk AddChunk(leaves, proof);
//     persist the returned nodes together with Checkpoint() in one atomic write, so a
//     restarted restore continues with ResumeBuilder; Finish checks the root and returns
//     the last nodes. The restored nodes are exactly those Apply would write for the
//     same set at that version, so the store serves proofs and applies later write sets
//     on top of them. Nodes come in key order, so a store writes each chunk's nodes as a
//     sorted run after everything before (only ancestors of earlier nodes sort before);
//     AddChunkFunc streams them encoded while the chunk is verified. NewChunkVerifier
//     verifies chunks the same way without nodes.
package smt

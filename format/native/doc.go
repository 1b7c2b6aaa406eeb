// Package native owns ledgervault's own storage format: everything a reader of a
// backup store must agree on with its writer.
//
//   - The JSON files that describe backups: the manifest of each backup (its chunks
//     with their ranges, sizes and SHA-256, and its proofs) and the metadata lines that
//     make a backup discoverable (manifest.go, metadata.go, types.go). Decoding is
//     strict (unknown fields, trailing data and oversized input are errors) and every
//     file handle read back is validated before use, because these files come from
//     storage that restore and verify do not trust.
//   - Every file and folder name rule: metadata, compacted metadata and lease files,
//     backup folders, chunks, proofs, manifests and the tags of resumed attempts
//     (names.go).
//   - The chunk writer (chunkwriter.go): records framed by package records, compressed
//     with zstd, hashed with SHA-256 while they stream into storage.
//   - The one chunk decoder (chunkread.go) that every reader of chunk files uses:
//     sizes and SHA-256 checked against the manifest before any record is used, zstd
//     window and memory bounded, output capped, records bounded, trailer checked.
//
// The format is described in docs/backup-format.md.
package native

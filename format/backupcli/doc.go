// Package backupcli reads the on-storage format of the Aptos/Diem backup-cli, the
// tool ledgervault replaces, so that stores it wrote can be listed, audited and
// cleaned in place.
//
// What it decodes, each with limits:
//
//   - metadata files (metadata/*.meta): one JSON object per line, an externally
//     tagged enum (EpochEndingBackup, StateSnapshotBackup with or without epoch,
//     TransactionBackup, Identity, CompactionTimestamps); compacted files carry many
//     lines of the same variants (DecodeMetadataFile);
//   - the three JSON manifests (DecodeEpochEndingManifest, DecodeStateSnapshotManifest,
//     DecodeTransactionManifest), with backup-cli's own consistency checks (Verify);
//   - chunk files: records each framed by a big-endian u32 length (Records), and
//     inside them the little that an audit needs (the epoch and version of a ledger
//     info, the hashed key of a state record);
//   - the gzip layer operators' configs add (`gzip -c` on write): a file that starts
//     with the gzip magic is decompressed transparently, members concatenated, with a
//     cap on the decompressed size and a distinct error for a truncated stream
//     (Decompress).
//
// Format facts were checked against aptos-core's storage/backup/backup-cli sources and
// against the real stores in shared/corpora (Diem 1.x and Aptos generations).
package backupcli

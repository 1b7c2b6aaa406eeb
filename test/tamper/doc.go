// Package tamper is a black-box suite for `ledgervault restore` and `ledgervault
// verify`: it makes one good backup with the real binary, then applies one
// corruption at a time to a copy of it (flipped bits, truncated, swapped, duplicated
// and missing chunks, path traversal in handles, oversized record length prefixes, a
// zstd bomb, forged and missing signatures, ledger infos of unknown epochs, wrong
// range proofs, state root mismatches, broken metadata) and checks that both commands
// fail with a clear error naming the file, without a panic, within a memory cap and
// without writing anything outside the restore target directory.
//
// The adversarial files are built with the project's own encoders (manifest, records,
// zstd, ledger CBOR) and every hash the corruption does not target is updated, so that
// only the check under test can catch each case; TestCorruptionsArePrecise checks
// that with the project's decoders, without the binary.
//
// Run it with `go test -race ./test/tamper` (it builds ./cmd/ledgervault and
// test/tamper/rsshelper once; -v prints the table of cases). TAMPER_BIN=PATH runs a
// prebuilt ledgervault instead; TAMPER_KEEP=1 keeps the good backup and node in
// $TMPDIR/ledgervault-tamper-*.
package tamper

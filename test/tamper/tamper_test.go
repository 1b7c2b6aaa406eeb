package tamper

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/ledgervault/ledgervault/format/native"
	"github.com/ledgervault/ledgervault/ledger"
	"github.com/ledgervault/ledgervault/ledger/proof"
	"github.com/ledgervault/ledgervault/ledger/smt"
	"github.com/ledgervault/ledgervault/records"
)

// rssCap bounds the peak RSS of verify and restore on every case: far below the
// bomb's 4.25 GiB.
const rssCap = 512 << 20

// tamperCase is one corruption of the good backup.
type tamperCase struct {
	name string
	// words: the error must contain at least one of them (case-insensitive): what is
	// wrong.
	words []string
	// sound: after apply, every manifest and metadata file still decodes and every
	// listed file matches its size and SHA-256 (checked before running the binary),
	// so only a deeper check can catch the case.
	sound bool
	// apply corrupts the backup copy and returns the names that identify the
	// affected file (handles, base names or folder names): the error must contain
	// one of them.
	apply func(b *bk) []string
}

// Words of the message by kind of problem.
var (
	wordsChecksum = []string{"sha256", "sha-256", "checksum", "hash", "digest", "mismatch", "size", "does not match"}
	wordsContent  = []string{"root", "proof", "mismatch", "hash", "verify", "key", "item", "count", "range", "expected", "version"}
	wordsMissing  = []string{"not found", "no such file", "missing", "not exist", "does not exist"}
	wordsRecord   = []string{"record", "length", "prefix", "trailer", "corrupt", "too large", "limit", "end of stream"}
	wordsBomb     = []string{"size", "large", "limit", "exceed", "raw", "decompress", "more than", "bytes"}
	wordsHandle   = []string{"handle", "path", "invalid", "..", "absolute"}
	wordsSig      = []string{"signature", "signed", "quorum", "voting power"}
	wordsEpoch    = []string{"epoch", "beyond", "history", "unknown"}
	wordsRoot     = []string{"root", "mismatch"}
	wordsMeta     = []string{"metadata", "json", "invalid", "unexpected", "type"}
)

func names(hs ...string) []string { return hs }

func cases() []tamperCase {
	return []tamperCase{
		{name: "state_chunk_bitflip", words: wordsChecksum, apply: func(b *bk) []string {
			c := &b.state.Chunks[0]
			b.flipBit(c.Handle)
			return names(base(c.Handle))
		}},
		{name: "state_chunk_truncated", words: append(wordsChecksum, "truncated", "short"), apply: func(b *bk) []string {
			c := &b.state.Chunks[0]
			data := b.read(string(c.Handle))
			b.write(string(c.Handle), data[:len(data)/2])
			return names(base(c.Handle))
		}},
		{name: "txn_chunk_bitflip", words: wordsChecksum, apply: func(b *bk) []string {
			c := &b.txn.Chunks[b.txnChunksAfterSnapshot()[0]]
			b.flipBit(c.Handle)
			return names(base(c.Handle))
		}},
		{name: "txn_chunk_bitflip_restore_to_it", words: wordsChecksum, apply: func(b *bk) []string {
			// Restore to the last version of the damaged chunk, not the latest.
			c := &b.txn.Chunks[b.txnChunksAfterSnapshot()[1]]
			b.flipBit(c.Handle)
			b.target = strconv.FormatUint(c.LastVersion, 10)
			return names(base(c.Handle))
		}},
		{name: "epoch_chunk_truncated", words: append(wordsChecksum, "truncated", "short"), apply: func(b *bk) []string {
			c := &b.epochs[1].Chunks[0]
			data := b.read(string(c.Handle))
			b.write(string(c.Handle), data[:len(data)-7])
			return names(base(c.Handle))
		}},
		{name: "state_files_swapped", words: wordsChecksum, apply: func(b *bk) []string {
			x, y := b.state.Chunks[0].Handle, b.state.Chunks[1].Handle
			dx, dy := b.read(string(x)), b.read(string(y))
			b.write(string(x), dy)
			b.write(string(y), dx)
			return names(base(x), base(y))
		}},
		{name: "state_entries_swapped", words: wordsContent, sound: true, apply: func(b *bk) []string {
			x, y := &b.state.Chunks[0], &b.state.Chunks[1]
			x.File, y.File = y.File, x.File
			b.saveState()
			return names(base(x.Handle), base(y.Handle))
		}},
		{name: "txn_entries_swapped", words: wordsContent, sound: true, apply: func(b *bk) []string {
			after := b.txnChunksAfterSnapshot()
			x, y := &b.txn.Chunks[after[0]], &b.txn.Chunks[after[1]]
			x.File, y.File = y.File, x.File
			b.saveTxn()
			return names(base(x.Handle), base(y.Handle))
		}},
		{name: "state_chunk_listed_twice", words: wordsContent, sound: true, apply: func(b *bk) []string {
			// Entry 1 keeps its range and key hashes but lists the file of entry 0.
			b.state.Chunks[1].File = b.state.Chunks[0].File
			b.saveState()
			return names(base(b.state.Chunks[0].Handle), base(b.state.Chunks[1].Proof.Handle))
		}},
		{name: "txn_entry_duplicated", words: []string{"manifest", "overlap", "covers", "start", "duplicate"}, apply: func(b *bk) []string {
			i := b.txnChunksAfterSnapshot()[0]
			cs := b.txn.Chunks
			b.txn.Chunks = append(append(cs[:i+1:i+1], cs[i]), cs[i+1:]...)
			b.saveTxn()
			return names(b.txnDir)
		}},
		{name: "state_chunk_file_missing", words: wordsMissing, apply: func(b *bk) []string {
			h := b.state.Chunks[1].Handle
			if err := os.Remove(b.path(string(h))); err != nil {
				b.t.Fatal(err)
			}
			return names(base(h))
		}},
		{name: "txn_entry_removed", words: []string{"manifest", "gap", "covers", "start", "missing"}, apply: func(b *bk) []string {
			i := b.txnChunksAfterSnapshot()[0]
			b.txn.Chunks = append(b.txn.Chunks[:i:i], b.txn.Chunks[i+1:]...)
			b.saveTxn()
			return names(b.txnDir)
		}},
		{name: "state_last_entry_removed", words: append(wordsRoot, "count", "item", "proof"), sound: true, apply: func(b *bk) []string {
			// Drop the last chunk and the item count to match: the manifest is valid,
			// only the rebuilt tree misses the dropped leaves.
			last := b.state.Chunks[len(b.state.Chunks)-1]
			b.state.Chunks = b.state.Chunks[:len(b.state.Chunks)-1]
			b.state.ItemCount = last.FirstIndex
			b.saveState()
			return names(b.stateDir, base(b.state.Chunks[len(b.state.Chunks)-1].Handle), base(b.state.Chunks[len(b.state.Chunks)-1].Proof.Handle))
		}},
		{name: "handle_dotdot", words: wordsHandle, apply: func(b *bk) []string {
			// A working copy of the chunk sits at ../x, so only the handle check stops
			// a restore from reading outside the storage.
			c := &b.state.Chunks[0]
			data := b.read(string(c.Handle))
			if err := os.WriteFile(filepath.Join(b.root, "..", "x"), data, 0o644); err != nil {
				b.t.Fatal(err)
			}
			c.Handle = "../x"
			b.saveState()
			return names(b.stateDir, "../x")
		}},
		{name: "handle_absolute", words: wordsHandle, apply: func(b *bk) []string {
			c := &b.state.Chunks[0]
			data, err := os.ReadFile("/etc/passwd")
			if err != nil {
				b.t.Fatal(err)
			}
			c.Handle = "/etc/passwd"
			c.Size = int64(len(data))
			c.SHA256 = sha256Sum(data)
			b.saveState()
			return names(b.stateDir, "/etc/passwd")
		}},
		{name: "record_prefix_ffffffff", words: wordsRecord, sound: true, apply: func(b *bk) []string {
			// The first record's length prefix becomes 2^32-1 (the end marker), the
			// bytes after it unchanged; the file is re-compressed and its size and
			// hash updated, so only the records decoder can catch it.
			c := &b.state.Chunks[0]
			raw := decompress(b.t, b.read(string(c.Handle)))
			binary.BigEndian.PutUint32(raw, 0xFFFFFFFF)
			b.writeFile(&c.File, compress(b.t, raw), int64(len(raw)))
			b.saveState()
			return names(base(c.Handle))
		}},
		{name: "record_prefix_fffffffe", words: wordsRecord, sound: true, apply: func(b *bk) []string {
			// A length prefix of 2^32-2: an oversized record, not the end marker.
			c := &b.state.Chunks[0]
			raw := decompress(b.t, b.read(string(c.Handle)))
			binary.BigEndian.PutUint32(raw, 0xFFFFFFFE)
			b.writeFile(&c.File, compress(b.t, raw), int64(len(raw)))
			b.saveState()
			return names(base(c.Handle))
		}},
		{name: "zstd_bomb", words: append(wordsBomb, wordsRecord...), sound: true, apply: func(b *bk) []string {
			// The chunk's real records without trailer, then 4.25 GiB of well-formed
			// records, in about 140 KB; the manifest's raw size stays the real (small)
			// one, size and hash match the bomb.
			c := &b.state.Chunks[0]
			bomb := zstdBomb(trailerless(b.t, b.readRecords(c.Handle)))
			b.writeFile(&c.File, bomb, -1)
			b.saveState()
			return names(base(c.Handle))
		}},
		{name: "forged_signature", words: wordsSig, sound: true, apply: func(b *bk) []string {
			c := &b.epochs[1].Chunks[0]
			b.editLedgerInfo(&c.File, func(li *ledger.LedgerInfoWithSignatures) {
				li.Signatures[0].Signature[7] ^= 0x01
			})
			b.saveEpochs(1)
			return names(base(c.Handle))
		}},
		{name: "missing_signatures", words: wordsSig, sound: true, apply: func(b *bk) []string {
			c := &b.epochs[1].Chunks[0]
			b.editLedgerInfo(&c.File, func(li *ledger.LedgerInfoWithSignatures) {
				// Half of the (equal-power) validators: not more than two thirds.
				li.Signatures = li.Signatures[:len(li.Signatures)/2]
			})
			b.saveEpochs(1)
			return names(base(c.Handle))
		}},
		{name: "txn_proof_forged_signature", words: wordsSig, sound: true, apply: func(b *bk) []string {
			// A signature of the ledger info a replayed chunk's range proof is
			// against: the ledger info must be verified, not only its epoch.
			c := &b.txn.Chunks[b.txnChunksAfterSnapshot()[0]]
			p, err := proof.DecodeTransactionRange(b.read(string(c.Proof.Handle)))
			if err != nil {
				b.t.Fatal(err)
			}
			p.LedgerInfo.Signatures[0].Signature[3] ^= 0x40
			data, err := p.Encode()
			if err != nil {
				b.t.Fatal(err)
			}
			b.writeFile(&c.Proof, data, int64(len(data)))
			b.saveTxn()
			return names(base(c.Proof.Handle))
		}},
		{name: "state_root_proof_forged_signature", words: wordsSig, sound: true, apply: func(b *bk) []string {
			p := b.stateRootProof()
			p.LedgerInfo.Signatures[0].Signature[5] ^= 0x02
			b.saveStateRootProof(&p)
			return names(base(b.state.RootProof.Handle))
		}},
		{name: "state_root_proof_info_changed", words: []string{"proof", "accumulator", "inclusion", "root", "verify"}, sound: true, apply: func(b *bk) []string {
			// The snapshot claims another state root, in its root proof's transaction
			// info and in its manifest: only the accumulator inclusion proof of that
			// info (against the signed ledger info) can tell.
			p := b.stateRootProof()
			p.Info.StateRootHash[0] ^= 0x01
			b.state.RootHash = p.Info.StateRootHash
			b.saveStateRootProof(&p)
			return names(base(b.state.RootProof.Handle))
		}},
		{name: "txn_proof_unknown_epoch", words: wordsEpoch, sound: true, apply: func(b *bk) []string {
			c := &b.txn.Chunks[b.txnChunksAfterSnapshot()[0]]
			p, err := proof.DecodeTransactionRange(b.read(string(c.Proof.Handle)))
			if err != nil {
				b.t.Fatal(err)
			}
			p.LedgerInfo.LedgerInfo.Epoch += 100
			data, err := p.Encode()
			if err != nil {
				b.t.Fatal(err)
			}
			b.writeFile(&c.Proof, data, int64(len(data)))
			b.saveTxn()
			return names(base(c.Proof.Handle))
		}},
		{name: "epoch_backup_removed", words: wordsEpoch, sound: true, apply: func(b *bk) []string {
			// Without the later epoch-ending backup, the history ends before the
			// snapshot's and the transactions' ledger infos.
			if err := os.Remove(filepath.Join(b.root, "metadata", b.metas["epoch_ending_2"])); err != nil {
				b.t.Fatal(err)
			}
			ns := names(base(b.state.RootProof.Handle), b.stateDir)
			for _, c := range b.txn.Chunks {
				ns = append(ns, base(c.Proof.Handle))
			}
			return ns
		}},
		{name: "txn_wrong_range_proof", words: wordsContent, sound: true, apply: func(b *bk) []string {
			after := b.txnChunksAfterSnapshot()
			x, y := &b.txn.Chunks[after[0]], &b.txn.Chunks[after[1]]
			data := b.read(string(y.Proof.Handle))
			b.writeFile(&x.Proof, data, int64(len(data)))
			b.saveTxn()
			return names(base(x.Proof.Handle), base(x.Handle))
		}},
		{name: "state_wrong_range_proof", words: wordsContent, sound: true, apply: func(b *bk) []string {
			x, y := &b.state.Chunks[0], &b.state.Chunks[1]
			data := b.read(string(y.Proof.Handle))
			b.writeFile(&x.Proof, data, int64(len(data)))
			b.saveState()
			return names(base(x.Proof.Handle), base(x.Handle))
		}},
		{name: "state_root_hash_changed", words: wordsRoot, sound: true, apply: func(b *bk) []string {
			b.state.RootHash[0] ^= 0x80
			b.saveState()
			return names(b.stateDir, base(b.state.RootProof.Handle))
		}},
		{name: "state_value_changed", words: wordsContent, sound: true, apply: func(b *bk) []string {
			// One value byte of one state item changes; the records, the file size and
			// hash are all consistent: only the Merkle check can catch it.
			c := &b.state.Chunks[0]
			recs := b.readRecords(c.Handle)
			changed := false
			for i, r := range recs {
				k, v, err := records.SplitKeyValue(r, 1<<16)
				if err != nil {
					b.t.Fatalf("state item %d of %s: %v", i, c.Handle, err)
				}
				if len(v) > 0 && i > 0 {
					v[len(v)-1] ^= 0x01
					_ = k
					changed = true
					break
				}
			}
			if !changed {
				b.t.Fatalf("no state item with a value in %s", c.Handle)
			}
			b.writeRecords(&c.File, recs)
			b.saveState()
			return names(base(c.Handle))
		}},
		{name: "zstd_bomb_raw_size_lie", words: append(wordsBomb, wordsRecord...), sound: true, apply: func(b *bk) []string {
			// The bomb again, its manifest entry claiming its real 4.25 GiB raw size:
			// only a bound on what a manifest may claim stops it before decoding.
			c := &b.state.Chunks[0]
			bomb := zstdBomb(trailerless(b.t, b.readRecords(c.Handle)))
			b.writeFile(&c.File, bomb, int64(len(trailerless(b.t, b.readRecords(c.Handle))))+bombSize)
			b.saveState()
			return names(base(c.Handle))
		}},
		{name: "genesis_ledger_info_changed", words: []string{"waypoint", "genesis", "trusted", "hash"}, sound: true, apply: func(b *bk) []string {
			// The genesis ledger info (the root of trust) with another timestamp: only
			// the waypoint can tell.
			c := &b.epochs[0].Chunks[0]
			b.editLedgerInfo(&c.File, func(li *ledger.LedgerInfoWithSignatures) {
				if li.LedgerInfo.Epoch != 0 {
					b.t.Fatalf("first ledger info of %s is of epoch %d", c.Handle, li.LedgerInfo.Epoch)
				}
				li.LedgerInfo.TimestampUsec++
				// The manifest names the forged ledger info, as a forger would write it.
				b.epochs[0].Waypoints[0] = ledger.NewWaypoint(&li.LedgerInfo)
			})
			b.saveEpochs(0)
			return names(base(c.Handle))
		}},
		{name: "txn_write_value_changed", words: []string{"write set", "hash", "info", "match"}, sound: true, apply: func(b *bk) []string {
			// A value written by a replayed transaction changes: only the transaction
			// info's commitment to its write set can tell.
			c := b.editTransaction(func(t *ledger.TransactionWithOutput) {
				t.WriteSet[0].Value = append(bytes.Clone(t.WriteSet[0].Value), 'x')
			})
			return names(base(c.Handle))
		}},
		{name: "txn_write_recommitted", words: []string{"proof", "accumulator", "root", "verify", "range"}, sound: true, apply: func(b *bk) []string {
			// The same change with the info updated to commit to it: only the
			// accumulator range proof can tell.
			c := b.editTransaction(func(t *ledger.TransactionWithOutput) {
				t.WriteSet[0].Value = append(bytes.Clone(t.WriteSet[0].Value), 'x')
				t.Info.WriteSetHash = t.WriteSet.Hash()
			})
			return names(base(c.Handle), base(c.Proof.Handle))
		}},
		{name: "manifest_broken_json", words: []string{"json", "unexpected", "invalid", "manifest"}, apply: func(b *bk) []string {
			data := b.read(b.stateDir + "/manifest.json")
			b.write(b.stateDir+"/manifest.json", data[:len(data)/2])
			return names(b.stateDir)
		}},
		{name: "metadata_manifest_dotdot", words: wordsHandle, apply: func(b *bk) []string {
			// The metadata line points at a (good) copy of the manifest outside the
			// storage.
			name := b.metas[native.TypeTransaction]
			outside := filepath.Join(b.root, "..", "outside")
			copyTree(b.t, b.path(b.txnDir), outside)
			var line map[string]any
			if err := json.Unmarshal(b.read("metadata/"+name), &line); err != nil {
				b.t.Fatal(err)
			}
			line["manifest"] = "../outside/manifest.json"
			data, _ := json.Marshal(line)
			b.write("metadata/"+name, append(data, '\n'))
			return names(name, "../outside")
		}},
		{name: "txn_manifest_short_of_metadata", words: []string{"metadata", "version", "cover", "range", "manifest"}, sound: true, apply: func(b *bk) []string {
			// A valid manifest that ends one chunk before what its metadata line
			// promises (and a restore to the latest version needs).
			n := len(b.txn.Chunks)
			b.txn.Chunks = b.txn.Chunks[:n-1]
			b.txn.LastVersion = b.txn.Chunks[n-2].LastVersion
			b.saveTxn()
			return names(b.txnDir)
		}},
		{name: "epoch_entries_swapped", words: append([]string{"epoch", "waypoint", "skip"}, wordsContent...), sound: true, apply: func(b *bk) []string {
			x, y := &b.epochs[1].Chunks[0], &b.epochs[1].Chunks[1]
			x.File, y.File = y.File, x.File
			b.saveEpochs(1)
			return names(base(x.Handle), base(y.Handle))
		}},
		{name: "state_proof_oversized", words: []string{"size", "limit", "large", "exceed", "bytes"}, sound: true, apply: func(b *bk) []string {
			// A 17 MiB range proof, size and hash matching: only a size limit on
			// proofs keeps it out of memory.
			c := &b.state.Chunks[0]
			big := bytes.Repeat([]byte{0xA5}, 17<<20)
			b.writeFile(&c.Proof, big, int64(len(big)))
			b.saveState()
			return names(base(c.Proof.Handle))
		}},
		{name: "metadata_oversized", words: []string{"size", "limit", "large", "exceed", "bytes"}, apply: func(b *bk) []string {
			// A valid line padded with 17 MiB of blank lines.
			name := b.metas[native.TypeTransaction]
			data := append(b.read("metadata/"+name), bytes.Repeat([]byte{'\n'}, 17<<20)...)
			b.write("metadata/"+name, data)
			return names(name)
		}},
		{name: "metadata_unknown_type", words: append([]string{"type"}, wordsMeta...), apply: func(b *bk) []string {
			name := b.metas[native.TypeTransaction]
			var line map[string]any
			if err := json.Unmarshal(b.read("metadata/"+name), &line); err != nil {
				b.t.Fatal(err)
			}
			line["type"] = "mystery"
			data, _ := json.Marshal(line)
			b.write("metadata/"+name, append(data, '\n'))
			return names(name)
		}},
		{name: "metadata_broken_json", words: wordsMeta, apply: func(b *bk) []string {
			name := b.metas[native.TypeStateSnapshot]
			data := b.read("metadata/" + name)
			b.write("metadata/"+name, data[:len(data)/2])
			return names(name)
		}},
	}
}

// editLedgerInfo rewrites the first ledger info of an epoch-ending chunk through
// edit, re-encoded canonically, and updates the chunk's manifest entry.
func (b *bk) editLedgerInfo(f *native.File, edit func(*ledger.LedgerInfoWithSignatures)) {
	b.t.Helper()
	recs := b.readRecords(f.Handle)
	li, err := ledger.DecodeLedgerInfoWithSignatures(recs[0])
	if err != nil {
		b.t.Fatalf("ledger info in %s: %v", f.Handle, err)
	}
	edit(&li)
	if recs[0], err = li.Encode(); err != nil {
		b.t.Fatal(err)
	}
	b.writeRecords(f, recs)
}

// editTransaction rewrites the first transaction with a write set in the first
// transaction chunk replayed by a restore to the latest version, through edit,
// re-encoded canonically, and updates the chunk's manifest entry.
func (b *bk) editTransaction(edit func(*ledger.TransactionWithOutput)) *native.TransactionChunk {
	b.t.Helper()
	for _, i := range b.txnChunksAfterSnapshot() {
		c := &b.txn.Chunks[i]
		recs := b.readRecords(c.Handle)
		for j, r := range recs {
			t, err := ledger.DecodeTransactionWithOutput(r)
			if err != nil {
				b.t.Fatalf("transaction %d of %s: %v", j, c.Handle, err)
			}
			if len(t.WriteSet) == 0 || t.WriteSet[0].Deleted {
				continue
			}
			edit(&t)
			if recs[j], err = t.Encode(); err != nil {
				b.t.Fatal(err)
			}
			b.writeRecords(&c.File, recs)
			b.saveTxn()
			return c
		}
	}
	b.t.Fatal("no replayed transaction with a write set")
	return nil
}

// stateRootProof decodes the snapshot's state root proof.
func (b *bk) stateRootProof() proof.StateRoot {
	b.t.Helper()
	p, err := proof.DecodeStateRoot(b.read(string(b.state.RootProof.Handle)))
	if err != nil {
		b.t.Fatal(err)
	}
	return p
}

// saveStateRootProof writes p as the snapshot's state root proof and updates the
// manifest.
func (b *bk) saveStateRootProof(p *proof.StateRoot) {
	b.t.Helper()
	data, err := p.Encode()
	if err != nil {
		b.t.Fatal(err)
	}
	b.writeFile(&b.state.RootProof, data, int64(len(data)))
	b.saveState()
}

// outcome is one case's row in the summary table.
type outcome struct {
	name           string
	verify, restor *result
	leftover       string // what a failed restore left in its target
}

func TestTamper(t *testing.T) {
	f := good(t)
	// Not a subtest, so that -run cannot filter it out: without a good backup that
	// verifies and restores, every case below would pass vacuously.
	f.checkGood(t)
	cs := cases()
	rows := make([]outcome, len(cs))
	// The group returns once every (parallel) case has finished.
	t.Run("case", func(t *testing.T) {
		for i, tc := range cs {
			t.Run(tc.name, func(t *testing.T) {
				t.Parallel()
				v, r, left := f.runTamper(t, tc)
				rows[i] = outcome{tc.name, v, r, left}
			})
		}
	})
	t.Log(table(rows))
}

// runTamper applies tc to a fresh copy of the good backup and runs verify and restore
// on it, checking every promise of a rejected backup.
func (f *fixture) runTamper(t *testing.T, tc tamperCase) (verify, restore *result, leftover string) {
	caseDir := t.TempDir()
	st := filepath.Join(caseDir, "storage")
	copyTree(t, f.storage, st)
	b := openBackup(t, st)
	affected := tc.apply(b)
	if tc.sound {
		b.checkSound()
	}
	for _, d := range []string{"tmp", "home"} {
		if err := os.MkdirAll(filepath.Join(caseDir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	before := snapshotTree(t, caseDir, "target")

	verify = f.runCase(t, caseDir, st, "verify")
	checkRejected(t, "verify", verify, tc, affected)
	if d := diffTrees(before, snapshotTree(t, caseDir, "target")); len(d) > 0 {
		t.Errorf("verify wrote outside the restore target:\n%s", strings.Join(d, "\n"))
	}
	if !dirEmpty(t, targetDir(caseDir)) {
		t.Errorf("verify wrote into the restore target %s", targetDir(caseDir))
	}

	restore = f.runCase(t, caseDir, st, "restore", b.target)
	checkRejected(t, "restore", restore, tc, affected)
	if d := diffTrees(before, snapshotTree(t, caseDir, "target")); len(d) > 0 {
		t.Errorf("restore wrote outside its target directory:\n%s", strings.Join(d, "\n"))
	}
	leftover = f.checkLeftover(t, caseDir, st, b.target)
	return verify, restore, leftover
}

var goodRestores sync.Map // target -> restoreSummary

// goodRestore returns the result of restoring the good backup to target (made once
// per target).
func (f *fixture) goodRestore(t *testing.T, target string) restoreSummary {
	t.Helper()
	if target == "latest" {
		return f.goodRoots
	}
	if s, ok := goodRestores.Load(target); ok {
		return s.(restoreSummary)
	}
	r := f.runCase(t, t.TempDir(), f.storage, "restore", target)
	var s restoreSummary
	if r.exit != 0 {
		t.Fatalf("restore of the good backup to %s exited %d:\n%s", target, r.exit, tail(r.stderr))
	}
	if err := json.Unmarshal(bytes.TrimSpace(r.stdout), &s); err != nil {
		t.Fatalf("restore --json output %q: %v", r.stdout, err)
	}
	goodRestores.Store(target, s)
	return s
}

// checkRejected asserts a rejected run: exit status 1, an error naming the affected
// file and what is wrong, no panic, peak RSS under the cap.
func checkRejected(t *testing.T, what string, r *result, tc tamperCase, affected []string) {
	t.Helper()
	out := string(r.stdout) + string(r.stderr)
	if r.exit != 1 {
		t.Errorf("%s exited %d, want 1 (a failure)\nstderr:\n%s", what, r.exit, tail(r.stderr))
	}
	if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
		t.Errorf("%s panicked:\n%s", what, tail(r.stderr))
	}
	if r.maxRSS >= rssCap {
		t.Errorf("%s peak RSS %s, cap %s", what, mib(r.maxRSS), mib(rssCap))
	}
	if r.exit == 0 {
		return
	}
	// Only the command's error lines count, not its logs.
	errText := errorLines(r.stderr)
	if errText == "" {
		t.Errorf("%s printed no error line (\"ledgervault: ...\"):\n%s", what, tail(r.stderr))
		return
	}
	if !containsAny(errText, affected) {
		t.Errorf("%s error does not name the affected file (any of %q):\n%s", what, affected, tail(r.stderr))
	}
	if !containsAny(strings.ToLower(errText), lower(tc.words)) {
		t.Errorf("%s error does not say what is wrong (any of %q):\n%s", what, tc.words, tail(r.stderr))
	}
}

// checkLeftover asserts that a failed restore left its target resumable or
// removable, never a database that passes for restored: running the same restore
// again fails again, and a restore of the good backup into what is left either
// finishes with the good roots (a resume) or refuses the directory (exit 3).
// It returns what was left: "none", "refused" or "resumed".
func (f *fixture) checkLeftover(t *testing.T, caseDir, st, target string) string {
	t.Helper()
	if dirEmpty(t, targetDir(caseDir)) {
		return "none"
	}
	again := f.runCase(t, caseDir, st, "restore", target)
	if again.exit == 0 {
		t.Errorf("a second restore of the tampered backup into the leftover target succeeded:\n%s", again.stdout)
	} else if again.exit != 1 && again.exit != 3 {
		t.Errorf("a second restore of the tampered backup into the leftover target exited %d, want 1 or 3:\n%s", again.exit, tail(again.stderr))
	}
	// The good backup, at the same storage path (as an operator who repaired the
	// storage would run it).
	if err := os.RemoveAll(st); err != nil {
		t.Fatal(err)
	}
	copyTree(t, f.storage, st)
	resumed := f.runCase(t, caseDir, st, "restore", target)
	left := "refused"
	switch resumed.exit {
	case 0:
		left = "resumed"
		var s restoreSummary
		if err := json.Unmarshal(bytes.TrimSpace(resumed.stdout), &s); err != nil {
			t.Errorf("resumed restore --json output %q: %v", resumed.stdout, err)
		} else if want := f.goodRestore(t, target); s != want {
			t.Errorf("resumed restore into the leftover target: %+v, an uninterrupted restore gives %+v", s, want)
		}
	case 3:
	default:
		t.Errorf("restore of the good backup into the leftover target exited %d, want 0 (resumed) or 3 (refused):\n%s", resumed.exit, tail(resumed.stderr))
	}
	if err := os.RemoveAll(targetDir(caseDir)); err != nil {
		t.Errorf("the leftover target cannot be removed: %v", err)
	}
	return left
}

// errorLines returns the lines of stderr that carry the command's errors: those
// the command prefixes with its name.
func errorLines(stderr []byte) string {
	var out []string
	for _, l := range strings.Split(string(stderr), "\n") {
		if strings.HasPrefix(l, "ledgervault: ") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if x != "" && strings.Contains(s, x) {
			return true
		}
	}
	return false
}

func lower(ws []string) []string {
	out := make([]string, len(ws))
	for i, w := range ws {
		out[i] = strings.ToLower(w)
	}
	return out
}

// tail returns the last lines of a command's stderr.
func tail(b []byte) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 15 {
		lines = append([]string{"..."}, lines[len(lines)-15:]...)
	}
	return strings.Join(lines, "\n")
}

func table(rows []outcome) string {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "\n%-34s %-6s %-7s %-10s %-11s %-8s %s\n", "CASE", "VERIFY", "RESTORE", "VERIFY RSS", "RESTORE RSS", "LEFTOVER", "RESTORE MESSAGE")
	for _, r := range rows {
		if r.name == "" {
			continue // filtered out by -run
		}
		msg, vr, rr := "-", "-", "-"
		if r.restor != nil {
			msg = strings.TrimPrefix(r.restor.message(), "ledgervault: ")
			if len(msg) > 240 {
				msg = msg[:240] + "..."
			}
			rr = mib(r.restor.maxRSS)
		}
		if r.verify != nil {
			vr = mib(r.verify.maxRSS)
		}
		fmt.Fprintf(&buf, "%-34s %-6s %-7s %-10s %-11s %-8s %s\n", r.name, exitString(r.verify), exitString(r.restor), vr, rr, r.leftover, msg)
	}
	return buf.String()
}

// TestCorruptionsArePrecise checks the suite's own adversarial files without the
// binary: the sound cases pass every check of the project's decoders and checksums
// that the corruption does not target, and the targeted property really is broken.
func TestCorruptionsArePrecise(t *testing.T) {
	f := good(t)
	for _, tc := range cases() {
		t.Run(tc.name, func(t *testing.T) {
			st := filepath.Join(t.TempDir(), "storage")
			copyTree(t, f.storage, st)
			b := openBackup(t, st)
			tc.apply(b)
			problems := b.soundProblems()
			switch {
			case tc.sound && len(problems) > 0:
				t.Fatalf("a sound case fails the manifest checks:\n%s", strings.Join(problems, "\n"))
			case !tc.sound && len(problems) == 0:
				t.Fatal("the corruption leaves every manifest, metadata file, size and sha256 intact: mark it sound")
			}
			if !tc.sound || strings.HasPrefix(tc.name, "zstd_bomb") {
				return
			}
			// Only the record cases break the records framing.
			rp := b.recordProblems()
			if isRecordCase := strings.HasPrefix(tc.name, "record_prefix_"); isRecordCase != (len(rp) > 0) {
				t.Fatalf("records reader problems %q; a record case: %v", rp, isRecordCase)
			}
		})
	}
	t.Run("state_value_changed_fails_merkle", func(t *testing.T) {
		st := filepath.Join(t.TempDir(), "storage")
		copyTree(t, f.storage, st)
		b := openBackup(t, st)
		good := stateLeaves(b, 0)
		for _, tc := range cases() {
			if tc.name == "state_value_changed" {
				tc.apply(b)
			}
		}
		bad := stateLeaves(b, 0)
		proof, err := smt.DecodeRangeProof(b.read(string(b.state.Chunks[0].Proof.Handle)))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := smt.NewChunkVerifier(b.state.RootHash).AddChunk(good, proof); err != nil {
			t.Fatalf("the good chunk fails its range proof: %v", err)
		}
		if _, err := smt.NewChunkVerifier(b.state.RootHash).AddChunk(bad, proof); err == nil {
			t.Fatal("the changed chunk passes its range proof")
		}
	})
	t.Run("bomb_decompresses_past_4GiB", func(t *testing.T) {
		prefix := []byte("prefix")
		bomb := zstdBomb(prefix)
		if len(bomb) > 200<<10 {
			t.Fatalf("bomb is %d bytes", len(bomb))
		}
		want := int64(len(prefix)) + bombSize
		if want <= 4<<30 {
			t.Fatalf("bomb size %d is not above 4 GiB", want)
		}
		if n := zstdFrameSize(t, bomb); n != want {
			t.Fatalf("bomb's blocks add up to %d bytes, want %d", n, want)
		}
		limit := want
		if raceEnabled {
			limit = 64 << 20 // the first four records; the full decode runs without -race
		}
		n, head := countDecompressed(t, bomb, 64, limit)
		if n < limit || (!raceEnabled && n != want) {
			t.Fatalf("bomb decompresses to %d bytes, want %d", n, want)
		}
		wantHead := append(prefix, 0x01, 0, 0, 0, 1, 'k')
		if !bytes.HasPrefix(head, wantHead) {
			t.Fatalf("bomb starts %x, want %x", head[:len(wantHead)], wantHead)
		}
		t.Logf("zstd bomb: %d bytes decompress to %d bytes (%.0f:1)", len(bomb), n, float64(want)/float64(len(bomb)))
	})
}

// stateLeaves returns the leaves of state chunk i.
func stateLeaves(b *bk, i int) []smt.Leaf {
	b.t.Helper()
	var out []smt.Leaf
	for _, r := range b.readRecords(b.state.Chunks[i].Handle) {
		k, v, err := records.SplitKeyValue(r, 1<<16)
		if err != nil {
			b.t.Fatal(err)
		}
		out = append(out, smt.Leaf{KeyHash: smt.KeyHash(k), ValueHash: smt.ValueHash(v)})
	}
	return out
}

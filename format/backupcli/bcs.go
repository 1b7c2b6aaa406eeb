package backupcli

import (
	"crypto/sha3"
	"errors"
	"fmt"

	"github.com/ledgervault/ledgervault/aptos/bcs"
)

// The little BCS an audit needs: the epoch and version of an epoch-ending ledger info
// and the hashed key of a state snapshot record, read with package aptos/bcs's strict
// reader. Full decoding and verification is packages aptos and aptos/txn's job.

var errShort = errors.New("record too short")

// reader returns a strict BCS reader (package aptos/bcs) over one record.
func reader(rec []byte) *bcs.Reader { return bcs.NewReader(rec, bcs.Limits{MaxInput: len(rec)}) }

// LedgerInfoHeader is what an audit reads from an epoch-ending chunk record (a BCS
// LedgerInfoWithSignatures): its epoch and version.
type LedgerInfoHeader struct {
	Epoch uint64
	// Versions holds the version under each known layout of BlockInfo: Diem 1.x
	// writes its HashValues with a length prefix (0x20), Aptos as bare 32 bytes. The
	// generation is not in the record, so both are offered; a waypoint decides.
	Versions []uint64
}

// DecodeLedgerInfoHeader reads the epoch and candidate versions of a
// LedgerInfoWithSignatures record: variant V0 (0), then BlockInfo {epoch u64, round
// u64, id HashValue, executed_state_id HashValue, version u64, ...}.
func DecodeLedgerInfoHeader(rec []byte) (LedgerInfoHeader, error) {
	if len(rec) < 1+8+8+64+8 {
		return LedgerInfoHeader{}, fmt.Errorf("ledger info: %w (%d bytes)", errShort, len(rec))
	}
	if rec[0] != 0 {
		return LedgerInfoHeader{}, fmt.Errorf("ledger info: unknown LedgerInfoWithSignatures variant %d", rec[0])
	}
	r := reader(rec)
	r.Variant("ledger_info_with_signatures", 1)
	r.Push("ledger_info.commit_info")
	h := LedgerInfoHeader{Epoch: r.U64("epoch")}
	r.U64("round")
	after := r.Offset()
	// Aptos: two bare 32-byte hashes.
	r.Fixed("id", 32)
	r.Fixed("executed_state_id", 32)
	h.Versions = append(h.Versions, r.U64("version"))
	if err := r.Err(); err != nil {
		return LedgerInfoHeader{}, fmt.Errorf("ledger info: %w", err)
	}
	// Diem 1.x: two length-prefixed hashes.
	d := reader(rec[after:])
	if len(d.Bytes("id", 32)) == 32 && len(d.Bytes("executed_state_id", 32)) == 32 {
		if v := d.U64("version"); d.Err() == nil {
			h.Versions = append(h.Versions, v)
		}
	}
	return h, nil
}

// stateKeySalts are the CryptoHasher seeds of StateKey, sha3-256(prefix ||
// "StateKey") (aptos-crypto DefaultHasher), for the hash prefixes Aptos-family chains
// use: Aptos itself, and forks that kept Diem's or Libra's (the libra7 chain hashes
// with "DIEM::"). The first is the default.
var stateKeySalts = func() [][]byte {
	var out [][]byte
	for _, p := range []string{"APTOS::", "DIEM::", "LIBRA::"} {
		s := sha3.Sum256([]byte(p + "StateKey"))
		out = append(out, s[:])
	}
	return out
}()

// StateRecordKey returns the hashed key a state snapshot record is ordered by.
//
//   - Diem 1.x records are BCS (HashValue, AccountStateBlob): the key is already the
//     hash, written with its length prefix 0x20.
//   - Aptos records are BCS (StateKey, StateValue), StateKey an enum AccessPath
//     {address [32], path Vec<u8>} | TableItem {handle [32], key Vec<u8>} | Raw
//     (Vec<u8>); its hash is sha3-256(salt || encoding) where the encoding is a tag
//     byte (0 AccessPath, 1 TableItem, 255 Raw) then, for AccessPath, the BCS of the
//     access path; for TableItem, the handle and the raw key bytes; for Raw, the bytes
//     (types/src/state_store/state_key). The rest of the record is the value, which
//     must not be empty.
func StateRecordKey(rec []byte) (Hash, error) { return stateRecordKey(rec, stateKeySalts[0]) }

// StateRecordKeyFor is StateRecordKey for a chain whose hashes use hashPrefix
// ("APTOS::", "DIEM::", ...) instead of Aptos's.
func StateRecordKeyFor(rec []byte, hashPrefix string) (Hash, error) {
	seed := sha3.Sum256([]byte(hashPrefix + "StateKey"))
	return stateRecordKey(rec, seed[:])
}

// stateRecordKey is StateRecordKey with the StateKey hasher seed salt.
func stateRecordKey(rec []byte, salt []byte) (Hash, error) {
	var h Hash
	if len(rec) == 0 {
		return h, fmt.Errorf("state record: %w", errShort)
	}
	r := reader(rec)
	if rec[0] == 32 {
		if len(rec) < 33+1 {
			return h, fmt.Errorf("state record: %w (%d bytes)", errShort, len(rec))
		}
		copy(h[:], r.Bytes("key", 32))
		r.Bytes("account_state_blob", bcs.MaxSequenceLength)
		if err := r.Done(); err != nil {
			return h, fmt.Errorf("state record: account blob length does not match the record (%d bytes): %w", len(rec), err)
		}
		return h, nil
	}
	var enc []byte
	switch v := r.Variant("state_key", 3); {
	case r.Err() != nil:
		return h, fmt.Errorf("state key: unknown variant %d", rec[0])
	case v == 0 || v == 1: // AccessPath{address, path} or TableItem{handle, key}: 32 bytes then Vec<u8>
		start := r.Offset()
		addr := r.Fixed32("address")
		key := r.Bytes("path", bcs.MaxSequenceLength)
		if r.Err() != nil {
			return h, fmt.Errorf("state key: bad length: %w", r.Err())
		}
		if v == 0 {
			enc = append([]byte{0}, r.Since(start)...)
		} else {
			enc = append(append([]byte{1}, addr[:]...), key...)
		}
	default: // Raw(Vec<u8>)
		raw := r.Bytes("raw", bcs.MaxSequenceLength)
		if r.Err() != nil {
			return h, fmt.Errorf("state key: bad length: %w", r.Err())
		}
		enc = append([]byte{255}, raw...)
	}
	if r.Remaining() == 0 {
		return h, fmt.Errorf("state record: no value after the key")
	}
	d := sha3.New256()
	d.Write(salt)
	d.Write(enc)
	d.Sum(h[:0])
	return h, nil
}

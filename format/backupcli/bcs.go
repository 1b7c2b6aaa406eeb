package backupcli

import (
	"encoding/binary"
	"errors"
	"fmt"

	"crypto/sha3"
)

// The little BCS an audit needs: the epoch and version of an epoch-ending ledger info
// and the hashed key of a state snapshot record. Full transaction and proof decoding
// is restore's job, not an audit's.

var errShort = errors.New("record too short")

// uleb128 decodes a BCS length (at most 2^31-1, as BCS allows).
func uleb128(b []byte) (v uint64, n int, err error) {
	var shift uint
	for i := 0; i < len(b) && i < 5; i++ {
		v |= uint64(b[i]&0x7f) << shift
		if b[i]&0x80 == 0 {
			if v > 1<<31-1 {
				return 0, 0, errors.New("BCS length over 2^31-1")
			}
			return v, i + 1, nil
		}
		shift += 7
	}
	return 0, 0, errShort
}

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
	h := LedgerInfoHeader{Epoch: binary.LittleEndian.Uint64(rec[1:9])}
	const after = 1 + 8 + 8
	// Aptos: two bare 32-byte hashes.
	h.Versions = append(h.Versions, binary.LittleEndian.Uint64(rec[after+64:]))
	// Diem 1.x: two 0x20-prefixed hashes.
	if len(rec) >= after+66+8 && rec[after] == 32 && rec[after+33] == 32 {
		h.Versions = append(h.Versions, binary.LittleEndian.Uint64(rec[after+66:]))
	}
	return h, nil
}

// stateKeySalt is sha3-256("APTOS::StateKey"), the CryptoHasher seed of Aptos'
// StateKey (aptos-crypto DefaultHasher: sha3(prefix || type name)).
var stateKeySalt = func() []byte {
	s := sha3.Sum256([]byte("APTOS::StateKey"))
	return s[:]
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
func StateRecordKey(rec []byte) (Hash, error) {
	var h Hash
	if len(rec) == 0 {
		return h, fmt.Errorf("state record: %w", errShort)
	}
	if rec[0] == 32 {
		if len(rec) < 33+1 {
			return h, fmt.Errorf("state record: %w (%d bytes)", errShort, len(rec))
		}
		copy(h[:], rec[1:33])
		n, m, err := uleb128(rec[33:])
		if err != nil || uint64(len(rec)-33-m) != n {
			return h, fmt.Errorf("state record: account blob length does not match the record (%d bytes)", len(rec))
		}
		return h, nil
	}
	var enc []byte
	rest := rec[1:]
	switch rec[0] {
	case 0, 1: // AccessPath{address, path} or TableItem{handle, key}: 32 bytes then Vec<u8>
		if len(rest) < 32 {
			return h, fmt.Errorf("state key: %w", errShort)
		}
		n, m, err := uleb128(rest[32:])
		if err != nil || uint64(len(rest)-32-m) < n {
			return h, fmt.Errorf("state key: bad length")
		}
		end := 32 + m + int(n)
		if rec[0] == 0 {
			enc = append([]byte{0}, rest[:end]...)
		} else {
			enc = append(append([]byte{1}, rest[:32]...), rest[32+m:end]...)
		}
		rest = rest[end:]
	case 2: // Raw(Vec<u8>)
		n, m, err := uleb128(rest)
		if err != nil || uint64(len(rest)-m) < n {
			return h, fmt.Errorf("state key: bad length")
		}
		enc = append([]byte{255}, rest[m:m+int(n)]...)
		rest = rest[m+int(n):]
	default:
		return h, fmt.Errorf("state key: unknown variant %d", rec[0])
	}
	if len(rest) == 0 {
		return h, fmt.Errorf("state record: no value after the key")
	}
	d := sha3.New256()
	d.Write(stateKeySalt)
	d.Write(enc)
	d.Sum(h[:0])
	return h, nil
}

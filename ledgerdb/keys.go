package ledgerdb

import (
	"encoding/binary"
	"fmt"
)

// Every key starts with one table byte. Versions and epochs are big-endian so that
// Pebble's byte order is numeric order.
const (
	tableMeta        byte = 0x01 // name → value (database state, restore progress)
	tableTxn         byte = 0x02 // version → transaction with output (canonical encoding)
	tableAccNode     byte = 0x04 // level(1) ‖ index(8) → accumulator node hash
	tableStateValue  byte = 0x05 // keyHash(32) ‖ ^version(8) → state value record
	tableSMTNode     byte = 0x06 // smt node key → smt node (the restored snapshot's nodes on chunk edges)
	tableStateRoot   byte = 0x07 // version → smt root reference
	tableEpochEnding byte = 0x08 // epoch → epoch-ending ledger info with signatures
	tableLedgerInfo  byte = 0x09 // version → ledger info with signatures of the block ending there
	tableSMTGroup    byte = 0x0a // smt group key → smt node group (every committed version)
	// smt group key in post-order (smt.NodeKey.AppendPostOrderKey) → smt node group (the
	// restored snapshot's version; its nodes on chunk edges are in tableSMTNode)
	tableSMTRestoredGroup byte = 0x0b
)

func versionKey(table byte, v uint64) []byte {
	return putVersionKey(make([]byte, 9), table, v)
}

// putVersionKey writes the key of version v in table into k (9 bytes) and returns it.
func putVersionKey(k []byte, table byte, v uint64) []byte {
	k[0] = table
	binary.BigEndian.PutUint64(k[1:9], v)
	return k[:9]
}

func parseVersionKey(table byte, k []byte) (uint64, error) {
	if len(k) != 9 || k[0] != table {
		return 0, fmt.Errorf("ledgerdb: malformed key %x for table %d", k, table)
	}
	return binary.BigEndian.Uint64(k[1:]), nil
}

func metaKey(name string) []byte { return append([]byte{tableMeta}, name...) }

func accNodeKey(level uint8, index uint64) []byte {
	k := make([]byte, 10)
	k[0] = tableAccNode
	k[1] = level
	binary.BigEndian.PutUint64(k[2:], index)
	return k
}

// stateValueKey orders all versions of a key hash newest first, so that a seek to
// (keyHash, ^V) lands on the newest value at or before V.
func stateValueKey(dst []byte, keyHash *[32]byte, version uint64) []byte {
	dst = append(dst[:0], tableStateValue)
	dst = append(dst, keyHash[:]...)
	return binary.BigEndian.AppendUint64(dst, ^version)
}

func parseStateValueKey(k []byte) (keyHash [32]byte, version uint64, err error) {
	if len(k) != 41 || k[0] != tableStateValue {
		return keyHash, 0, fmt.Errorf("ledgerdb: malformed state value key %x", k)
	}
	copy(keyHash[:], k[1:33])
	return keyHash, ^binary.BigEndian.Uint64(k[33:]), nil
}

// tableBounds returns the [lower, upper) bounds of a table.
func tableBounds(table byte) (lower, upper []byte) { return []byte{table}, []byte{table + 1} }

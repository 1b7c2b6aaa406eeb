package records

import (
	"encoding/binary"
	"fmt"
)

// State items travel as records of the form uvarint(len(key)) ‖ key ‖ value.

// KeyValueSize returns the record size of a state item.
func KeyValueSize(key, value []byte) int {
	return uvarintLen(uint64(len(key))) + len(key) + len(value)
}

// PutKeyValue encodes a state item into dst, which must hold KeyValueSize bytes, and
// returns the number of bytes written.
func PutKeyValue(dst, key, value []byte) int {
	n := binary.PutUvarint(dst, uint64(len(key)))
	n += copy(dst[n:], key)
	n += copy(dst[n:], value)
	return n
}

// SplitKeyValue decodes a state item record; key and value alias rec. It rejects
// keys longer than maxKey bytes and empty keys.
func SplitKeyValue(rec []byte, maxKey int) (key, value []byte, err error) {
	n, w := binary.Uvarint(rec)
	if w <= 0 {
		return nil, nil, fmt.Errorf("%w: state item: bad key length", ErrCorrupt)
	}
	if n == 0 || n > uint64(maxKey) || n > uint64(len(rec)-w) {
		return nil, nil, fmt.Errorf("%w: state item: key length %d out of range (limit %d, record %d bytes)", ErrCorrupt, n, maxKey, len(rec))
	}
	if w != uvarintLen(n) {
		return nil, nil, fmt.Errorf("%w: state item: non-minimal key length", ErrCorrupt)
	}
	return rec[w : w+int(n)], rec[w+int(n):], nil
}

func uvarintLen(x uint64) int {
	n := 1
	for x >= 0x80 {
		x >>= 7
		n++
	}
	return n
}

package bcs

import "encoding/binary"

// AppendU8 appends v as BCS u8.
func AppendU8(b []byte, v uint8) []byte { return append(b, v) }

// AppendU16 appends v as BCS u16 (little-endian).
func AppendU16(b []byte, v uint16) []byte { return binary.LittleEndian.AppendUint16(b, v) }

// AppendU32 appends v as BCS u32 (little-endian).
func AppendU32(b []byte, v uint32) []byte { return binary.LittleEndian.AppendUint32(b, v) }

// AppendU64 appends v as BCS u64 (little-endian).
func AppendU64(b []byte, v uint64) []byte { return binary.LittleEndian.AppendUint64(b, v) }

// AppendU128 appends v as BCS u128 (little-endian).
func AppendU128(b []byte, v Uint128) []byte {
	b = binary.LittleEndian.AppendUint64(b, v.Lo)
	return binary.LittleEndian.AppendUint64(b, v.Hi)
}

// AppendBool appends v as the BCS byte 0 or 1.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// AppendULEB128 appends v in shortest-form ULEB128, as BCS writes lengths and variant
// indices.
func AppendULEB128(b []byte, v uint32) []byte {
	for v >= 0x80 {
		b = append(b, byte(v)|0x80)
		v >>= 7
	}
	return append(b, byte(v))
}

// AppendBytes appends v as a BCS byte string: its ULEB128 length then the bytes. The
// caller keeps len(v) at most MaxSequenceLength.
func AppendBytes(b []byte, v []byte) []byte {
	b = AppendULEB128(b, uint32(len(v)))
	return append(b, v...)
}

// AppendString appends v as a BCS string (length-prefixed UTF-8 bytes).
func AppendString(b []byte, v string) []byte {
	b = AppendULEB128(b, uint32(len(v)))
	return append(b, v...)
}

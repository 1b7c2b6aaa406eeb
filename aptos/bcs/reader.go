// Package bcs decodes Binary Canonical Serialization (BCS), the encoding Aptos and Diem
// use for everything they sign, hash and store, strictly and with limits.
//
// A Reader walks one input. Its methods read one value each and take the name of the
// field being read, which only appears in errors. The first error is sticky: after it
// every read returns a zero value and Done/Err return that error, so a decoder can read
// a whole structure and check once:
//
//	r := bcs.NewReader(data, bcs.Limits{})
//	r.Push("commit_info")
//	epoch := r.U64("epoch")
//	round := r.U64("round")
//	r.Pop()
//	n := r.SeqLen("validators", 1024)
//	for i := 0; i < n && r.Err() == nil; i++ {
//		r.PushIndex("validators", i)
//		key := r.Bytes("public_key", 48)
//		r.Pop()
//	}
//	if err := r.Done(); err != nil { ... }
//
// Strictness follows the BCS specification (and the Rust bcs crate): integers are
// little-endian; bool is exactly 0 or 1; option tags are exactly 0 or 1; lengths and
// enum variant indices are ULEB128 in their shortest form, lengths at most 2^31-1;
// strings are valid UTF-8; Done fails if input is left over. Every error is an *Error
// carrying the byte offset and the dotted field path.
package bcs

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxSequenceLength is the largest length BCS allows for a sequence, byte string or
// string (2^31-1, as in the Rust bcs crate).
const MaxSequenceLength = 1<<31 - 1

// Default limits used when a Limits field is zero.
const (
	// DefaultMaxInput is the largest input a Reader accepts unless Limits.MaxInput says otherwise.
	DefaultMaxInput = 64 << 20
	// DefaultMaxElements is the total number of sequence elements a Reader accepts across
	// all SeqLen calls unless Limits.MaxElements says otherwise.
	DefaultMaxElements = 1 << 22
	// DefaultMaxDepth is the deepest field path a Reader accepts unless Limits.MaxDepth
	// says otherwise (the Rust bcs crate's container depth limit is 500).
	DefaultMaxDepth = 500
)

// Limits bound what one Reader accepts; a zero field takes its default.
type Limits struct {
	// MaxInput is the largest input length in bytes; a longer input fails at once.
	MaxInput int
	// MaxElements is the total number of elements all sequences read by SeqLen may
	// declare together (a budget over the whole input, beyond each call's own max).
	MaxElements int
	// MaxDepth is the largest number of nested Push/PushIndex levels.
	MaxDepth int
}

// ErrTrailing is wrapped by the error Done returns when input is left unread.
var ErrTrailing = errors.New("trailing bytes")

// ErrShort is wrapped by errors for input that ends before a value does.
var ErrShort = errors.New("unexpected end of input")

// ErrLimit is wrapped by errors for a length, count, depth or input size above a limit.
var ErrLimit = errors.New("limit exceeded")

// ErrInvalid is wrapped by errors for bytes that are not canonical BCS for the type read
// (a bool of 2, an overlong ULEB128, invalid UTF-8, an unknown variant).
var ErrInvalid = errors.New("invalid encoding")

// Error is a decoding failure at a byte offset while reading a field path such as
// "ledger_info.commit_info.next_epoch_state[option].verifier.validator_infos[3].public_key".
type Error struct {
	// Offset is the byte offset in the input where the failing value starts.
	Offset int
	// Path is the dotted path of the field being read.
	Path string
	// Err is the reason; it wraps one of ErrShort, ErrLimit, ErrInvalid or ErrTrailing.
	Err error
}

// Error returns "bcs: PATH at offset N: REASON".
func (e *Error) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("bcs: at offset %d: %v", e.Offset, e.Err)
	}
	return fmt.Sprintf("bcs: %s at offset %d: %v", e.Path, e.Offset, e.Err)
}

// Unwrap returns the reason, so errors.Is(err, bcs.ErrShort) and the like work.
func (e *Error) Unwrap() error { return e.Err }

type segment struct {
	name  string
	index int // -1 when the segment is a plain field
}

// Reader decodes BCS values from one byte slice. It is not safe for concurrent use.
type Reader struct {
	buf      []byte
	off      int
	err      error
	path     []segment
	elements int // remaining element budget
	maxDepth int
}

// NewReader returns a Reader over data with the given limits. If data is longer than
// the input limit the Reader starts in error.
func NewReader(data []byte, lim Limits) *Reader {
	if lim.MaxInput <= 0 {
		lim.MaxInput = DefaultMaxInput
	}
	if lim.MaxElements <= 0 {
		lim.MaxElements = DefaultMaxElements
	}
	if lim.MaxDepth <= 0 {
		lim.MaxDepth = DefaultMaxDepth
	}
	r := &Reader{buf: data, elements: lim.MaxElements, maxDepth: lim.MaxDepth}
	if len(data) > lim.MaxInput {
		r.err = &Error{Offset: 0, Err: fmt.Errorf("%w: input is %d bytes, limit %d", ErrLimit, len(data), lim.MaxInput)}
	}
	return r
}

// Err returns the first error so far, or nil.
func (r *Reader) Err() error { return r.err }

// Offset returns the number of bytes consumed so far.
func (r *Reader) Offset() int { return r.off }

// Remaining returns the number of bytes not yet consumed.
func (r *Reader) Remaining() int { return len(r.buf) - r.off }

// Since returns the input bytes from offset start up to the current offset, aliasing
// the input; it is how a decoder gets the exact BCS bytes of a nested value for hashing.
// It returns nil after an error or for an offset outside what was consumed.
func (r *Reader) Since(start int) []byte {
	if r.err != nil || start < 0 || start > r.off {
		return nil
	}
	return r.buf[start:r.off:r.off]
}

// Done returns the first error, or an error wrapping ErrTrailing if input is left.
func (r *Reader) Done() error {
	if r.err != nil {
		return r.err
	}
	if r.off != len(r.buf) {
		r.path = r.path[:0]
		r.fail(r.off, fmt.Errorf("%w: %d bytes after the value", ErrTrailing, len(r.buf)-r.off))
	}
	return r.err
}

// Fail records err as the Reader's error at the current offset and field path (unless
// an earlier error is already recorded). Decoders use it for semantic checks, such as
// a value that must be 32 bytes or a known constant.
func (r *Reader) Fail(field string, err error) {
	if r.err != nil {
		return
	}
	r.failField(r.off, field, err)
}

// Push enters a named nested value; field paths in errors include it until Pop.
func (r *Reader) Push(field string) {
	r.pushSeg(segment{name: field, index: -1})
}

// PushIndex enters element i of the sequence field; paths show it as field[i].
func (r *Reader) PushIndex(field string, i int) {
	r.pushSeg(segment{name: field, index: i})
}

func (r *Reader) pushSeg(s segment) {
	if r.err == nil && len(r.path) >= r.maxDepth {
		r.failField(r.off, s.name, fmt.Errorf("%w: nesting deeper than %d", ErrLimit, r.maxDepth))
	}
	r.path = append(r.path, s)
}

// Pop leaves the value entered by the last Push or PushIndex.
func (r *Reader) Pop() {
	if len(r.path) > 0 {
		r.path = r.path[:len(r.path)-1]
	}
}

func (r *Reader) pathString(field string) string {
	var b strings.Builder
	for i, s := range r.path {
		if i > 0 {
			b.WriteByte('.')
		}
		b.WriteString(s.name)
		if s.index >= 0 {
			b.WriteByte('[')
			b.WriteString(strconv.Itoa(s.index))
			b.WriteByte(']')
		}
	}
	if field != "" {
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(field)
	}
	return b.String()
}

func (r *Reader) fail(off int, err error) { r.failField(off, "", err) }

func (r *Reader) failField(off int, field string, err error) {
	if r.err == nil {
		r.err = &Error{Offset: off, Path: r.pathString(field), Err: err}
	}
}

// take consumes n bytes, or records ErrShort for field.
func (r *Reader) take(field string, n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.buf)-r.off {
		r.failField(r.off, field, fmt.Errorf("%w: need %d bytes, %d left", ErrShort, n, len(r.buf)-r.off))
		return nil
	}
	b := r.buf[r.off : r.off+n : r.off+n]
	r.off += n
	return b
}

// U8 reads a u8.
func (r *Reader) U8(field string) uint8 {
	b := r.take(field, 1)
	if b == nil {
		return 0
	}
	return b[0]
}

// U16 reads a little-endian u16.
func (r *Reader) U16(field string) uint16 {
	b := r.take(field, 2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

// U32 reads a little-endian u32.
func (r *Reader) U32(field string) uint32 {
	b := r.take(field, 4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// U64 reads a little-endian u64.
func (r *Reader) U64(field string) uint64 {
	b := r.take(field, 8)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint64(b)
}

// Uint128 is a u128 as two halves.
type Uint128 struct {
	// Hi holds bits 64-127.
	Hi uint64
	// Lo holds bits 0-63.
	Lo uint64
}

// U128 reads a little-endian u128.
func (r *Reader) U128(field string) Uint128 {
	b := r.take(field, 16)
	if b == nil {
		return Uint128{}
	}
	return Uint128{Lo: binary.LittleEndian.Uint64(b[:8]), Hi: binary.LittleEndian.Uint64(b[8:])}
}

// U256 reads a little-endian u256 and returns its 32 bytes as stored (little-endian).
func (r *Reader) U256(field string) [32]byte {
	var v [32]byte
	copy(v[:], r.take(field, 32))
	return v
}

// Bool reads a bool, which must be the byte 0 or 1.
func (r *Reader) Bool(field string) bool {
	off := r.off
	b := r.take(field, 1)
	if b == nil {
		return false
	}
	switch b[0] {
	case 0:
		return false
	case 1:
		return true
	}
	r.failField(off, field, fmt.Errorf("%w: bool byte %#x", ErrInvalid, b[0]))
	return false
}

// Option reads an option tag and reports whether a value follows (tag 1) or not (tag 0).
// The caller reads the value itself when it returns true.
func (r *Reader) Option(field string) bool {
	off := r.off
	b := r.take(field, 1)
	if b == nil {
		return false
	}
	switch b[0] {
	case 0:
		return false
	case 1:
		return true
	}
	r.failField(off, field, fmt.Errorf("%w: option tag %#x", ErrInvalid, b[0]))
	return false
}

// uleb reads a canonical ULEB128 value of at most 32 bits.
func (r *Reader) uleb(field string) (uint32, bool) {
	if r.err != nil {
		return 0, false
	}
	start := r.off
	var v uint64
	for i := 0; ; i++ {
		if r.off >= len(r.buf) {
			r.failField(start, field, fmt.Errorf("%w: in ULEB128", ErrShort))
			return 0, false
		}
		c := r.buf[r.off]
		r.off++
		v |= uint64(c&0x7f) << (7 * i)
		if c&0x80 == 0 {
			if i > 0 && c == 0 {
				r.failField(start, field, fmt.Errorf("%w: ULEB128 not in shortest form", ErrInvalid))
				return 0, false
			}
			if v > 1<<32-1 {
				r.failField(start, field, fmt.Errorf("%w: ULEB128 above 2^32-1", ErrInvalid))
				return 0, false
			}
			return uint32(v), true
		}
		if i == 4 {
			r.failField(start, field, fmt.Errorf("%w: ULEB128 longer than 5 bytes", ErrInvalid))
			return 0, false
		}
	}
}

// ULEB128 reads a canonical ULEB128 u32 (shortest form, at most 5 bytes).
func (r *Reader) ULEB128(field string) uint32 {
	v, _ := r.uleb(field)
	return v
}

// length reads a sequence length: canonical ULEB128, at most MaxSequenceLength and max.
func (r *Reader) length(field string, max int) int {
	start := r.off
	v, ok := r.uleb(field)
	if !ok {
		return 0
	}
	if v > MaxSequenceLength {
		r.failField(start, field, fmt.Errorf("%w: length %d above 2^31-1", ErrInvalid, v))
		return 0
	}
	if int64(v) > int64(max) {
		r.failField(start, field, fmt.Errorf("%w: length %d, limit %d", ErrLimit, v, max))
		return 0
	}
	return int(v)
}

// Bytes reads a length-prefixed byte string (Vec<u8>) of at most max bytes. The result
// aliases the input.
func (r *Reader) Bytes(field string, max int) []byte {
	n := r.length(field, max)
	if r.err != nil {
		return nil
	}
	b := r.take(field, n)
	if b == nil {
		return nil
	}
	return b
}

// String reads a length-prefixed UTF-8 string of at most max bytes.
func (r *Reader) String(field string, max int) string {
	off := r.off
	b := r.Bytes(field, max)
	if r.err != nil {
		return ""
	}
	if !utf8.Valid(b) {
		r.failField(off, field, fmt.Errorf("%w: string is not UTF-8", ErrInvalid))
		return ""
	}
	return string(b)
}

// Fixed reads a fixed-size byte array ([u8; n], no length prefix). The result aliases
// the input.
func (r *Reader) Fixed(field string, n int) []byte {
	return r.take(field, n)
}

// Fixed32 reads a [u8; 32], the size of every HashValue.
func (r *Reader) Fixed32(field string) [32]byte {
	var v [32]byte
	copy(v[:], r.take(field, 32))
	return v
}

// SeqLen reads the length of a sequence (Vec<T>) whose elements the caller then reads.
// The length must be at most max, at most the bytes left (every element takes at least
// minElemSize bytes; pass 1 when unsure, 0 only for zero-sized elements), and within the
// Reader's total element budget.
func (r *Reader) SeqLen(field string, max, minElemSize int) int {
	start := r.off
	n := r.length(field, max)
	if r.err != nil {
		return 0
	}
	if minElemSize > 0 && int64(n)*int64(minElemSize) > int64(len(r.buf)-r.off) {
		r.failField(start, field, fmt.Errorf("%w: %d elements of at least %d bytes, %d bytes left", ErrShort, n, minElemSize, len(r.buf)-r.off))
		return 0
	}
	if n > r.elements {
		r.failField(start, field, fmt.Errorf("%w: %d elements exceed the remaining element budget %d", ErrLimit, n, r.elements))
		return 0
	}
	r.elements -= n
	return n
}

// Variant reads an enum variant index (ULEB128) that must be below count.
func (r *Reader) Variant(field string, count uint32) uint32 {
	start := r.off
	v, ok := r.uleb(field)
	if !ok {
		return 0
	}
	if v >= count {
		r.failField(start, field, fmt.Errorf("%w: variant %d, only %d known", ErrInvalid, v, count))
		return 0
	}
	return v
}
